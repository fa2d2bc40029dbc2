//! What only the SQLite store has: a database file that survives reopening, the in-memory
//! store, and errors about paths. The behaviour both backends share is in `behaviour.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tresor_store::{Mutation, SqliteOptions, SqliteStore, Store, StoreError};

#[tokio::test]
async fn reopen_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
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
    }
    for _ in 0..2 {
        let store = SqliteStore::open_with(
            &path,
            SqliteOptions {
                synchronous_normal: true,
                max_connections: 2,
            },
        )
        .await
        .unwrap();
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
    // Without close, too (the WAL is replayed on open).
    let store = SqliteStore::open(&path).await.unwrap();
    commit(&store, [Mutation::AppendAudit(audit(1, 2))])
        .await
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 2)));
}

#[tokio::test]
async fn open_fails_cleanly_on_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteStore::open(&dir.path().join("missing-dir").join("x.db")).await;
    match r {
        Err(StoreError::Database(msg)) => assert!(msg.contains("missing-dir"), "{msg}"),
        other => panic!("expected a Database error, got {other:?}"),
    }
}

#[tokio::test]
async fn memory_store_works() {
    let store = SqliteStore::memory().await.unwrap();
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(1, "alpha")),
            Mutation::InsertObject(object(1, 1)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(store.object(1, 1).await.unwrap(), Some(object(1, 1)));
    assert_conflict(
        commit(&store, [Mutation::InsertObject(object(1, 1))]).await,
        "already exists",
    );
    assert_not_found(
        commit(&store, [Mutation::InsertObject(object(2, 1))]).await,
        "partition",
    );
    // Still usable and consistent after a rollback.
    assert_eq!(store.count_objects(1).await.unwrap(), 1);
    let store2 = SqliteStore::memory().await.unwrap();
    assert_eq!(
        store2.count_objects(1).await.unwrap(),
        0,
        "in-memory stores are private"
    );
}

#[tokio::test]
async fn open_store_opens_a_file_path_as_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.db");
    let store = tresor_store::open_store(path.to_str().unwrap())
        .await
        .unwrap();
    commit(&*store, [Mutation::InsertPartition(partition(1, "alpha"))])
        .await
        .unwrap();
    assert!(format!("{store:?}").contains("SqliteStore"), "{store:?}");
    drop(store);
    assert!(path.exists());
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        again.partition(1).await.unwrap(),
        Some(partition(1, "alpha"))
    );
}
