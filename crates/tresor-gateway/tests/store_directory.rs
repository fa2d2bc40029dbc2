//! `StoreDirectory` over the SQLite store, and a gateway login through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tresor_gateway::{Directory, Gateway, StoreDirectory};
use tresor_proto::gateway::{codes, GatewayMsg};
use tresor_store::testing::PgSchema;
use tresor_store::{Mutation, ServiceRow, SqliteStore, Store, WriteBatch};

fn row(e: &tresor_gateway::ServiceEntry, version: i64) -> ServiceRow {
    ServiceRow {
        name: e.record.name.clone(),
        service_user: e.record.service_user.clone(),
        record_json: serde_json::to_vec(&e.record).unwrap(),
        failures: 0,
        locked_until: 0,
        version,
    }
}

fn one(m: Mutation) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.push(m);
    b
}

async fn store_with(
    entries: &[tresor_gateway::ServiceEntry],
) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let mut b = WriteBatch::new();
    for e in entries {
        b.push(Mutation::PutService(row(e, 1)));
    }
    store.commit(b).await.unwrap();
    (dir, Arc::new(store))
}

/// A gateway over `store`'s directory in front of `node`, its configuration adjusted by `f`.
async fn gateway_on(
    store: &Arc<dyn Store>,
    node: &FakeNode,
    f: impl FnOnce(&mut tresor_gateway::GatewayConfig),
) -> Env {
    let (server, client_tls) = tls_pair();
    let mut config = test_config(server, vec![node.node_addr()]);
    f(&mut config);
    let gw = Gateway::start(config, Arc::new(StoreDirectory::new(store.clone())))
        .await
        .unwrap();
    Env {
        gw,
        dir: Arc::new(tresor_gateway::MemoryDirectory::new()),
        client_tls,
    }
}

/// A gateway whose directory is a PostgreSQL schema learns of a service that another process
/// (`tresor admin` elsewhere) disabled, or added, from the store's notification: its open
/// connection is closed and the new service admitted at once, with a directory cache that
/// would otherwise keep answers for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_over_postgres_sees_other_writers_at_once() {
    init_logs();
    let schema = PgSchema::new();
    let gateway_store: Arc<dyn Store> = Arc::new(schema.store().await);
    let admin = schema.store().await;
    // Listening has started once the store says so.
    let _rx = gateway_store.service_changes();
    for _ in 0..500 {
        if gateway_store.listening() == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gateway_store.listening(), Some(true));
    sees_other_writers_at_once(gateway_store, &admin, Duration::from_secs(1)).await;
}

/// The same over one SQLite file opened by two stores, as a gateway and `tresor admin` in two
/// processes do: the gateway's store reads the service change counter every
/// `SQLITE_CHANGE_POLL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_over_sqlite_sees_other_processes_within_the_poll() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tresor.db");
    let gateway_store: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).await.unwrap());
    let admin = SqliteStore::open(&file).await.unwrap();
    sees_other_writers_at_once(
        gateway_store,
        &admin,
        tresor_store::SQLITE_CHANGE_POLL + Duration::from_secs(1),
    )
    .await;
}

/// `admin` (another store on the gateway's database) disables a service with an open
/// connection and adds one that was refused; the gateway, whose directory cache would keep
/// answers for a minute, must act on both within `bound`.
async fn sees_other_writers_at_once(
    gateway_store: Arc<dyn Store>,
    admin: &dyn Store,
    bound: Duration,
) {
    let mut tom = service("tom", "pw", &["127.0.0.1/32"], &["P1"]);
    admin
        .commit(one(Mutation::PutService(row(&tom, 1))))
        .await
        .unwrap();
    let node = FakeNode::start("n1", READY).await;
    let env = gateway_on(&gateway_store, &node, |c| {
        c.directory_cache_ttl = Duration::from_secs(60);
    })
    .await;
    let (reply, mut s) = env.login("tom", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut s, b"pg").await, b"pg");
    let (reply, _) = env.login("ann", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));

    let t0 = Instant::now();
    tom.record.disabled = true;
    admin
        .commit(one(Mutation::PutService(row(&tom, 2))))
        .await
        .unwrap();
    assert!(
        closes_within(&mut s, Duration::from_secs(5)).await,
        "the disabled service's connection stayed open"
    );
    let took = t0.elapsed();
    eprintln!("disabled service's connection closed {took:?} after the commit");
    assert!(took < bound, "took {took:?}");

    let ann = service("ann", "pw", &["127.0.0.1/32"], &["P1"]);
    admin
        .commit(one(Mutation::PutService(row(&ann, 1))))
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let (reply, _) = env.login("ann", "pw", "P1").await;
        if matches!(reply, GatewayMsg::Accepted { .. }) {
            break;
        }
        assert!(
            t0.elapsed() < bound,
            "the new service is still refused after {:?}: {reply:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("new service admitted {:?} after the commit", t0.elapsed());
    assert!(env.gw.stats().directory_changes >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_directory_reads_and_counts() {
    let mut off = service("off", "pw", &["10.1.0.0/16"], &["P1"]);
    off.record.disabled = true;
    let (_tmp, store) = store_with(&[service("sam", "pw", &["127.0.0.1/32"], &["P1"]), off]).await;
    let d = StoreDirectory::new(store.clone());
    let lists = d.allowlists().await.unwrap();
    assert_eq!(lists.len(), 1, "disabled services allow nothing");
    let e = d.lookup("sam").await.unwrap().unwrap();
    assert_eq!(e.record.partitions, vec!["P1".to_string()]);
    assert!(d.lookup("nobody").await.unwrap().is_none());
    d.record_failure("sam", 2, 1234).await.unwrap();
    let e = d.lookup("sam").await.unwrap().unwrap();
    assert_eq!((e.failures, e.locked_until), (2, 1234));
    assert!(d.record_failure("nobody", 1, 0).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_over_the_store() {
    init_logs();
    let node = FakeNode::start("n1", READY).await;
    let (_tmp, store) = store_with(&[service("tom", "pw", &["127.0.0.1/32"], &["P1"])]).await;
    let env = gateway_on(&store, &node, |_| {}).await;
    let (reply, _) = env.login("tom", "nope", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    assert_eq!(
        store
            .service_by_user("tom")
            .await
            .unwrap()
            .unwrap()
            .failures,
        1
    );
    let (reply, mut s) = env.login("tom", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut s, b"db").await, b"db");
    assert_eq!(
        store
            .service_by_user("tom")
            .await
            .unwrap()
            .unwrap()
            .failures,
        0
    );
}
