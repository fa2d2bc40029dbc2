//! What only the PostgreSQL store has to prove: that two stores (two nodes) on one database
//! can race without both winning a compare-and-swap, forking an audit chain or losing an
//! update; that a deadlock victim is run again; that schemas keep clusters apart; and that the
//! URL's password never shows in an error. The behaviour both backends share is in
//! `behaviour.rs`. Every test works in a schema of its own (see `common/mod.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::Barrier;
use tresor_store::{Mutation, PgStore, PgStoreOptions, Store, StoreError};

/// Two stores on one schema, as two nodes of a cluster have.
async fn two_nodes(schema: &PgSchema) -> [Arc<dyn Store>; 2] {
    [
        Arc::new(pg_store(&schema.name, 8).await),
        Arc::new(pg_store(&schema.name, 8).await),
    ]
}

/// Run `tasks` copies of `f` at once (released together by a barrier), alternating between
/// the two nodes, and return their results in task order.
async fn race<T, F, Fut>(nodes: &[Arc<dyn Store>; 2], tasks: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let run = f(nodes[t % 2].clone(), t);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_race_has_one_winner_per_version() {
    let schema = PgSchema::new();
    let nodes = two_nodes(&schema).await;
    with_objects(&*nodes[0], 1).await;
    const TASKS: usize = 10;
    for v in 1..=15i64 {
        let results = race(&nodes, TASKS, move |store, t| async move {
            let mut row = object(1, 1);
            row.version = v + 1;
            row.sealed = vec![t as u8; 8];
            store
                .commit(batch([Mutation::UpdateObject {
                    row,
                    expected_version: v,
                }]))
                .await
        })
        .await;
        let winners: Vec<usize> = (0..TASKS).filter(|&t| results[t].is_ok()).collect();
        assert_eq!(winners.len(), 1, "version {v}: winners {winners:?}");
        for r in results.into_iter().filter(Result::is_err) {
            assert_conflict(r, &format!("object 1 version is {}, expected {v}", v + 1));
        }
        let stored = nodes[1].object(1, 1).await.unwrap().unwrap();
        assert_eq!(stored.version, v + 1);
        assert_eq!(stored.sealed, vec![winners[0] as u8; 8], "version {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_and_request_cas_races_have_one_winner() {
    let schema = PgSchema::new();
    let nodes = two_nodes(&schema).await;
    commit(
        &*nodes[0],
        [Mutation::InsertPartition(partition(1, "alpha"))],
    )
    .await
    .unwrap();
    nodes[0]
        .insert_requests(&[request("r1", "A", "PENDING", 1)])
        .await
        .unwrap();

    let results = race(&nodes, 8, |store, t| async move {
        let mut row = partition(1, "alpha");
        row.version = 2;
        row.sealed = vec![t as u8; 4];
        store
            .commit(batch([Mutation::UpdatePartition {
                row,
                expected_version: 1,
            }]))
            .await
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let winner = results.iter().position(Result::is_ok).unwrap();
    let p = nodes[1].partition(1).await.unwrap().unwrap();
    assert_eq!((p.version, p.sealed), (2, vec![winner as u8; 4]));

    // Two REST nodes approving one request: only one moves it.
    let results = race(&nodes, 8, |store, t| async move {
        let mut r = request("r1", "A", "APPROVED", 1);
        r.approvals_json = format!("[{t}]").into_bytes();
        r.version = 2;
        store.update_request(&r).await
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let winner = results.iter().position(Result::is_ok).unwrap();
    for r in results.into_iter().filter(Result::is_err) {
        assert_conflict(r, "version is 2, expected 1");
    }
    let got = nodes[0].request("A", "r1").await.unwrap().unwrap();
    assert_eq!(got.approvals_json, format!("[{winner}]").into_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_seq_appends_give_one_conflict() {
    let schema = PgSchema::new();
    let nodes = two_nodes(&schema).await;
    for seq in 1..=10i64 {
        let results = race(&nodes, 2, move |store, t| async move {
            let mut row = audit(3, seq);
            row.hash = vec![t as u8; 32];
            row.actor = format!("node-{t}");
            store.commit(batch([Mutation::AppendAudit(row)])).await
        })
        .await;
        let winners: Vec<usize> = (0..2).filter(|&t| results[t].is_ok()).collect();
        assert_eq!(winners.len(), 1, "seq {seq}: {results:?}");
        for r in results.into_iter().filter(Result::is_err) {
            assert_conflict(
                r,
                &format!("audit entry {seq} of partition 3 already exists"),
            );
        }
        let head = nodes[0].audit_head(3).await.unwrap().unwrap();
        assert_eq!(
            (head.seq, head.actor),
            (seq, format!("node-{}", winners[0]))
        );
    }
    // Many writers at once on one seq: still exactly one entry.
    let results = race(&nodes, 12, |store, t| async move {
        let mut row = audit(3, 11);
        row.hash = vec![t as u8; 32];
        store.commit(batch([Mutation::AppendAudit(row)])).await
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(nodes[1].audit_range(3, 1, 100).await.unwrap().len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_update_is_lost() {
    let schema = PgSchema::new();
    let nodes = two_nodes(&schema).await;
    with_objects(&*nodes[0], 1).await;
    const TASKS: usize = 8;
    const EACH: i64 = 12;
    // Each task adds EACH to a counter kept in the sealed blob by read-modify-write with
    // compare-and-swap (retried on conflict), and uses the object EACH times (blind increments
    // that land between other tasks' reads and writes).
    let conflicts = race(&nodes, TASKS, |store, _| async move {
        let mut conflicts = 0;
        for _ in 0..EACH {
            store
                .commit(batch([Mutation::AddUsage {
                    partition_id: 1,
                    object_id: 1,
                    n: 1,
                }]))
                .await
                .unwrap();
            loop {
                let mut o = store.object(1, 1).await.unwrap().unwrap();
                let counter = u64::from_be_bytes(o.sealed[..8].try_into().unwrap());
                o.sealed = (counter + 1).to_be_bytes().to_vec();
                let expected = o.version;
                o.version += 1;
                match store
                    .commit(batch([Mutation::UpdateObject {
                        row: o,
                        expected_version: expected,
                    }]))
                    .await
                {
                    Ok(()) => break,
                    Err(StoreError::Conflict(_)) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        conflicts
    })
    .await;
    let o = nodes[1].object(1, 1).await.unwrap().unwrap();
    let total = TASKS as i64 * EACH;
    let counter = u64::from_be_bytes(o.sealed[..8].try_into().unwrap());
    // The first read sees the fixture's 0xa5 bytes: count from there.
    let start = u64::from_be_bytes([0xa5; 8]);
    assert_eq!(
        counter.wrapping_sub(start),
        total as u64,
        "an increment was lost"
    );
    assert_eq!(o.version, 1 + total, "a compare-and-swap was lost");
    assert_eq!(o.usage_count, total, "a usage increment was lost");
    assert!(conflicts.iter().sum::<i32>() > 0, "the tasks never raced");
}

/// A transaction the server aborts to break a deadlock is run again, invisibly to the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deadlock_victim_is_run_again() {
    let schema = PgSchema::new();
    let store = pg_store(&schema.name, 4).await;
    with_objects(&store, 2).await;
    let mut other = pg_connection(&schema.name).await;
    let bump = |object_id: i64| {
        AssertSqlSafe(format!(
            "UPDATE objects SET usage_count = usage_count + 100 \
             WHERE partition_id = 1 AND object_id = {object_id}"
        ))
    };
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(bump(2)).execute(&mut other).await.unwrap();

    // The store's commit locks object 1, then waits for object 2.
    let s = store.clone();
    let commit = tokio::spawn(async move {
        s.commit(batch([
            Mutation::AddUsage {
                partition_id: 1,
                object_id: 1,
                n: 1,
            },
            Mutation::AddUsage {
                partition_id: 1,
                object_id: 2,
                n: 1,
            },
        ]))
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !commit.is_finished(),
        "the commit did not wait for the lock"
    );
    // Now the other transaction waits for object 1: a cycle. The store's transaction has waited
    // longer, so its deadlock check (after deadlock_timeout) fires first and aborts it.
    let started = Instant::now();
    sqlx::query(bump(1))
        .execute(&mut other)
        .await
        .expect("the other transaction was the deadlock victim; the test expects the store's");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    commit
        .await
        .unwrap()
        .expect("the deadlock victim was not run again");
    assert!(started.elapsed() < Duration::from_secs(30));
    for id in [1, 2] {
        assert_eq!(
            store.object(1, id).await.unwrap().unwrap().usage_count,
            101,
            "object {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_partition_while_another_node_inserts_leaves_no_object() {
    let schema = PgSchema::new();
    let nodes = two_nodes(&schema).await;
    for round in 0..5i64 {
        let pid = 100 + round;
        commit(
            &*nodes[0],
            [Mutation::InsertPartition(partition(
                pid,
                &format!("p{pid}"),
            ))],
        )
        .await
        .unwrap();
        let inserter = nodes[1].clone();
        let inserts = tokio::spawn(async move {
            let mut refused = 0;
            for i in 1..=60 {
                match commit(&*inserter, [Mutation::InsertObject(object(pid, i))]).await {
                    Ok(()) => {}
                    Err(StoreError::NotFound(m)) => {
                        assert!(m.contains("partition"), "{m}");
                        refused += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            refused
        });
        tokio::time::sleep(Duration::from_millis(5 * round as u64)).await;
        commit(
            &*nodes[0],
            [Mutation::DeletePartition { partition_id: pid }],
        )
        .await
        .unwrap();
        let refused = inserts.await.unwrap();
        assert_eq!(
            nodes[0].count_objects(pid).await.unwrap(),
            0,
            "round {round}"
        );
        assert!(refused <= 60);
    }
    let mut conn = pg_connection(&schema.name).await;
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM objects WHERE partition_id NOT IN (SELECT id FROM partitions)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_create_and_migrate_the_schema_once() {
    let schema = PgSchema::new();
    let name = schema.name.clone();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let name = name.clone();
            tokio::spawn(async move { pg_store(&name, 2).await })
        })
        .collect();
    let mut stores = Vec::new();
    for h in handles {
        stores.push(h.await.unwrap());
    }
    commit(
        &stores[0],
        [Mutation::InsertPartition(partition(1, "alpha"))],
    )
    .await
    .unwrap();
    assert!(stores[5].partition(1).await.unwrap().is_some());
    let mut conn = pg_connection(&name).await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 6);
}

#[tokio::test]
async fn reconnecting_keeps_data_and_migrations_are_idempotent() {
    let schema = PgSchema::new();
    {
        let store = pg_store(&schema.name, 2).await;
        commit(
            &store,
            [
                Mutation::PutCluster {
                    key: "master".into(),
                    value: vec![1, 2, 3],
                },
                Mutation::InsertPartition(partition(1, "alpha")),
                Mutation::InsertObject(object(1, 1)),
                Mutation::AppendAudit(audit(1, 1)),
                Mutation::PutCheckpoint(checkpoint(1, 1)),
            ],
        )
        .await
        .unwrap();
        store.close().await;
        assert!(
            store.cluster_get("master").await.is_err(),
            "a closed store still answers"
        );
    }
    for _ in 0..2 {
        let store = pg_store(&schema.name, 2).await;
        assert_eq!(store.schema(), Some(schema.name.as_str()));
        assert_eq!(
            store.cluster_get("master").await.unwrap(),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            store.partition(1).await.unwrap(),
            Some(partition(1, "alpha"))
        );
        assert_eq!(store.object(1, 1).await.unwrap(), Some(object(1, 1)));
        assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 1)));
        assert_eq!(store.checkpoints(1).await.unwrap(), vec![checkpoint(1, 1)]);
        store.close().await;
    }
    let mut conn = pg_connection(&schema.name).await;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn schemas_keep_clusters_apart() {
    let (one, two) = (PgSchema::new(), PgSchema::new());
    let a = pg_store(&one.name, 2).await;
    let b = pg_store(&two.name, 2).await;
    let mut pa = partition(1, "alpha");
    pa.sealed = vec![1];
    let mut pb = partition(1, "alpha");
    pb.sealed = vec![2];
    commit(&a, [Mutation::InsertPartition(pa.clone())])
        .await
        .unwrap();
    commit(&b, [Mutation::InsertPartition(pb.clone())])
        .await
        .unwrap();
    assert_eq!(a.partition(1).await.unwrap(), Some(pa));
    assert_eq!(b.partition(1).await.unwrap(), Some(pb));

    // Everything, the migration bookkeeping included, lives in the named schema.
    let mut conn = pg_connection("public").await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1 \
         ORDER BY table_name COLLATE \"C\"",
    )
    .bind(&one.name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "audit",
            "checkpoints",
            "cluster",
            "objects",
            "partitions",
            "requests",
            "services"
        ]
    );
}

#[tokio::test]
async fn bad_schema_names_are_refused_before_connecting() {
    for bad in ["Tresor", "a;drop", "1x", "", "a\"b"] {
        let opts = PgStoreOptions {
            schema: Some(bad.into()),
            ..Default::default()
        };
        // The port is closed: a connection attempt would fail differently.
        match PgStore::connect_with("postgres://u@127.0.0.1:1/x", opts).await {
            Err(StoreError::Database(m)) => assert!(m.contains("schema name"), "{m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// The parts of the test server's URL, to build URLs with other credentials.
fn server() -> (String, u16, String) {
    let opts = PgConnectOptions::from_str(&pg_url()).unwrap();
    (
        opts.get_host().to_string(),
        opts.get_port(),
        opts.get_database().unwrap_or("postgres").to_string(),
    )
}

#[tokio::test]
async fn connection_errors_do_not_show_the_password() {
    require_pg();
    const SECRET: &str = "Sup3r-S3cret";
    let (host, port, db) = server();
    let fast = PgStoreOptions {
        connect_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let cases = [
        // Nothing listens there.
        (
            format!("postgres://tresor:{SECRET}@127.0.0.1:1/{db}"),
            "postgres://tresor:***@127.0.0.1:1/",
        ),
        // The password percent-encoded: neither form may show.
        (
            format!("postgres://tresor:{SECRET}%40x@127.0.0.1:1/{db}"),
            "tresor:***@",
        ),
        // The server answers, and refuses the role.
        (
            format!("postgres://tresor_no_such_role:{SECRET}@{host}:{port}/{db}"),
            "tresor_no_such_role:***@",
        ),
        // The password as a query parameter.
        (
            format!("postgres://{host}:{port}/{db}?user=tresor_no_such_role&password={SECRET}"),
            "password=***",
        ),
        // Not even a valid URL.
        (
            format!("postgres://tresor:{SECRET}@{host}:notaport/{db}"),
            "tresor:***@",
        ),
    ];
    for (url, shown) in cases {
        match PgStore::connect_with(&url, fast.clone()).await {
            Err(StoreError::Database(m)) => {
                assert!(!m.contains(SECRET), "the password shows in {m:?}");
                assert!(!m.contains("Sup3r"), "part of the password shows in {m:?}");
                assert!(
                    m.contains(shown),
                    "{m:?} does not name the server as {shown:?}"
                );
            }
            other => panic!("{url}: expected a Database error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn debug_output_does_not_show_the_password() {
    let schema = PgSchema::new();
    const SECRET: &str = "Sup3r-S3cret";
    let (host, port, db) = server();
    let user = PgConnectOptions::from_str(&pg_url())
        .unwrap()
        .get_username()
        .to_string();
    let url = format!("postgres://{user}:{SECRET}@{host}:{port}/{db}");
    let opts = PgStoreOptions {
        schema: Some(schema.name.clone()),
        ..Default::default()
    };
    // Under trust authentication the password is not asked for and the store opens; under
    // password authentication it is refused. Either way it must not show.
    match PgStore::connect_with(&url, opts).await {
        Ok(store) => {
            let dbg = format!("{store:?}");
            assert!(!dbg.contains(SECRET), "{dbg}");
            assert!(dbg.contains(":***@"), "{dbg}");
            let as_dyn: Arc<dyn Store> = Arc::new(store);
            assert!(!format!("{as_dyn:?}").contains(SECRET));
        }
        Err(e) => assert!(!e.to_string().contains(SECRET), "{e}"),
    }
}

#[tokio::test]
async fn open_store_opens_postgres_urls() {
    let schema = PgSchema::new();
    let mut conn = pg_connection("public").await;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{}\"", schema.name)))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // The schema comes in through the URL's own options here, as an operator would write it.
    let base = pg_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{}", schema.name);
    let store = tresor_store::open_store(&url).await.unwrap();
    assert!(format!("{store:?}").starts_with("PgStore"), "{store:?}");
    commit(&*store, [Mutation::InsertPartition(partition(1, "alpha"))])
        .await
        .unwrap();
    let seen = pg_store(&schema.name, 1).await;
    assert_eq!(
        seen.partition(1).await.unwrap(),
        Some(partition(1, "alpha"))
    );
    let alt = url.replacen("postgres://", "postgresql://", 1);
    let store = tresor_store::open_store(&alt).await.unwrap();
    assert!(store.partition(1).await.unwrap().is_some());
}

/// `pg_url()` with `host` instead of its host and `params` added to its query string.
fn url_with(host: Option<&str>, params: &str) -> String {
    let opts = PgConnectOptions::from_str(&pg_url()).unwrap();
    let (_, port, db) = server();
    let user = opts.get_username();
    let host = host.unwrap_or(opts.get_host());
    format!("postgres://{user}@{host}:{port}/{db}?{params}")
}

/// The test server's certificate file, read from the server; the test fails if TLS is off
/// there (Debian's clusters have it on, with the "snakeoil" certificate for `localhost`).
async fn server_certificate() -> String {
    let mut conn = sqlx::PgConnection::connect(&url_with(None, "sslmode=disable"))
        .await
        .unwrap();
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        ssl, "on",
        "the test PostgreSQL server has ssl = off; these tests need it on (the Debian default)"
    );
    let (file,): (String,) = sqlx::query_as("SHOW ssl_cert_file")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    file
}

/// The libpq TLS settings of the URL take effect: TLS when asked (and by default, the server
/// offering it), none when disabled; `verify-full` accepts the server's certificate only from
/// the given root and for the name it carries; an unreadable root file is reported.
#[tokio::test]
async fn tls_settings_of_the_url_take_effect() {
    let schema = PgSchema::new();
    let cert = server_certificate().await;
    let opts = || PgStoreOptions {
        schema: Some(schema.name.clone()),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let security = |params: &'static str, host: Option<&'static str>| {
        let url = url_with(host, params);
        let opts = opts();
        async move {
            let store = PgStore::connect_with(&url, opts)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            store.transport_security().await.unwrap()
        }
    };
    for params in ["sslmode=require", "sslmode=prefer", ""] {
        let tls = security(params, None).await;
        assert!(
            tls.as_deref().is_some_and(|t| t.starts_with("TLSv1.")),
            "{params:?}: {tls:?}"
        );
    }
    assert_eq!(security("sslmode=disable", None).await, None);

    let verified = url_with(
        Some("localhost"),
        &format!("sslmode=verify-full&sslrootcert={cert}"),
    );
    let store = PgStore::connect_with(&verified, opts()).await.unwrap();
    assert!(store.transport_security().await.unwrap().is_some());

    let refused = [
        // The certificate names localhost, not this address.
        (
            url_with(
                Some("127.0.0.1"),
                &format!("sslmode=verify-full&sslrootcert={cert}"),
            ),
            "not valid for name",
        ),
        // A self-signed certificate is no public root's.
        (
            url_with(Some("localhost"), "sslmode=verify-full"),
            "UnknownIssuer",
        ),
        (
            url_with(Some("localhost"), "sslmode=verify-ca"),
            "UnknownIssuer",
        ),
        // No such root file (the URL in the message names it).
        (
            url_with(
                Some("localhost"),
                "sslmode=verify-full&sslrootcert=/nonexistent/root.pem",
            ),
            "No such file",
        ),
    ];
    for (url, why) in refused {
        match PgStore::connect_with(&url, opts()).await {
            Err(StoreError::Database(m)) => {
                assert!(
                    m.contains("connecting to PostgreSQL at") && m.contains(why),
                    "{url}: {m}"
                );
            }
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }
}

/// `partition_changes` on PostgreSQL: it moves once when listening starts, and never for a
/// partition of another schema (clusters sharing one database). What moves it within a schema
/// is held against both backends in `behaviour.rs::other_stores_partition_changes_are_reported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_changes_are_notified() {
    let schema = PgSchema::new();
    let [a, b] = two_nodes(&schema).await;
    let elsewhere_schema = PgSchema::new();
    let elsewhere = pg_store(&elsewhere_schema.name, 2).await;
    commit(&b, [Mutation::InsertPartition(partition(1, "alpha"))])
        .await
        .unwrap();
    commit(
        &elsewhere,
        [Mutation::InsertPartition(partition(1, "alpha"))],
    )
    .await
    .unwrap();
    let mut rx = a.partition_changes().expect("PostgreSQL notifies");
    // Listening started: the first move says "anything may have changed".
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("no first move")
        .unwrap();
    rx.borrow_and_update();
    let update = || {
        let mut row = partition(1, "alpha");
        row.version = 2;
        Mutation::UpdatePartition {
            row,
            expected_version: 1,
        }
    };
    commit(&elsewhere, [update()]).await.unwrap();
    assert!(stays_still(&mut rx).await, "moved for another schema");
    commit(&b, [update()]).await.unwrap();
    assert!(moves(&mut rx).await, "no move for this schema");
}

/// The change listener survives losing its connection: it reports itself down, connects again,
/// moves the counters once (changes may have been missed) and goes on reporting changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_listener_comes_back_after_losing_its_connection() {
    let schema = PgSchema::new();
    let [a, b] = two_nodes(&schema).await;
    let mut rx = a.service_changes().expect("PostgreSQL notifies");
    let up = |want: bool| {
        let a = a.clone();
        async move {
            for _ in 0..1000 {
                if a.listening() == Some(want) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        }
    };
    assert!(up(true).await, "never listened");
    rx.borrow_and_update();
    let mut conn = pg_connection(&schema.name).await;
    let app = format!("tresor listener {}", schema.name);
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&app)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, [true], "one listening connection named {app:?}");
    assert!(up(false).await, "the lost connection was not noticed");
    assert!(moves(&mut rx).await, "no move when listening again");
    assert!(up(true).await, "not listening again");
    commit(&b, [Mutation::PutService(service("S", "s", 1))])
        .await
        .unwrap();
    assert!(
        moves(&mut rx).await,
        "a change after the reconnect was not reported"
    );
}
