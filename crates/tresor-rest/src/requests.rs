//! The request table: every synchronous sign, decrypt, unwrap, block and unblock gets a
//! request id (returned in the `X-Request-Id` header) and a row in the store's `requests`
//! table, so `GET /v1/request/{id}` answers for it. Rows are written by one background task in
//! batches (one transaction per batch), so recording never adds a database commit to a
//! request's latency; a row not yet written is served from memory. The rows gathered are
//! written when the service stops ([`Requests::flush`]).
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
    /// Start the recorder's writer on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Arc<Self> {
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
        let id = uuid::Uuid::new_v4().to_string();
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
