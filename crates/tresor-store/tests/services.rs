//! The service directory table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_store::{Mutation, ServiceRow, SqliteStore, Store, StoreError, WriteBatch};

fn row(name: &str, user: &str, version: i64) -> ServiceRow {
    ServiceRow {
        name: name.into(),
        service_user: user.into(),
        record_json: format!("{{\"v\":{version}}}").into_bytes(),
        failures: 0,
        locked_until: 0,
        version,
    }
}

async fn put(s: &SqliteStore, r: ServiceRow) -> Result<(), StoreError> {
    let mut b = WriteBatch::new();
    b.push(Mutation::PutService(r));
    s.commit(b).await
}

#[tokio::test]
async fn insert_update_lockout_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    assert!(s.services().await.unwrap().is_empty());
    put(&s, row("Acme", "acme-svc", 1)).await.unwrap();
    put(&s, row("Beta", "beta-svc", 1)).await.unwrap();

    // Both name and service user are unique.
    match put(&s, row("Acme", "other", 1)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("service name"), "{m}"),
        r => panic!("{r:?}"),
    }
    match put(&s, row("Other", "acme-svc", 1)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("service user"), "{m}"),
        r => panic!("{r:?}"),
    }

    // Update is compare-and-swap on version - 1.
    put(&s, row("Acme", "acme-svc", 2)).await.unwrap();
    match put(&s, row("Acme", "acme-svc", 2)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("version is 2"), "{m}"),
        r => panic!("{r:?}"),
    }
    match put(&s, row("X", "nobody", 5)).await {
        Err(StoreError::NotFound(_)) => {}
        r => panic!("{r:?}"),
    }
    let got = s.service_by_user("acme-svc").await.unwrap().unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.record_json, b"{\"v\":2}");

    // Lockout counters, without a version change.
    s.set_service_failures("acme-svc", 3, 1234).await.unwrap();
    let got = s.service_by_user("acme-svc").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until, got.version), (3, 1234, 2));
    assert!(matches!(
        s.set_service_failures("nobody", 1, 0).await,
        Err(StoreError::NotFound(_))
    ));

    let names: Vec<String> = s
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["Acme", "Beta"]);

    let mut b = WriteBatch::new();
    b.push(Mutation::DeleteService {
        service_user: "beta-svc".into(),
    });
    s.commit(b.clone()).await.unwrap();
    assert!(matches!(s.commit(b).await, Err(StoreError::NotFound(_))));
    assert!(s.service_by_user("beta-svc").await.unwrap().is_none());

    // Debug output leaves the record (with its password hash) out.
    let dbg = format!("{got:?}");
    assert!(!dbg.contains("record_json"), "{dbg}");
}
