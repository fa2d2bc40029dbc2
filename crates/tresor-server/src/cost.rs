//! Which requests a connection runs on its own task and which get a task of their own.
//!
//! Spawning a task per request lets one connection use every core, but each spawn may wake an
//! idle worker thread, and on a small machine that wake-up costs more than a short operation
//! (an ECDSA P-256 signature, an attribute read). So a connection runs a request inline when
//! the same kind of request on the same key recently took less than [`INLINE_MAX`], and gives it
//! a task otherwise. Slow or unmeasured work (RSA private-key operations, key generation, a
//! login's password hash, anything that has not been seen yet) is always spawned, so one slow
//! request never holds up the requests pipelined behind it for long.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tresor_proto::Request;

/// Requests measured below this run inline.
pub(crate) const INLINE_MAX: Duration = Duration::from_micros(60);

/// Entries kept per context before the table is cleared (keys are handles of one context, so
/// this only bounds a client that signs with very many keys).
const MAX_ENTRIES: usize = 4096;

/// What a request's cost is remembered under: its kind and the key it uses.
pub(crate) type CostKey = (u8, i64);

/// The kinds that may run inline, with the key whose type decides their cost. Anything else
/// (key generation, login, object creation, partition management) always gets its own task.
pub(crate) fn cost_key(req: &Request) -> Option<CostKey> {
    let code = req.code();
    let key = match req {
        Request::Ping {} | Request::GetMechanisms {} => 0,
        Request::GetAttributes { object, .. } | Request::Record { object, .. } => *object,
        Request::Sign { key, .. }
        | Request::SignatureLen { key, .. }
        | Request::Verify { key, .. }
        | Request::Encrypt { key, .. }
        | Request::Decrypt { key, .. }
        | Request::Encapsulate { key, .. }
        | Request::Decapsulate { key, .. } => *key,
        Request::Digest { .. } | Request::Random { .. } | Request::FindObjects { .. } => 0,
        _ => return None,
    };
    Some((code, key))
}

/// Recent service times, smoothed, per [`CostKey`].
#[derive(Default)]
pub(crate) struct Costs {
    table: Mutex<HashMap<CostKey, u32>>,
}

impl Costs {
    /// Whether a request with this key is known to be short.
    pub(crate) fn is_short(&self, key: CostKey) -> bool {
        let limit = u32::try_from(INLINE_MAX.as_micros()).unwrap_or(u32::MAX);
        self.table.lock().get(&key).is_some_and(|us| *us <= limit)
    }

    /// Record that a request with this key took `took`.
    pub(crate) fn record(&self, key: CostKey, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let mut t = self.table.lock();
        if t.len() >= MAX_ENTRIES && !t.contains_key(&key) {
            t.clear();
        }
        let e = t.entry(key).or_insert(us);
        // Exponential average, 1/4 weight to the newest; a single slow run (a cache miss, a
        // busy machine) moves a short request to its own task at once, which is the safe side.
        *e = if us > e.saturating_mul(4) {
            us
        } else {
            (e.saturating_mul(3).saturating_add(us)) / 4
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_and_slow_requests_are_not_short() {
        let c = Costs::default();
        let k = (0x11, 7);
        assert!(!c.is_short(k));
        c.record(k, Duration::from_micros(300));
        assert!(!c.is_short(k));
    }

    #[test]
    fn short_requests_become_short_and_one_slow_run_moves_them_back() {
        let c = Costs::default();
        let k = (0x11, 7);
        for _ in 0..4 {
            c.record(k, Duration::from_micros(12));
        }
        assert!(c.is_short(k));
        c.record(k, Duration::from_micros(500));
        assert!(!c.is_short(k));
        for _ in 0..20 {
            c.record(k, Duration::from_micros(12));
        }
        assert!(c.is_short(k));
    }

    #[test]
    fn generation_and_login_never_run_inline() {
        assert!(cost_key(&Request::Logout {}).is_none());
        assert!(cost_key(&Request::DestroyObject { object: 3 }).is_none());
        assert_eq!(cost_key(&Request::Ping {}), Some((0x01, 0)));
    }
}
