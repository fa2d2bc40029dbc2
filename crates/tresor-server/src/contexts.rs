//! Shared contexts: every pooled connection of one client process names the same token, so
//! they share one engine context (login state, session objects), as PKCS#11 expects of one
//! application. A context lives while a connection is attached and for a linger time after
//! the last one leaves; it is keyed by partition, the client's key fingerprint and the token,
//! so a token alone (even if leaked) does not let another key in.
//!
//! Each shared context also remembers the answers to its recent non-idempotent requests by
//! request id: a client that retries such a request after a broken connection gets the first
//! answer back instead of running it twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tresor_core::Context;
use tresor_proto::Response;

/// How many answers to non-idempotent requests a context remembers.
const DEDUP_DEPTH: usize = 256;

/// Stripes of the per-request-id ordering lock.
const ORDER_STRIPES: usize = 32;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    partition: String,
    fingerprint: String,
    token: Vec<u8>,
}

/// One shared context.
pub struct Shared {
    /// The engine context.
    pub ctx: Arc<Context>,
    /// Recent (request id → answer) for non-idempotent requests.
    answers: Mutex<VecDeque<(u64, Response)>>,
    /// Serialise requests carrying the same request id (a retry racing its original): a
    /// request id always takes the same stripe, and different ids rarely wait for each other.
    order: [tokio::sync::Mutex<()>; ORDER_STRIPES],
    /// Recent service times, deciding which requests run inline (see [`crate::cost`]).
    pub(crate) costs: crate::cost::Costs,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("ctx", &self.ctx.id())
            .finish()
    }
}

impl Shared {
    fn new(ctx: Context) -> Shared {
        Shared {
            ctx: Arc::new(ctx),
            answers: Mutex::new(VecDeque::new()),
            order: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            costs: crate::cost::Costs::default(),
        }
    }

    /// The lock that orders the requests carrying `request_id`.
    pub(crate) fn order(&self, request_id: u64) -> &tokio::sync::Mutex<()> {
        let i = usize::try_from(request_id % ORDER_STRIPES as u64).unwrap_or(0);
        &self.order[i.min(ORDER_STRIPES - 1)]
    }

    /// The remembered answer to `request_id`, if any.
    pub fn answer(&self, request_id: u64) -> Option<Response> {
        self.answers
            .lock()
            .iter()
            .find(|(id, _)| *id == request_id)
            .map(|(_, r)| r.clone())
    }

    /// Remember the answer to a non-idempotent request.
    pub fn remember(&self, request_id: u64, r: &Response) {
        let mut a = self.answers.lock();
        if a.len() >= DEDUP_DEPTH {
            a.pop_front();
        }
        a.push_back((request_id, r.clone()));
    }
}

struct Entry {
    shared: Arc<Shared>,
    attached: usize,
    idle_since: Option<Instant>,
}

/// The node's table of shared contexts.
#[derive(Default)]
pub struct Contexts {
    map: Mutex<HashMap<Key, Entry>>,
}

impl std::fmt::Debug for Contexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contexts")
            .field("len", &self.map.lock().len())
            .finish()
    }
}

/// A connection's hold on a shared context; dropping it detaches.
pub struct Attachment {
    table: Arc<Contexts>,
    key: Key,
    /// The context.
    pub shared: Arc<Shared>,
    /// True if the context existed before this attach.
    pub joined: bool,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("shared", &self.shared)
            .field("joined", &self.joined)
            .finish()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut map = self.table.map.lock();
        if let Some(e) = map.get_mut(&self.key) {
            e.attached = e.attached.saturating_sub(1);
            if e.attached == 0 {
                e.idle_since = Some(Instant::now());
            }
        }
    }
}

impl Contexts {
    /// Attach to the context `(partition, fingerprint, token)`, creating it with `open` when
    /// absent.
    pub async fn attach<F, Fut>(
        self: &Arc<Self>,
        partition: &str,
        fingerprint: &str,
        token: &[u8],
        open: F,
    ) -> tresor_core::Result<Attachment>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = tresor_core::Result<Context>>,
    {
        let key = Key {
            partition: partition.to_owned(),
            fingerprint: fingerprint.to_owned(),
            token: token.to_vec(),
        };
        if let Some(a) = self.try_join(&key) {
            return Ok(a);
        }
        let ctx = open().await?;
        let mut map = self.map.lock();
        // Another connection may have created it meanwhile: join theirs, drop ours.
        if let Some(e) = map.get_mut(&key) {
            e.attached += 1;
            e.idle_since = None;
            return Ok(Attachment {
                table: self.clone(),
                shared: e.shared.clone(),
                key,
                joined: true,
            });
        }
        let shared = Arc::new(Shared::new(ctx));
        map.insert(
            key.clone(),
            Entry {
                shared: shared.clone(),
                attached: 1,
                idle_since: None,
            },
        );
        Ok(Attachment {
            table: self.clone(),
            key,
            shared,
            joined: false,
        })
    }

    fn try_join(self: &Arc<Self>, key: &Key) -> Option<Attachment> {
        let mut map = self.map.lock();
        let e = map.get_mut(key)?;
        e.attached += 1;
        e.idle_since = None;
        Some(Attachment {
            table: self.clone(),
            key: key.clone(),
            shared: e.shared.clone(),
            joined: true,
        })
    }

    /// Drop contexts idle for longer than `linger` (logs them out, destroys session objects).
    pub fn sweep(&self, linger: Duration) -> usize {
        let now = Instant::now();
        let mut map = self.map.lock();
        let before = map.len();
        map.retain(|_, e| match e.idle_since {
            Some(t) => now.duration_since(t) < linger,
            None => true,
        });
        before - map.len()
    }

    /// Drop every shared context (after sealing, or when the node stops).
    pub fn clear(&self) {
        self.map.lock().clear();
    }

    /// Number of live shared contexts.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
