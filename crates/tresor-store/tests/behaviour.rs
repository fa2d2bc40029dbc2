//! The behaviour of the [`Store`] trait, held against both backends: every test here runs once
//! on SQLite (`sqlite::…`) and once on PostgreSQL (`postgres::…`, on the test server; see
//! `common/mod.rs`). Tests that need two nodes open two stores on the same database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use tresor_store::{
    ChainHead, Mutation, ObjectFilter, ObjectRow, StoreError, WriteBatch, CLUSTER_PARTITION,
};

/// Instantiate each named test (an `async fn(Backend)`) once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::Backend::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::Backend::postgres().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    service_changes_are_reported,
    other_stores_partition_changes_are_reported,
    cluster_settings,
    partitions_insert_read_and_conflicts,
    update_partition_is_compare_and_swap,
    partition_versions_follow_updates_and_deletions,
    pin_failures,
    delete_partition_removes_objects_keeps_audit,
    objects_insert_and_conflict,
    update_object_is_compare_and_swap,
    update_object_keeps_concurrent_usage,
    delete_object_is_compare_and_swap,
    add_usage,
    audit_chain,
    checkpoints,
    batch_is_atomic,
    find_objects_filters_and_paging,
    object_versions,
    listings_order_text_by_bytes,
    concurrent_commits,
    concurrent_audit_appends_never_fork,
    chained_commit_continues_the_head,
    chained_commit_errors_abort_everything,
    chained_commits_from_two_nodes_form_one_chain,
    requests_insert_read_update_by_tenant,
    finished_requests_expire_pending_ones_stay,
    services_insert_update_lockout_delete,
);

async fn cluster_settings(b: Backend) {
    let store = b.open().await;
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

async fn partitions_insert_read_and_conflicts(b: Backend) {
    let store = b.open().await;
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

async fn update_partition_is_compare_and_swap(b: Backend) {
    let store = b.open().await;
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

/// What a node polls to see which of its loaded partitions another node changed or deleted.
async fn partition_versions_follow_updates_and_deletions(b: Backend) {
    let store = b.open().await;
    assert!(store.partition_versions().await.unwrap().is_empty());
    commit(
        &store,
        [
            Mutation::InsertPartition(partition(1, "alpha")),
            Mutation::InsertPartition(partition(2, "beta")),
        ],
    )
    .await
    .unwrap();
    let sorted = |mut v: Vec<(i64, i64)>| {
        v.sort_unstable();
        v
    };
    assert_eq!(
        sorted(store.partition_versions().await.unwrap()),
        [(1, 1), (2, 1)]
    );
    let mut row = partition(2, "beta");
    row.version = 2;
    commit(
        &store,
        [Mutation::UpdatePartition {
            row,
            expected_version: 1,
        }],
    )
    .await
    .unwrap();
    // PIN failure counts are not part of the sealed state: they leave the version alone.
    commit(
        &store,
        [Mutation::SetPinFailures {
            partition_id: 1,
            so_failures: 1,
            user_failures: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        sorted(store.partition_versions().await.unwrap()),
        [(1, 1), (2, 2)]
    );
    commit(&store, [Mutation::DeletePartition { partition_id: 1 }])
        .await
        .unwrap();
    assert_eq!(store.partition_versions().await.unwrap(), [(2, 2)]);
}

async fn pin_failures(b: Backend) {
    let store = b.open().await;
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

async fn delete_partition_removes_objects_keeps_audit(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 3).await;
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

async fn objects_insert_and_conflict(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 2).await;
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

async fn update_object_is_compare_and_swap(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 1).await;
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

async fn update_object_keeps_concurrent_usage(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 1).await;
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

async fn delete_object_is_compare_and_swap(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 2).await;
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

async fn add_usage(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 1).await;
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

async fn audit_chain(b: Backend) {
    let store = b.open().await;
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

async fn checkpoints(b: Backend) {
    let store = b.open().await;
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

async fn batch_is_atomic(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 1).await;
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

async fn find_objects_filters_and_paging(b: Backend) {
    let store = b.open().await;
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

async fn object_versions(b: Backend) {
    let store = b.open().await;
    with_objects(&*store, 3).await;
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

/// Tasks on two stores (two nodes) commit at once: blind increments, inserts of their own
/// objects, and compare-and-swap updates of one shared object, retried on conflict.
async fn concurrent_commits(b: Backend) {
    let nodes = [b.open().await, b.open().await];
    let store = nodes[0].clone();
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
        let store = nodes[(t % 2) as usize].clone();
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

/// Tasks on two nodes append to one chain, each continuing the head it read: the losers of a
/// race get `Conflict` and try again, and the chain never forks.
async fn concurrent_audit_appends_never_fork(b: Backend) {
    let nodes = [b.open().await, b.open().await];
    let store = nodes[0].clone();
    let mut handles = Vec::new();
    for t in 0..6u8 {
        let store = nodes[usize::from(t % 2)].clone();
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

/// Names sort byte by byte on both backends (SQLite's BINARY collation; "C" on PostgreSQL),
/// whatever the server's locale.
async fn listings_order_text_by_bytes(b: Backend) {
    let store = b.open().await;
    let names = ["b", "B", "a", "Z", "é", "_x", "a b"];
    commit(
        &store,
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Mutation::InsertPartition(partition(i as i64 + 1, n))),
    )
    .await
    .unwrap();
    let listed: Vec<String> = store
        .partitions()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut bytewise: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    bytewise.sort();
    assert_eq!(listed, bytewise);
    // Equality is exact too: no case folding.
    assert_eq!(store.partition_by_name("A").await.unwrap(), None);
}

/// The head a chained commit hands its builder, and what the builder returns lands with the
/// batch.
async fn chained_commit_continues_the_head(b: Backend) {
    let store = b.open().await;
    let seen = Arc::new(head_slot::Slot::default());
    let slot = seen.clone();
    store
        .commit_chained(
            batch([Mutation::InsertPartition(partition(1, "alpha"))]),
            1,
            Box::new(move |head| {
                slot.put(head);
                Ok(vec![Mutation::AppendAudit(audit(1, 1))])
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        seen.take(),
        Some(ChainHead {
            seq: 0,
            hash: None,
            last_checkpoint: 0
        })
    );
    assert!(store.partition(1).await.unwrap().is_some());

    commit(
        &store,
        [
            Mutation::AppendAudit(audit(1, 2)),
            Mutation::AppendAudit(audit(1, 3)),
            Mutation::PutCheckpoint(checkpoint(1, 2)),
        ],
    )
    .await
    .unwrap();
    let slot = seen.clone();
    store
        .commit_chained(
            WriteBatch::new(),
            1,
            Box::new(move |head| {
                slot.put(head);
                Ok(vec![
                    Mutation::AppendAudit(audit(1, 4)),
                    Mutation::PutCheckpoint(checkpoint(1, 4)),
                ])
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        seen.take(),
        Some(ChainHead {
            seq: 3,
            hash: Some(audit(1, 3).hash),
            last_checkpoint: 2
        })
    );
    assert_eq!(store.audit_head(1).await.unwrap(), Some(audit(1, 4)));
    assert_eq!(
        store.last_checkpoint(1).await.unwrap(),
        Some(checkpoint(1, 4))
    );
    // Another partition's chain is its own.
    let slot = seen.clone();
    store
        .commit_chained(
            WriteBatch::new(),
            2,
            Box::new(move |head| {
                slot.put(head);
                Ok(vec![])
            }),
        )
        .await
        .unwrap();
    assert_eq!(seen.take().map(|h| h.seq), Some(0));
}

/// A builder's error, or a failing mutation of the batch, leaves nothing applied.
async fn chained_commit_errors_abort_everything(b: Backend) {
    let store = b.open().await;
    let r = store
        .commit_chained(
            batch([Mutation::PutCluster {
                key: "k".into(),
                value: vec![1],
            }]),
            1,
            Box::new(|_| Err("the builder refused".into())),
        )
        .await;
    assert_conflict(r, "the builder refused");
    assert_eq!(store.cluster_get("k").await.unwrap(), None);

    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    let r = store
        .commit_chained(
            batch([
                Mutation::PutCluster {
                    key: "k".into(),
                    value: vec![1],
                },
                Mutation::DeletePartition { partition_id: 9 },
            ]),
            1,
            Box::new(move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(vec![Mutation::AppendAudit(audit(1, 1))])
            }),
        )
        .await;
    assert_not_found(r, "partition 9");
    assert!(
        !called.load(Ordering::SeqCst),
        "the builder ran after a failed batch"
    );
    assert_eq!(store.cluster_get("k").await.unwrap(), None);
    assert_eq!(store.audit_head(1).await.unwrap(), None);

    // A builder whose rows collide with the chain (a stale seq) fails as a whole.
    commit(&store, [Mutation::AppendAudit(audit(1, 1))])
        .await
        .unwrap();
    let r = store
        .commit_chained(
            batch([Mutation::PutCluster {
                key: "k".into(),
                value: vec![2],
            }]),
            1,
            Box::new(|_| Ok(vec![Mutation::AppendAudit(audit(1, 1))])),
        )
        .await;
    assert_conflict(r, "audit entry 1 of partition 1 already exists");
    assert_eq!(store.cluster_get("k").await.unwrap(), None);
}

/// Chained commits from tasks on two nodes never conflict on the chain: each continues the head
/// the previous one committed, and the result is one unbroken chain.
async fn chained_commits_from_two_nodes_form_one_chain(b: Backend) {
    let nodes = [b.open().await, b.open().await];
    const TASKS: u8 = 6;
    const EACH: u8 = 10;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = nodes[usize::from(t % 2)].clone();
        handles.push(tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .commit_chained(
                        WriteBatch::new(),
                        7,
                        Box::new(move |head| {
                            let seq = head.seq + 1;
                            let mut row = audit(7, seq);
                            row.actor = format!("task-{t}");
                            row.prev_hash = head.hash.unwrap_or_else(|| vec![0; 32]);
                            row.hash = [vec![t, i], seq.to_be_bytes().to_vec()].concat();
                            Ok(vec![Mutation::AppendAudit(row)])
                        }),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("task {t}, commit {i}: {e}"));
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let chain = nodes[1].audit_range(7, 1, 1000).await.unwrap();
    let n = i64::from(TASKS) * i64::from(EACH);
    assert_eq!(
        chain.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    assert_eq!(chain[0].prev_hash, vec![0; 32]);
    for pair in chain.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "the chain forks at {}",
            pair[1].seq
        );
    }
}

/// The REST request table: batch insert, tenant-scoped reads, compare-and-swap updates.
async fn requests_insert_read_update_by_tenant(b: Backend) {
    let s = b.open().await;
    s.insert_requests(&[
        request("r1", "A", "PENDING", 10),
        request("r2", "A", "EXECUTED", 20),
        request("r3", "B", "PENDING", 30),
    ])
    .await
    .unwrap();
    s.insert_requests(&[]).await.unwrap();

    // Reads are scoped to the tenant.
    assert_eq!(
        s.request("A", "r1").await.unwrap().unwrap().status,
        "PENDING"
    );
    assert!(s.request("B", "r1").await.unwrap().is_none());
    assert!(s.request("A", "nope").await.unwrap().is_none());
    let all_a: Vec<String> = s
        .requests("A", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all_a, ["r2", "r1"], "newest first");
    let pending_a = s.requests("A", Some("PENDING"), 10).await.unwrap();
    assert_eq!(pending_a.len(), 1);
    assert_eq!(s.requests("A", None, 1).await.unwrap().len(), 1);
    assert!(s.requests("A", None, 0).await.unwrap().is_empty());
    // The whole row comes back as written.
    assert_eq!(
        s.request("B", "r3").await.unwrap().unwrap(),
        request("r3", "B", "PENDING", 30)
    );

    // A duplicate id in a batch refuses the whole batch.
    match s
        .insert_requests(&[
            request("r4", "A", "PENDING", 40),
            request("r1", "A", "PENDING", 40),
        ])
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        r => panic!("{r:?}"),
    }
    assert!(s.request("A", "r4").await.unwrap().is_none());
    // New rows start at version 1.
    let mut v2 = request("r5", "A", "PENDING", 50);
    v2.version = 2;
    assert!(matches!(
        s.insert_requests(&[v2]).await,
        Err(StoreError::Conflict(_))
    ));

    // Compare-and-swap: the first writer wins, a stale one conflicts, another tenant's id is
    // not found.
    let mut r = s.request("A", "r1").await.unwrap().unwrap();
    r.status = "APPROVED".into();
    r.approvals_json = br#"["pk1"]"#.to_vec();
    r.result = Some(b"c2lnbmF0dXJl".to_vec());
    r.error = Some("{}".into());
    r.executed = Some(99);
    r.version = 2;
    s.update_request(&r).await.unwrap();
    let mut stale = r.clone();
    stale.status = "CANCELLED".into();
    assert_conflict(s.update_request(&stale).await, "version is 2, expected 1");
    let mut other = r.clone();
    other.tenant = "B".into();
    other.version = 3;
    assert!(matches!(
        s.update_request(&other).await,
        Err(StoreError::NotFound(_))
    ));
    let got = s.request("A", "r1").await.unwrap().unwrap();
    assert_eq!(got, r);

    // Many rows in one call (more than one multi-row statement).
    let many: Vec<_> = (0..600)
        .map(|i| request(&format!("m{i:04}"), "C", "EXECUTED", 1000 + i))
        .collect();
    s.insert_requests(&many).await.unwrap();
    assert_eq!(s.requests("C", None, 1000).await.unwrap().len(), 600);
}

async fn finished_requests_expire_pending_ones_stay(b: Backend) {
    let s = b.open().await;
    s.insert_requests(&[
        request("old-done", "A", "EXECUTED", 10),
        request("old-failed", "A", "FAILED", 11),
        request("old-cancelled", "A", "CANCELLED", 12),
        request("old-pending", "A", "PENDING", 13),
        request("old-approved", "A", "APPROVED", 14),
        request("new-done", "A", "EXECUTED", 100),
        request("other-tenant", "B", "EXECUTED", 10),
    ])
    .await
    .unwrap();
    // The limit bounds one call.
    assert_eq!(s.delete_finished_requests("A", 50, 2).await.unwrap(), 2);
    assert_eq!(s.delete_finished_requests("A", 50, 100).await.unwrap(), 1);
    assert_eq!(s.delete_finished_requests("A", 50, 100).await.unwrap(), 0);
    let mut left: Vec<String> = s
        .requests("A", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    left.sort();
    assert_eq!(left, ["new-done", "old-approved", "old-pending"]);
    assert!(s.request("B", "other-tenant").await.unwrap().is_some());
}

/// The service directory table.
async fn services_insert_update_lockout_delete(b: Backend) {
    let s = b.open().await;
    let put = |r| {
        let s = s.clone();
        async move { s.commit(batch([Mutation::PutService(r)])).await }
    };
    assert!(s.services().await.unwrap().is_empty());
    put(service("Acme", "acme-svc", 1)).await.unwrap();
    put(service("Beta", "beta-svc", 1)).await.unwrap();

    // Both name and service user are unique.
    match put(service("Acme", "other", 1)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("service name"), "{m}"),
        r => panic!("{r:?}"),
    }
    match put(service("Other", "acme-svc", 1)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("service user"), "{m}"),
        r => panic!("{r:?}"),
    }

    // Update is compare-and-swap on version - 1.
    put(service("Acme", "acme-svc", 2)).await.unwrap();
    match put(service("Acme", "acme-svc", 2)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("version is 2"), "{m}"),
        r => panic!("{r:?}"),
    }
    match put(service("X", "nobody", 5)).await {
        Err(StoreError::NotFound(_)) => {}
        r => panic!("{r:?}"),
    }
    // Renaming onto another service's name is refused.
    match put(service("Beta", "acme-svc", 3)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("service name"), "{m}"),
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

    let del = batch([Mutation::DeleteService {
        service_user: "beta-svc".into(),
    }]);
    s.commit(del.clone()).await.unwrap();
    assert!(matches!(s.commit(del).await, Err(StoreError::NotFound(_))));
    assert!(s.service_by_user("beta-svc").await.unwrap().is_none());

    // Debug output leaves the record (with its password hash) out.
    let dbg = format!("{got:?}");
    assert!(!dbg.contains("record_json"), "{dbg}");
}

/// A place a chain builder (which must be `'static`) reports the head it was given.
mod head_slot {
    use std::sync::Mutex;

    use tresor_store::ChainHead;

    #[derive(Default)]
    pub struct Slot(Mutex<Option<ChainHead>>);

    impl Slot {
        pub fn put(&self, head: ChainHead) {
            *self.0.lock().unwrap() = Some(head);
        }

        pub fn take(&self) -> Option<ChainHead> {
            self.0.lock().unwrap().take()
        }
    }
}

/// `Store::service_changes` moves after a service is added, replaced or deleted (here through
/// the same store; on PostgreSQL through another node's too), not for lockout counters or
/// other tables.
async fn service_changes_are_reported(b: Backend) {
    use std::time::Duration;
    let s = b.open().await;
    let mut rx = s
        .service_changes()
        .expect("both backends report service changes");
    if matches!(b, Backend::Postgres(_)) {
        // The listener's start moves the counter once: wait for it.
        for _ in 0..500 {
            if s.listening() == Some(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.listening(), Some(true), "PostgreSQL listens");
    } else {
        assert_eq!(s.listening(), None);
    }
    rx.borrow_and_update();
    commit(&s, [Mutation::PutService(service("A", "a", 1))])
        .await
        .unwrap();
    assert!(moves(&mut rx).await, "no move for a new service");
    s.set_service_failures("a", 3, 0).await.unwrap();
    commit(&s, [Mutation::InsertPartition(partition(1, "p"))])
        .await
        .unwrap();
    // A rolled back batch changes nothing.
    assert!(commit(
        &s,
        [
            Mutation::PutService(service("A", "a", 2)),
            Mutation::PutService(service("B", "a", 1)),
        ]
    )
    .await
    .is_err());
    assert!(
        stays_still(&mut rx).await,
        "moved for counters, a partition or a rollback"
    );
    commit(&s, [Mutation::PutService(service("A", "a", 2))])
        .await
        .unwrap();
    assert!(moves(&mut rx).await, "no move for a new version");
    commit(
        &s,
        [Mutation::DeleteService {
            service_user: "a".into(),
        }],
    )
    .await
    .unwrap();
    assert!(moves(&mut rx).await, "no move for a deletion");
    // Another node or process on the same database (on SQLite: another pool on the file, as
    // a second process has, seen through the change counter's poll).
    let other = b.open().await;
    commit(&other, [Mutation::PutService(service("C", "c", 1))])
        .await
        .unwrap();
    assert!(
        moves(&mut rx).await,
        "another node's change was not reported"
    );
    other.set_service_failures("c", 2, 0).await.unwrap();
    assert!(
        stays_still(&mut rx).await,
        "moved for another node's lockout counters"
    );
    commit(
        &other,
        [Mutation::DeleteService {
            service_user: "c".into(),
        }],
    )
    .await
    .unwrap();
    assert!(
        moves(&mut rx).await,
        "another node's deletion was not reported"
    );
    // Each change is reported once: nothing more comes after the poll has seen it.
    assert!(stays_still(&mut rx).await, "a change was reported twice");
}

/// `partition_changes` moves when another store on the same database (another node, or on
/// SQLite another process) gives a partition a new version or deletes it, not for its PIN
/// failure counters; on SQLite this store's own commits do not move it either.
async fn other_stores_partition_changes_are_reported(b: Backend) {
    use std::time::Duration;
    let s = b.open().await;
    let other = b.open().await;
    commit(&other, [Mutation::InsertPartition(partition(1, "p"))])
        .await
        .unwrap();
    let mut rx = s
        .partition_changes()
        .expect("both file and server stores report partition changes");
    if matches!(b, Backend::Postgres(_)) {
        // Listening started: the first move says "anything may have changed".
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("no first move")
            .unwrap();
    }
    rx.borrow_and_update();
    commit(
        &other,
        [Mutation::SetPinFailures {
            partition_id: 1,
            so_failures: 1,
            user_failures: 2,
        }],
    )
    .await
    .unwrap();
    assert!(stays_still(&mut rx).await, "moved for PIN failure counters");
    let update = |version: i64| {
        let mut row = partition(1, "p");
        row.version = version;
        Mutation::UpdatePartition {
            row,
            expected_version: version - 1,
        }
    };
    commit(&other, [update(2)]).await.unwrap();
    assert!(moves(&mut rx).await, "no move for another store's update");
    if matches!(b, Backend::Sqlite(_)) {
        commit(&s, [update(3)]).await.unwrap();
        assert!(
            stays_still(&mut rx).await,
            "moved for this store's own update"
        );
    }
    commit(&other, [Mutation::DeletePartition { partition_id: 1 }])
        .await
        .unwrap();
    assert!(moves(&mut rx).await, "no move for another store's deletion");
    assert!(stays_still(&mut rx).await, "a change was reported twice");
}
