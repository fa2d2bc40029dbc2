//! The REST request table: batch insert, tenant-scoped reads, compare-and-swap updates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_store::{RequestRow, SqliteStore, Store, StoreError};

fn row(id: &str, tenant: &str, status: &str, created: i64) -> RequestRow {
    RequestRow {
        id: id.into(),
        tenant: tenant.into(),
        kind: "Sign".into(),
        status: status.into(),
        key_name: Some("k".into()),
        request_json: b"{}".to_vec(),
        approvals_json: b"[]".to_vec(),
        result: None,
        error: None,
        created,
        updated: created,
        executed: None,
        expires: Some(created + 600),
        version: 1,
    }
}

#[tokio::test]
async fn insert_read_update_by_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    s.insert_requests(&[
        row("r1", "A", "PENDING", 10),
        row("r2", "A", "EXECUTED", 20),
        row("r3", "B", "PENDING", 30),
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

    // A duplicate id in a batch refuses the whole batch.
    match s
        .insert_requests(&[row("r4", "A", "PENDING", 40), row("r1", "A", "PENDING", 40)])
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        r => panic!("{r:?}"),
    }
    assert!(s.request("A", "r4").await.unwrap().is_none());
    // New rows start at version 1.
    let mut v2 = row("r5", "A", "PENDING", 50);
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
    r.version = 2;
    s.update_request(&r).await.unwrap();
    let mut stale = r.clone();
    stale.status = "CANCELLED".into();
    assert!(matches!(
        s.update_request(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    let mut other = r.clone();
    other.tenant = "B".into();
    other.version = 3;
    assert!(matches!(
        s.update_request(&other).await,
        Err(StoreError::NotFound(_))
    ));
    let got = s.request("A", "r1").await.unwrap().unwrap();
    assert_eq!((got.status.as_str(), got.version), ("APPROVED", 2));
    assert_eq!(got.approvals_json, br#"["pk1"]"#.to_vec());
}

#[tokio::test]
async fn finished_requests_expire_pending_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    s.insert_requests(&[
        row("old-done", "A", "EXECUTED", 10),
        row("old-failed", "A", "FAILED", 11),
        row("old-cancelled", "A", "CANCELLED", 12),
        row("old-pending", "A", "PENDING", 13),
        row("old-approved", "A", "APPROVED", 14),
        row("new-done", "A", "EXECUTED", 100),
        row("other-tenant", "B", "EXECUTED", 10),
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
