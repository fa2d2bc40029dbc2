//! The request table: every synchronous sign, decrypt, unwrap, block and unblock gets a
//! request id (returned in the `X-Request-Id` header) and a row in the store's `requests`
//! table, so `GET /v1/request/{id}` answers for it. Rows are written by one background task in
//! batches (one transaction per batch), so recording never adds a database commit to a
//! request's latency; a row not yet written is served from memory. The rows gathered are
//! written when the service stops ([`Requests::flush`]).
//!
//! Finished requests are deleted once they are older than the retention (default 24 hours,
//! [`Retention`]), by a sweep every minute, so the table holds a bounded window of history
//! however many requests pass; pending and approved requests are never swept.
//!
//! The asynchronous approval workflow of a later stage uses the same rows (PENDING → …).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tresor_store::{RequestRow, Store};

use crate::error::{code, ApiError, ApiResult};
use crate::tenant::Tenant;

/// How a synchronous request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Ran; the result the client may fetch later, if any.
    Executed(Option<String>),
    /// Failed with this error.
    Failed(ApiError),
}

/// Most rows written in one transaction.
const BATCH: usize = 4096;

/// How long the writer gathers rows before writing them (one transaction, one fsync).
const GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// How long finished requests are kept, and whose.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Age (from creation) after which a finished request is deleted; `None` keeps them all.
    pub keep: Option<std::time::Duration>,
    /// The tenants whose requests are swept (the service's tenants).
    pub tenants: Vec<String>,
    /// Time between sweeps.
    pub every: std::time::Duration,
}

/// The default retention of finished requests.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Rows deleted per statement (bounds how long one sweep holds the store's write lock).
const SWEEP_CHUNK: u32 = 10_000;

impl Retention {
    /// The default: keep finished requests 24 hours, sweep every minute.
    pub fn default_for(tenants: Vec<String>) -> Self {
        Retention {
            keep: Some(DEFAULT_RETENTION),
            tenants,
            every: std::time::Duration::from_secs(60),
        }
    }
}

/// Delete the finished requests of `tenants` created before `cutoff` (Unix seconds), in
/// chunks; how many went.
pub async fn sweep(store: &Arc<dyn Store>, tenants: &[String], cutoff: i64) -> u64 {
    let mut total = 0u64;
    for t in tenants {
        loop {
            match store.delete_finished_requests(t, cutoff, SWEEP_CHUNK).await {
                Ok(n) => {
                    total += n;
                    if n < u64::from(SWEEP_CHUNK) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(tenant = %t, error = %e, "cannot delete finished requests");
                    break;
                }
            }
        }
    }
    total
}

/// What the writer task is sent.
enum Msg {
    /// A row to write.
    Row(Box<RequestRow>),
    /// Write what has been gathered now and answer (shutdown).
    Flush(oneshot::Sender<()>),
}

/// The request recorder.
pub struct Requests {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Msg>,
    pending: Arc<Mutex<HashMap<String, RequestRow>>>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("pending", &self.pending.lock().len())
            .finish()
    }
}

/// A new request id: a time-ordered UUIDv7, so rows arrive in id order and the table's
/// primary-key index grows at its end instead of taking random inserts, which cost several
/// times more per row once the table outgrows the page cache. Reads are filtered by tenant
/// whatever the id, so its timestamp part grants nothing.
fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn write(
    store: &Arc<dyn Store>,
    pending: &Mutex<HashMap<String, RequestRow>>,
    batch: &mut Vec<RequestRow>,
) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.insert_requests(batch).await {
        tracing::error!(error = %e, rows = batch.len(), "cannot record requests");
    }
    let mut p = pending.lock();
    for r in batch.drain(..) {
        p.remove(&r.id);
    }
}

impl Requests {
    /// Start the recorder's writer, and the sweeper of finished requests, on the current
    /// runtime.
    pub fn start(store: Arc<dyn Store>, retention: Retention) -> Arc<Self> {
        if let Some(keep) = retention.keep {
            let sweep_store = store.clone();
            let keep = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(retention.every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let cutoff = now().saturating_sub(keep);
                    let n = sweep(&sweep_store, &retention.tenants, cutoff).await;
                    if n > 0 {
                        tracing::info!(
                            deleted = n,
                            "finished requests past their retention deleted"
                        );
                    }
                }
            });
        }
        let (tx, mut rx) = mpsc::channel::<Msg>(4 * BATCH);
        let pending: Arc<Mutex<HashMap<String, RequestRow>>> = Arc::default();
        let writer_store = store.clone();
        let writer_pending = pending.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                let mut flushed = Vec::new();
                match first {
                    Msg::Row(r) => batch.push(*r),
                    Msg::Flush(done) => flushed.push(done),
                }
                let until = tokio::time::Instant::now() + GATHER;
                while batch.len() < BATCH && flushed.is_empty() {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(Msg::Row(r))) => batch.push(*r),
                        Ok(Some(Msg::Flush(done))) => flushed.push(done),
                        Ok(None) | Err(_) => break,
                    }
                }
                write(&writer_store, &writer_pending, &mut batch).await;
                for done in flushed {
                    let _ = done.send(());
                }
            }
        });
        Arc::new(Requests { store, tx, pending })
    }

    /// Write every row recorded so far (called when the service stops).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Record a synchronous request of `kind` and return its id.
    pub async fn record(
        &self,
        t: &Tenant,
        kind: &str,
        key: Option<&str>,
        outcome: Outcome,
    ) -> String {
        let id = new_request_id();
        let ts = now();
        let (status, result, error) = match outcome {
            Outcome::Executed(r) => ("EXECUTED", r.map(String::into_bytes), None),
            Outcome::Failed(e) => ("FAILED", None, serde_json::to_string(&e.body()).ok()),
        };
        let row = RequestRow {
            id: id.clone(),
            tenant: t.name.clone(),
            kind: kind.to_owned(),
            status: status.to_owned(),
            key_name: key.map(str::to_owned),
            request_json: serde_json::json!({"type": kind, "keyName": key, "synchronous": true})
                .to_string()
                .into_bytes(),
            approvals_json: b"[]".to_vec(),
            result,
            error,
            created: ts,
            updated: ts,
            executed: Some(ts),
            expires: None,
            version: 1,
        };
        self.pending.lock().insert(id.clone(), row.clone());
        if self.tx.send(Msg::Row(Box::new(row))).await.is_err() {
            tracing::error!("the request recorder has stopped");
            self.pending.lock().remove(&id);
        }
        id
    }

    /// A request of the caller's tenant.
    pub async fn get(&self, t: &Tenant, id: &str) -> ApiResult<RequestRow> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::new(code::REQUEST_NOT_EXISTENT, "no such request"));
        }
        if let Some(r) = self.pending.lock().get(id).filter(|r| r.tenant == t.name) {
            return Ok(r.clone());
        }
        self.store
            .request(&t.name, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(code::REQUEST_NOT_EXISTENT, "no such request"))
    }

    /// Cancel a pending request (synchronous ones have already run).
    pub async fn cancel(&self, t: &Tenant, id: &str) -> ApiResult<()> {
        let mut row = self.get(t, id).await?;
        if row.status != "PENDING" {
            return Err(ApiError::new(
                code::UNSUPPORTED_OPERATION,
                format!(
                    "the request is {}; only pending requests can be cancelled",
                    row.status
                ),
            ));
        }
        row.status = "CANCELLED".into();
        row.updated = now();
        row.version += 1;
        self.store
            .update_request(&row)
            .await
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(id: &str, status: &str, created: i64) -> RequestRow {
        RequestRow {
            id: id.into(),
            tenant: "t1".into(),
            kind: "Sign".into(),
            status: status.into(),
            key_name: None,
            request_json: b"{}".to_vec(),
            approvals_json: b"[]".to_vec(),
            result: None,
            error: None,
            created,
            updated: created,
            executed: None,
            expires: None,
            version: 1,
        }
    }

    #[test]
    fn request_ids_are_time_ordered_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        for id in &ids {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids made one after another sort in that order");
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[tokio::test]
    async fn sweep_deletes_old_finished_requests_in_chunks() {
        let store: Arc<dyn Store> = Arc::new(tresor_store::SqliteStore::memory().await.unwrap());
        let mut rows: Vec<RequestRow> = (0..(SWEEP_CHUNK + 5))
            .map(|i| row(&format!("old-{i}"), "EXECUTED", 100))
            .collect();
        rows.push(row("old-pending", "PENDING", 100));
        rows.push(row("recent", "EXECUTED", 10_000));
        store.insert_requests(&rows).await.unwrap();
        let n = sweep(&store, &["t1".into(), "nobody".into()], 5_000).await;
        assert_eq!(n, u64::from(SWEEP_CHUNK) + 5);
        let left: Vec<String> = store
            .requests("t1", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, ["recent", "old-pending"]);
    }
}
