//! Password checks: the keyed-hash cache of recently verified passwords, the Argon2 calls
//! (bounded, on blocking threads, with a dummy check for unknown users) and the rate limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::dir::{verify_service_password, ServiceRecord};

/// Remembers, per service user, HMAC-SHA256(process-random key, user ‖ 0 ‖ password ‖ 0 ‖
/// password hash) of the last verified password, for a limited time.
pub(crate) struct AuthCache {
    key: hmac::Key,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, [u8; 32])>>,
}

/// Entries kept at most (only verified logins are cached, so this is about services).
const MAX_AUTH_ENTRIES: usize = 100_000;

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> crate::Result<Self> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| crate::GatewayError::Config("no random key for the auth cache".into()))?;
        Ok(AuthCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn tag(&self, user: &str, password: &[u8], password_hash: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password);
        ctx.update(&[0]);
        ctx.update(password_hash.as_bytes());
        let mut out = [0u8; 32];
        let t = ctx.sign();
        for (o, b) in out.iter_mut().zip(t.as_ref()) {
            *o = *b;
        }
        out
    }

    /// True if this password was verified for this record recently (constant-time compare).
    pub(crate) fn matches(&self, user: &str, password: &[u8], record: &ServiceRecord) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let stored = match self.entries.lock().get(user) {
            Some((at, t)) if at.elapsed() < self.ttl => *t,
            _ => return false,
        };
        let tag = self.tag(user, password, &record.password_hash);
        bool::from(tag.ct_eq(&stored))
    }

    pub(crate) fn remember(&self, user: &str, password: &[u8], record: &ServiceRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let tag = self.tag(user, password, &record.password_hash);
        let mut map = self.entries.lock();
        if map.len() >= MAX_AUTH_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_AUTH_ENTRIES {
                map.clear();
            }
        }
        map.insert(user.to_owned(), (Instant::now(), tag));
    }

    pub(crate) fn forget(&self, user: &str) {
        self.entries.lock().remove(user);
    }

    pub(crate) fn purge(&self) {
        let ttl = self.ttl;
        self.entries.lock().retain(|_, (at, _)| at.elapsed() < ttl);
    }
}

/// Argon2 verification on blocking threads, at most a few at once.
pub(crate) struct Verifier {
    permits: tokio::sync::Semaphore,
    /// A real PHC string seen in the directory: unknown users are checked against it so that
    /// they cost the same time as known ones.
    dummy_phc: Mutex<Option<String>>,
}

/// PHC string used for unknown users before any real one was seen (Argon2id, default
/// parameters, password "tresor-dummy").
const FALLBACK_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$dHJlc29yLWR1bW15LXNhbHQ$2rpZ5/c1+9hbtuZJ14Q7YmP0Kvu7yjq3KAAmlVSn9CE";

impl Verifier {
    pub(crate) fn new() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        Verifier {
            permits: tokio::sync::Semaphore::new(n),
            dummy_phc: Mutex::new(None),
        }
    }

    /// Argon2 check of `password` against the record.
    pub(crate) async fn verify(&self, record: &ServiceRecord, password: &[u8]) -> bool {
        *self.dummy_phc.lock() = Some(record.password_hash.clone());
        let record = record.clone();
        let password = Zeroizing::new(password.to_vec());
        self.run(move || verify_service_password(&record, &password))
            .await
    }

    /// Spend the time of a real check, for an unknown user. Always false.
    pub(crate) async fn dummy(&self, password: &[u8]) {
        let phc = self
            .dummy_phc
            .lock()
            .clone()
            .unwrap_or_else(|| FALLBACK_PHC.to_owned());
        let password = Zeroizing::new(password.to_vec());
        let _ = self
            .run(move || {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                match PasswordHash::new(&phc) {
                    Ok(h) => argon2::Argon2::default()
                        .verify_password(&password, &h)
                        .is_ok(),
                    Err(_) => false,
                }
            })
            .await;
    }

    async fn run<F: FnOnce() -> bool + Send + 'static>(&self, f: F) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(f).await.unwrap_or(false)
    }
}

/// Per-source and per-user attempt limits.
pub(crate) struct Limits {
    per_source: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

impl Limits {
    pub(crate) fn new(per_source: u32, per_user: u32) -> Arc<Self> {
        Arc::new(Limits {
            per_source: RateLimiter::keyed(quota(per_source)),
            per_user: RateLimiter::keyed(quota(per_user)),
        })
    }

    /// Spend one attempt from the source's budget; false if none is left.
    pub(crate) fn source(&self, ip: IpAddr) -> bool {
        self.per_source.check_key(&ip).is_ok()
    }

    /// Spend one attempt from the user's budget; false if none is left.
    pub(crate) fn user(&self, user: &str) -> bool {
        self.per_user.check_key(&user.to_owned()).is_ok()
    }

    pub(crate) fn purge(&self) {
        self.per_source.retain_recent();
        self.per_user.retain_recent();
        self.per_source.shrink_to_fit();
        self.per_user.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(hash: &str) -> ServiceRecord {
        ServiceRecord {
            name: "s".into(),
            service_user: "u".into(),
            password_hash: hash.into(),
            allowlist: vec![],
            partitions: vec![],
            nodes: vec![],
            max_failures: 5,
            lockout_secs: 60,
            created: 0,
            updated: 0,
            disabled: false,
        }
    }

    #[test]
    fn fallback_phc_parses() {
        assert!(argon2::password_hash::PasswordHash::new(FALLBACK_PHC).is_ok());
    }

    #[test]
    fn auth_cache_matches_only_the_same_password_and_hash() {
        let c = AuthCache::new(Duration::from_secs(60)).unwrap();
        let r = record("$argon2id$h1");
        assert!(!c.matches("u", b"pw", &r));
        c.remember("u", b"pw", &r);
        assert!(c.matches("u", b"pw", &r));
        assert!(!c.matches("u", b"pw2", &r));
        assert!(!c.matches("v", b"pw", &r));
        assert!(!c.matches("u", b"pw", &record("$argon2id$h2")), "new hash");
        c.forget("u");
        assert!(!c.matches("u", b"pw", &r));
    }

    #[test]
    fn auth_cache_expires() {
        let c = AuthCache::new(Duration::from_millis(20)).unwrap();
        let r = record("$argon2id$h1");
        c.remember("u", b"pw", &r);
        std::thread::sleep(Duration::from_millis(40));
        assert!(!c.matches("u", b"pw", &r));
        let off = AuthCache::new(Duration::ZERO).unwrap();
        off.remember("u", b"pw", &r);
        assert!(!off.matches("u", b"pw", &r));
    }

    #[tokio::test]
    async fn dummy_verify_runs() {
        let v = Verifier::new();
        v.dummy(b"x").await;
        assert!(!v.verify(&record("not a phc"), b"x").await);
    }

    #[test]
    fn limits_spend_budgets() {
        let l = Limits::new(2, 1);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.source(ip) && l.source(ip));
        assert!(!l.source(ip));
        assert!(l.user("a"));
        assert!(!l.user("a"));
        assert!(l.user("b"));
    }
}
