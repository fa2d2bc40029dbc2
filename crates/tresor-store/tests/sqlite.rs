//! Behaviour of the SQLite store on a real database file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tempfile::TempDir;
use tresor_store::{
    AuditRow, CheckpointRow, Mutation, ObjectFilter, ObjectRow, PartitionRow, SqliteOptions,
    SqliteStore, Store, StoreError, WriteBatch, CLUSTER_PARTITION,
};

async fn open() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tresor.db"))
        .await
        .unwrap();
    (dir, store)
}

fn batch(ms: impl IntoIterator<Item = Mutation>) -> WriteBatch {
    WriteBatch {
        mutations: ms.into_iter().collect(),
    }
}

async fn commit(
    store: &SqliteStore,
    ms: impl IntoIterator<Item = Mutation>,
) -> Result<(), StoreError> {
    store.commit(batch(ms)).await
}

fn partition(id: i64, name: &str) -> PartitionRow {
    PartitionRow {
        id,
        name: name.into(),
        created: 1_700_000_000,
        version: 1,
        sealed: vec![id as u8; 48],
        so_failures: 0,
        user_failures: 0,
    }
}

fn object(partition_id: i64, object_id: i64) -> ObjectRow {
    ObjectRow {
        partition_id,
        object_id,
        version: 1,
        class: 3,
        key_type: Some(0x40),
        label: format!("label-{object_id}"),
        ckaid: object_id.to_be_bytes().to_vec(),
        uuid: format!("00000000-0000-4000-8000-{object_id:012x}"),
        usage_count: 0,
        sealed: vec![0xa5; 32],
    }
}

fn audit(partition_id: i64, seq: i64) -> AuditRow {
    AuditRow {
        partition_id,
        seq,
        time_ns: 1_700_000_000_000_000_000 + seq,
        actor: "so".into(),
        action: "object.create".into(),
        object_id: Some(seq),
        detail: format!("{{\"seq\":{seq}}}"),
        prev_hash: vec![seq as u8 - 1; 32],
        hash: vec![seq as u8; 32],
    }
}

fn checkpoint(partition_id: i64, seq: i64) -> CheckpointRow {
    CheckpointRow {
        partition_id,
        seq,
        hash: vec![seq as u8; 32],
        time_ns: 42,
        signer_cert: vec![0x30, 0x82, 1, 2],
        signature: vec![9; 64],
    }
}

fn assert_conflict(r: Result<(), StoreError>, needle: &str) {
    match r {
        Err(StoreError::Conflict(msg)) => assert!(
            msg.contains(needle),
            "conflict message {msg:?} lacks {needle:?}"
        ),
        other => panic!("expected Conflict containing {needle:?}, got {other:?}"),
    }
}

fn assert_not_found(r: Result<(), StoreError>, needle: &str) {
    match r {
        Err(StoreError::NotFound(msg)) => assert!(
            msg.contains(needle),
            "not-found message {msg:?} lacks {needle:?}"
        ),
        other => panic!("expected NotFound containing {needle:?}, got {other:?}"),
    }
}

/// A store with partition 1 ("alpha") holding objects 1..=n.
async fn with_objects(n: i64) -> (TempDir, SqliteStore) {
    let (dir, store) = open().await;
    let mut ms = vec![Mutation::InsertPartition(partition(1, "alpha"))];
    ms.extend((1..=n).map(|i| Mutation::InsertObject(object(1, i))));
    commit(&store, ms).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn cluster_settings() {
    let (_dir, store) = open().await;
    assert_eq!(store.cluster_get("k").await.unwrap(), None);
    commit(
        &store,
        [Mutation::InsertCluster {
            key: "k".into(),
            value: b"v1".to_vec(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.cluster_get("k").await.unwrap(), Some(b"v1".to_vec()));

    assert_conflict(
        commit(
            &store,
            [Mutation::InsertCluster {
                key: "k".into(),
                value: b"v2".to_vec(),
            }],
        )
        .await,
        "cluster setting \"k\"",
    );
    assert_eq!(store.cluster_get("k").await.unwrap(), Some(b"v1".to_vec()));

    commit(
        &store,
        [Mutation::PutCluster {
            key: "k".into(),
            value: b"v3".to_vec(),
        }],
    )
    .await
    .unwrap();
    commit(
        &store,
        [Mutation::PutCluster {
            key: "new".into(),
            value: vec![],
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.cluster_get("k").await.unwrap(), Some(b"v3".to_vec()));
    assert_eq!(store.cluster_get("new").await.unwrap(), Some(vec![]));
}

#[tokio::test]
async fn partitions_insert_read_and_conflicts() {
    let (_dir, store) = open().await;
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(2, "zulu")),
            Mutation::InsertPartition(partition(1, "alpha")),
        ],
    )
    .await
    .unwrap();

    let all = store.partitions().await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "zulu"]
    );
    assert_eq!(
        store.partition(2).await.unwrap(),
        Some(partition(2, "zulu"))
    );
    assert_eq!(
        store.partition_by_name("alpha").await.unwrap(),
        Some(partition(1, "alpha"))
    );
    assert_eq!(store.partition(3).await.unwrap(), None);
    assert_eq!(store.partition_by_name("nope").await.unwrap(), None);

    assert_conflict(
        commit(&store, [Mutation::InsertPartition(partition(1, "other"))]).await,
        "partition 1",
    );
    assert_conflict(
        commit(&store, [Mutation::InsertPartition(partition(3, "alpha"))]).await,
        "name \"alpha\"",
    );
    assert_eq!(store.partitions().await.unwrap().len(), 2);
}

#[tokio::test]
async fn update_partition_is_compare_and_swap() {
    let (_dir, store) = open().await;
    commit(&store, [Mutation::InsertPartition(partition(1, "alpha"))])
        .await
        .unwrap();

    let mut row = partition(1, "alpha");
    row.version = 2;
    row.sealed = vec![7; 10];
    commit(
        &store,
        [Mutation::UpdatePartition {
            row: row.clone(),
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.partition(1).await.unwrap(), Some(row.clone()));

    let mut stale = row.clone();
    stale.version = 3;
    stale.sealed = vec![8; 10];
    assert_conflict(
        commit(
            &store,
            [Mutation::UpdatePartition {
                row: stale.clone(),
                expected_version: 1,
            }],
        )
        .await,
        "partition 1 version is 2, expected 1",
    );
    assert_eq!(store.partition(1).await.unwrap(), Some(row));

    stale.id = 9;
    assert_not_found(
        commit(
            &store,
            [Mutation::UpdatePartition {
                row: stale,
                expected_version: 2,
            }],
        )
        .await,
        "partition 9",
    );
}

#[tokio::test]
async fn pin_failures() {
    let (_dir, store) = open().await;
    commit(&store, [Mutation::InsertPartition(partition(1, "alpha"))])
        .await
        .unwrap();
    commit(
        &store,
        [Mutation::SetPinFailures {
            partition_id: 1,
            so_failures: 2,
            user_failures: 5,
        }],
    )
    .await
    .unwrap();
    let p = store.partition(1).await.unwrap().unwrap();
    assert_eq!((p.so_failures, p.user_failures, p.version), (2, 5, 1));
    assert_not_found(
        commit(
            &store,
            [Mutation::SetPinFailures {
                partition_id: 4,
                so_failures: 0,
                user_failures: 0,
            }],
        )
        .await,
        "partition 4",
    );
}

#[tokio::test]
async fn delete_partition_removes_objects_keeps_audit() {
    let (_dir, store) = with_objects(3).await;
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(2, "beta")),
            Mutation::InsertObject(object(2, 1)),
            Mutation::AppendAudit(audit(1, 1)),
            Mutation::AppendAudit(audit(1, 2)),
            Mutation::PutCheckpoint(checkpoint(1, 2)),
        ],
    )
    .await
    .unwrap();

    commit(
        &store,
        [
            Mutation::DeletePartition { partition_id: 1 },
            Mutation::AppendAudit(audit(CLUSTER_PARTITION, 1)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(store.partition(1).await.unwrap(), None);
    assert_eq!(store.count_objects(1).await.unwrap(), 0);
    assert_eq!(store.object(1, 1).await.unwrap(), None);
    // The other partition is untouched.
    assert_eq!(store.count_objects(2).await.unwrap(), 1);
    // The audit chain and its checkpoints outlive the partition.
    assert_eq!(
        store.audit_range(1, 1, 10).await.unwrap(),
        vec![audit(1, 1), audit(1, 2)]
    );
    assert_eq!(store.checkpoints(1).await.unwrap(), vec![checkpoint(1, 2)]);
    assert_eq!(
        store.audit_partitions().await.unwrap(),
        vec![CLUSTER_PARTITION, 1]
    );

    assert_not_found(
        commit(&store, [Mutation::DeletePartition { partition_id: 1 }]).await,
        "partition 1",
    );
    // The name is free again.
    commit(&store, [Mutation::InsertPartition(partition(3, "alpha"))])
        .await
        .unwrap();
    assert_eq!(store.count_objects(3).await.unwrap(), 0);
}

#[tokio::test]
async fn objects_insert_and_conflict() {
    let (_dir, store) = with_objects(2).await;
    assert_eq!(store.object(1, 2).await.unwrap(), Some(object(1, 2)));
    assert_eq!(store.object(1, 3).await.unwrap(), None);
    assert_eq!(store.object(2, 1).await.unwrap(), None);
    assert_eq!(store.count_objects(1).await.unwrap(), 2);

    let mut dup = object(1, 2);
    dup.label = "other".into();
    assert_conflict(
        commit(&store, [Mutation::InsertObject(dup)]).await,
        "object 2 of partition 1 already exists",
    );
    assert_eq!(store.object(1, 2).await.unwrap(), Some(object(1, 2)));

    // An object of an unknown partition is refused.
    assert_not_found(
        commit(&store, [Mutation::InsertObject(object(5, 1))]).await,
        "partition",
    );

    // Same object id in another partition is fine.
    let mut no_key_type = object(2, 2);
    no_key_type.key_type = None;
    no_key_type.label = String::new();
    no_key_type.ckaid = vec![];
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(2, "beta")),
            Mutation::InsertObject(no_key_type.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(store.object(2, 2).await.unwrap(), Some(no_key_type));
}

#[tokio::test]
async fn update_object_is_compare_and_swap() {
    let (_dir, store) = with_objects(1).await;
    let mut row = object(1, 1);
    row.version = 2;
    row.label = "renamed".into();
    row.key_type = None;
    row.sealed = vec![1, 2, 3];
    commit(
        &store,
        [Mutation::UpdateObject {
            row: row.clone(),
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.object(1, 1).await.unwrap(), Some(row.clone()));

    let mut stale = row.clone();
    stale.version = 3;
    assert_conflict(
        commit(
            &store,
            [Mutation::UpdateObject {
                row: stale.clone(),
                expected_version: 1,
            }],
        )
        .await,
        "object 1 version is 2, expected 1",
    );
    assert_eq!(store.object(1, 1).await.unwrap(), Some(row));

    stale.object_id = 77;
    assert_not_found(
        commit(
            &store,
            [Mutation::UpdateObject {
                row: stale,
                expected_version: 2,
            }],
        )
        .await,
        "object 77",
    );
}

#[tokio::test]
async fn update_object_keeps_concurrent_usage() {
    let (_dir, store) = with_objects(1).await;
    // The engine read the object with usage 0, then someone used it 3 times.
    let read = store.object(1, 1).await.unwrap().unwrap();
    commit(
        &store,
        [Mutation::AddUsage {
            partition_id: 1,
            object_id: 1,
            n: 3,
        }],
    )
    .await
    .unwrap();
    let mut row = read.clone();
    row.version = 2;
    commit(
        &store,
        [Mutation::UpdateObject {
            row,
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.object(1, 1).await.unwrap().unwrap().usage_count, 3);
    // A larger count is taken.
    let mut row = store.object(1, 1).await.unwrap().unwrap();
    row.version = 3;
    row.usage_count = 10;
    commit(
        &store,
        [Mutation::UpdateObject {
            row,
            expected_version: 2,
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.object(1, 1).await.unwrap().unwrap().usage_count, 10);
}

#[tokio::test]
async fn delete_object_is_compare_and_swap() {
    let (_dir, store) = with_objects(2).await;
    assert_conflict(
        commit(
            &store,
            [Mutation::DeleteObject {
                partition_id: 1,
                object_id: 1,
                expected_version: 4,
            }],
        )
        .await,
        "object 1 version is 1, expected 4",
    );
    assert!(store.object(1, 1).await.unwrap().is_some());
    commit(
        &store,
        [Mutation::DeleteObject {
            partition_id: 1,
            object_id: 1,
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(store.object(1, 1).await.unwrap(), None);
    assert_eq!(store.count_objects(1).await.unwrap(), 1);
    assert_not_found(
        commit(
            &store,
            [Mutation::DeleteObject {
                partition_id: 1,
                object_id: 1,
                expected_version: 1,
            }],
        )
        .await,
        "object 1",
    );
}

#[tokio::test]
async fn add_usage() {
    let (_dir, store) = with_objects(1).await;
    commit(
        &store,
        [
            Mutation::AddUsage {
                partition_id: 1,
                object_id: 1,
                n: 2,
            },
            Mutation::AddUsage {
                partition_id: 1,
                object_id: 1,
                n: 5,
            },
        ],
    )
    .await
    .unwrap();
    let o = store.object(1, 1).await.unwrap().unwrap();
    assert_eq!((o.usage_count, o.version), (7, 1));

    // A missing object (or partition) is ignored, and the rest of the batch applies.
    commit(
        &store,
        [
            Mutation::AddUsage {
                partition_id: 1,
                object_id: 99,
                n: 1,
            },
            Mutation::AddUsage {
                partition_id: 42,
                object_id: 1,
                n: 1,
            },
            Mutation::AppendAudit(audit(1, 1)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 1)));
    assert_eq!(store.object(1, 99).await.unwrap(), None);
}

#[tokio::test]
async fn audit_chain() {
    let (_dir, store) = open().await;
    assert_eq!(store.audit_head(1).await.unwrap(), None);
    assert!(store.audit_partitions().await.unwrap().is_empty());
    commit(&store, (1..=5).map(|s| Mutation::AppendAudit(audit(1, s))))
        .await
        .unwrap();
    let mut no_object = audit(CLUSTER_PARTITION, 1);
    no_object.object_id = None;
    commit(&store, [Mutation::AppendAudit(no_object.clone())])
        .await
        .unwrap();

    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 5)));
    assert_eq!(
        store.audit_head(CLUSTER_PARTITION).await.unwrap(),
        Some(no_object)
    );
    assert_eq!(
        store.audit_range(1, 2, 2).await.unwrap(),
        vec![audit(1, 2), audit(1, 3)]
    );
    assert_eq!(
        store.audit_range(1, 4, 100).await.unwrap(),
        vec![audit(1, 4), audit(1, 5)]
    );
    assert!(store.audit_range(1, 6, 100).await.unwrap().is_empty());
    assert!(store.audit_range(1, 1, 0).await.unwrap().is_empty());
    assert_eq!(
        store.audit_partitions().await.unwrap(),
        vec![CLUSTER_PARTITION, 1]
    );

    let mut fork = audit(1, 5);
    fork.hash = vec![0xff; 32];
    assert_conflict(
        commit(&store, [Mutation::AppendAudit(fork)]).await,
        "audit entry 5 of partition 1 already exists",
    );
    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 5)));
}

#[tokio::test]
async fn checkpoints() {
    let (_dir, store) = open().await;
    assert!(store.checkpoints(1).await.unwrap().is_empty());
    commit(
        &store,
        [
            Mutation::PutCheckpoint(checkpoint(1, 10)),
            Mutation::PutCheckpoint(checkpoint(1, 5)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        store.checkpoints(1).await.unwrap(),
        vec![checkpoint(1, 5), checkpoint(1, 10)]
    );
    assert_conflict(
        commit(&store, [Mutation::PutCheckpoint(checkpoint(1, 10))]).await,
        "checkpoint 10 of partition 1 already exists",
    );
    assert!(store.checkpoints(2).await.unwrap().is_empty());
}

#[tokio::test]
async fn batch_is_atomic() {
    let (_dir, store) = with_objects(1).await;
    let mut updated = object(1, 1);
    updated.version = 2;
    let r = commit(
        &store,
        [
            Mutation::InsertObject(object(1, 2)),
            Mutation::UpdateObject {
                row: updated,
                expected_version: 1,
            },
            Mutation::InsertObject(object(1, 1)), // conflicts
            Mutation::AppendAudit(audit(1, 1)),
        ],
    )
    .await;
    assert_conflict(r, "object 1 of partition 1 already exists");
    assert_eq!(store.object(1, 2).await.unwrap(), None);
    assert_eq!(store.object(1, 1).await.unwrap(), Some(object(1, 1)));
    assert_eq!(store.audit_head(1).await.unwrap(), None);

    // A CAS miss in the middle rolls back too, and the store stays usable.
    let r = commit(
        &store,
        [
            Mutation::PutCluster {
                key: "k".into(),
                value: vec![1],
            },
            Mutation::AppendAudit(audit(1, 1)),
            Mutation::DeleteObject {
                partition_id: 1,
                object_id: 1,
                expected_version: 9,
            },
        ],
    )
    .await;
    assert_conflict(r, "object 1 version is 1, expected 9");
    assert_eq!(store.cluster_get("k").await.unwrap(), None);
    assert_eq!(store.audit_head(1).await.unwrap(), None);

    commit(&store, []).await.unwrap();
    commit(&store, [Mutation::AppendAudit(audit(1, 1))])
        .await
        .unwrap();
    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 1)));
}

#[tokio::test]
async fn find_objects_filters_and_paging() {
    let (_dir, store) = open().await;
    let mut ms = vec![
        Mutation::InsertPartition(partition(1, "alpha")),
        Mutation::InsertPartition(partition(2, "beta")),
    ];
    for i in 1..=10 {
        let mut o = object(1, i * 10);
        o.class = if i <= 6 { 3 } else { 1 }; // private keys, then certificates
        o.key_type = if i <= 3 {
            Some(0)
        } else if i <= 6 {
            Some(3)
        } else {
            None
        };
        o.label = if i % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        };
        o.ckaid = vec![(i % 3) as u8];
        ms.push(Mutation::InsertObject(o));
    }
    ms.push(Mutation::InsertObject(object(2, 20))); // another partition, label "label-20"
    commit(&store, ms).await.unwrap();

    let ids = |rows: Vec<ObjectRow>| rows.iter().map(|o| o.object_id).collect::<Vec<_>>();
    let find = |f: ObjectFilter| {
        let store = store.clone();
        async move { ids(store.find_objects(1, &f).await.unwrap()) }
    };

    assert_eq!(
        find(ObjectFilter::default()).await,
        (1..=10).map(|i| i * 10).collect::<Vec<_>>()
    );
    assert_eq!(
        find(ObjectFilter {
            class: Some(1),
            ..Default::default()
        })
        .await,
        [70, 80, 90, 100]
    );
    assert_eq!(
        find(ObjectFilter {
            key_type: Some(3),
            ..Default::default()
        })
        .await,
        [40, 50, 60]
    );
    assert_eq!(
        find(ObjectFilter {
            class: Some(3),
            key_type: Some(0),
            ..Default::default()
        })
        .await,
        [10, 20, 30]
    );
    assert_eq!(
        find(ObjectFilter {
            label: Some("even".into()),
            ..Default::default()
        })
        .await,
        [20, 40, 60, 80, 100]
    );
    assert_eq!(
        find(ObjectFilter {
            ckaid: Some(vec![0]),
            ..Default::default()
        })
        .await,
        [30, 60, 90]
    );
    assert_eq!(
        find(ObjectFilter {
            uuid: Some(object(1, 50).uuid),
            ..Default::default()
        })
        .await,
        [50]
    );
    assert_eq!(
        find(ObjectFilter {
            label: Some("odd".into()),
            ckaid: Some(vec![1]),
            ..Default::default()
        })
        .await,
        [10, 70]
    );
    // Values that look like SQL are just values.
    assert!(find(ObjectFilter {
        label: Some("' OR 1=1 --".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    // Nothing of partition 2 leaks into partition 1.
    assert!(find(ObjectFilter {
        label: Some("label-20".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        ids(store
            .find_objects(2, &ObjectFilter::default())
            .await
            .unwrap()),
        [20]
    );
    assert!(store
        .find_objects(3, &ObjectFilter::default())
        .await
        .unwrap()
        .is_empty());

    // Paging.
    assert_eq!(
        find(ObjectFilter {
            limit: Some(3),
            ..Default::default()
        })
        .await,
        [10, 20, 30]
    );
    assert_eq!(
        find(ObjectFilter {
            limit: Some(3),
            after: Some(30),
            ..Default::default()
        })
        .await,
        [40, 50, 60]
    );
    assert_eq!(
        find(ObjectFilter {
            after: Some(85),
            ..Default::default()
        })
        .await,
        [90, 100]
    );
    assert!(find(ObjectFilter {
        limit: Some(0),
        ..Default::default()
    })
    .await
    .is_empty());
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = find(ObjectFilter {
            label: Some("even".into()),
            limit: Some(2),
            after,
            ..Default::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![20, 40], vec![60, 80], vec![100]]);

    // Full rows come back intact.
    let rows = store
        .find_objects(
            2,
            &ObjectFilter {
                uuid: Some(object(2, 20).uuid),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(rows.unwrap(), vec![object(2, 20)]);
}

#[tokio::test]
async fn object_versions() {
    let (_dir, store) = with_objects(3).await;
    let mut o = object(1, 2);
    o.version = 5;
    commit(
        &store,
        [Mutation::UpdateObject {
            row: o,
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        store.object_versions(1).await.unwrap(),
        vec![(1, 1), (2, 5), (3, 1)]
    );
    assert!(store.object_versions(2).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_with(
            &dir.path().join("c.db"),
            SqliteOptions {
                max_connections: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(1, "alpha")),
            Mutation::InsertObject(object(1, 1)),
        ],
    )
    .await
    .unwrap();

    const TASKS: i64 = 8;
    const ROUNDS: i64 = 15;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for r in 0..ROUNDS {
                // Blind increments: never lost.
                store
                    .commit(batch([Mutation::AddUsage {
                        partition_id: 1,
                        object_id: 1,
                        n: 1,
                    }]))
                    .await
                    .unwrap();
                // Own objects: never conflict.
                store
                    .commit(batch([Mutation::InsertObject(object(
                        1,
                        1000 + t * ROUNDS + r,
                    ))]))
                    .await
                    .unwrap();
                // Read-modify-write of a shared object: retried on CAS conflict.
                loop {
                    let mut o = store.object(1, 1).await.unwrap().unwrap();
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
                        Err(StoreError::Conflict(msg)) => {
                            assert!(msg.starts_with("object 1 version is "), "{msg}");
                            conflicts += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                    tokio::task::yield_now().await;
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }
    let o = store.object(1, 1).await.unwrap().unwrap();
    assert_eq!(
        o.version,
        1 + TASKS * ROUNDS,
        "a compare-and-swap update was lost"
    );
    assert_eq!(o.usage_count, TASKS * ROUNDS, "a usage increment was lost");
    assert_eq!(store.count_objects(1).await.unwrap(), 1 + TASKS * ROUNDS);
    // With 8 tasks racing on one version, some must have lost a race.
    assert!(conflicts > 0, "no CAS conflict observed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_never_fork() {
    let (_dir, store) = open().await;
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for t in 0..6u8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut appended = 0;
            while appended < 10 {
                let next = store.audit_head(1).await.unwrap().map_or(1, |h| h.seq + 1);
                let mut row = audit(1, next);
                row.actor = format!("task-{t}");
                match store.commit(batch([Mutation::AppendAudit(row)])).await {
                    Ok(()) => appended += 1,
                    Err(StoreError::Conflict(_)) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let chain = store.audit_range(1, 1, 1000).await.unwrap();
    assert_eq!(
        chain.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=60).collect::<Vec<_>>()
    );
}

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
