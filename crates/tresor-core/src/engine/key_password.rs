//! Per-key passwords (the Securosys `password` / `keyPassword` of a key).
//!
//! * A private or secret key may carry a password, given at creation (`CKA_TRESOR_KEY_PASSWORD`
//!   in its template) or set later ([`Context::change_key_password`]). The record keeps its
//!   Argon2id hash, the count of consecutive wrong passwords and the lockout time
//!   ([`KeyPasswordState`]); the password itself is never stored.
//! * A password travels **with each request**: [`Context::with_key_passwords`] checks every
//!   presented password against its key, then runs the request with a grant naming the keys
//!   it unlocked. The grant is a task-local of that one request's future: it never reaches
//!   another request of the same context (the REST face multiplexes many requests of one
//!   tenant over one context), and no context keeps an "authenticated key" state.
//! * Every use or change of a key with a password needs the grant ([`Context::key_unlocked`]):
//!   sign, decrypt, unwrap, derive, decapsulate, encrypt and verify with a secret key, wrap (as
//!   the wrapping key or as the wrapped key), reading an exportable secret value, attestation,
//!   copy, attribute changes, destruction, block, unblock, policy and password changes. Without
//!   it: `TRESOR_KEY_PASSWORD_INCORRECT` (`0x8000000E`, the Securosys "wrong key password").
//!   Reading public attributes and the record, and finding objects, need no password.
//! * Argon2id runs once per password; then the same password is accepted for
//!   `key_password_cache_ttl` by an HMAC-SHA256 tag (key random per engine, over partition,
//!   object, hash and password), compared in constant time. Keys without a password cost
//!   nothing extra: the check is one `Option` test.
//! * A wrong password is counted in the sealed record (audit `key.password.fail`) and changes
//!   nothing else. After `max_key_password_failures` in a row, no password is checked at all
//!   (not even a right one, not even from the cache, so the cache is no guessing oracle) for
//!   `key_password_lockout` (`CKR_PIN_LOCKED`); each further wrong password after that locks it
//!   again. A right password resets the count.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::context::Context;
use super::partition::{is_conflict, Cached};
use super::Engine;
use crate::audit::now_ns;
use crate::ck::CKA_TRESOR_KEY_PASSWORD;
use crate::error::{vendor, Error, Result, Rv};
use crate::object::{KeyPasswordState, ObjectClass, ObjectId};
use crate::template::Template;

/// Key passwords are 1 to 256 bytes.
const MAX_PASSWORD_LEN: usize = 256;

/// Most passwords one request may present.
const MAX_PRESENTED: usize = 8;

/// Cached verifications kept at most.
const MAX_CACHE_ENTRIES: usize = 100_000;

/// Attempts to record a password outcome when other writers change the key meanwhile.
const OUTCOME_RETRIES: usize = 5;

tokio::task_local! {
    /// The keys unlocked for the request being run (see the module docs).
    static GRANT: Grant;
}

/// Keys unlocked for one request on one context. Built only by
/// [`Context::with_key_passwords`], after every password was checked.
struct Grant {
    context: u64,
    keys: Vec<ObjectId>,
}

/// A cached verification is per partition and object.
type CacheKey = (i64, ObjectId);

/// The engine's key-password verifier: the cache of recent verifications and the permits that
/// bound concurrent Argon2id runs.
pub(crate) struct Verifier {
    key: hmac::Key,
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, [u8; 32])>>,
    permits: tokio::sync::Semaphore,
}

impl Verifier {
    pub(crate) fn new(ttl: Duration) -> Result<Self> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| {
            Error::new(Rv::GeneralError, "no random key for the key-password cache")
        })?;
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        Ok(Verifier {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
            permits: tokio::sync::Semaphore::new(n),
        })
    }

    fn tag(&self, partition: i64, oid: ObjectId, phc: &str, password: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&partition.to_be_bytes());
        ctx.update(&oid.to_be_bytes());
        ctx.update(&(phc.len() as u64).to_be_bytes());
        ctx.update(phc.as_bytes());
        ctx.update(password);
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(ctx.sign().as_ref()) {
            *o = *b;
        }
        out
    }

    /// True if this password was verified for this key and hash within the TTL.
    fn matches(&self, partition: i64, oid: ObjectId, phc: &str, password: &[u8]) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let stored = match self.entries.lock().get(&(partition, oid)) {
            Some((at, t)) if at.elapsed() < self.ttl => *t,
            _ => return false,
        };
        bool::from(self.tag(partition, oid, phc, password).ct_eq(&stored))
    }

    fn remember(&self, partition: i64, oid: ObjectId, phc: &str, password: &[u8]) {
        if self.ttl.is_zero() {
            return;
        }
        let tag = self.tag(partition, oid, phc, password);
        let mut map = self.entries.lock();
        if map.len() >= MAX_CACHE_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert((partition, oid), (Instant::now(), tag));
    }

    fn forget(&self, partition: i64, oid: ObjectId) {
        self.entries.lock().remove(&(partition, oid));
    }
}

fn check_len(password: &[u8]) -> Result<()> {
    if (1..=MAX_PASSWORD_LEN).contains(&password.len()) {
        Ok(())
    } else {
        Err(Error::new(
            Rv::PinLenRange,
            format!("a key password is 1 to {MAX_PASSWORD_LEN} bytes long"),
        ))
    }
}

fn unix_now() -> i64 {
    now_ns() / 1_000_000_000
}

fn incorrect(detail: String) -> Error {
    Error::new(Rv::Vendor(vendor::KEY_PASSWORD_INCORRECT), detail)
}

impl Engine {
    /// Argon2id hash of a key password (on a blocking thread).
    pub(crate) async fn hash_key_password(&self, password: &[u8]) -> Result<String> {
        check_len(password)?;
        let params = argon2::Params::new(
            self.config.argon2_m_kib,
            self.config.argon2_t,
            self.config.argon2_p,
            None,
        )
        .map_err(|e| Error::new(Rv::GeneralError, format!("argon2 parameters: {e}")))?;
        let password = Zeroizing::new(password.to_vec());
        let _permit = self
            .key_passwords
            .permits
            .acquire()
            .await
            .map_err(|_| Error::new(Rv::GeneralError, "the key-password verifier is closed"))?;
        tokio::task::spawn_blocking(move || {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let mut salt = [0u8; 16];
            openssl::rand::rand_bytes(&mut salt)?;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|e| Error::new(Rv::GeneralError, format!("salt: {e}")))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(&password, &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::new(Rv::GeneralError, format!("argon2: {e}")))
        })
        .await
        .map_err(|e| Error::new(Rv::GeneralError, format!("key-password hashing task: {e}")))?
    }

    /// Argon2id check of a key password against its hash (constant time, blocking thread).
    async fn verify_key_password(&self, phc: &str, password: &[u8]) -> Result<bool> {
        let phc = phc.to_owned();
        let password = Zeroizing::new(password.to_vec());
        let _permit = self
            .key_passwords
            .permits
            .acquire()
            .await
            .map_err(|_| Error::new(Rv::GeneralError, "the key-password verifier is closed"))?;
        tokio::task::spawn_blocking(move || {
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            let h = PasswordHash::new(&phc)
                .map_err(|_| Error::integrity("stored key-password hash is malformed"))?;
            Ok(argon2::Argon2::default()
                .verify_password(&password, &h)
                .is_ok())
        })
        .await
        .map_err(|e| Error::new(Rv::GeneralError, format!("key-password check task: {e}")))?
    }
}

impl Context {
    /// Run `f` (one request) with the keys of `presented` unlocked for it. Each password is
    /// checked first: a wrong or missing one, or one given for a key without a password, fails
    /// the whole request before anything runs (a wrong one is counted towards the key's
    /// lockout). The unlock ends with `f`.
    pub async fn with_key_passwords<T, F>(&self, presented: &[(ObjectId, &[u8])], f: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        if presented.len() > MAX_PRESENTED {
            return Err(Error::new(
                Rv::ArgumentsBad,
                format!("at most {MAX_PRESENTED} key passwords per request"),
            ));
        }
        let mut keys = Vec::with_capacity(presented.len());
        for (oid, password) in presented {
            self.check_key_password(*oid, password).await?;
            keys.push(*oid);
        }
        GRANT
            .scope(
                Grant {
                    context: self.id,
                    keys,
                },
                f,
            )
            .await
    }

    /// Fail unless `c` has no password or was unlocked for the request being run.
    pub(crate) fn key_unlocked(&self, c: &Cached) -> Result<()> {
        if c.rec.password.is_none() {
            return Ok(());
        }
        let granted = GRANT
            .try_with(|g| g.context == self.id && g.keys.contains(&c.oid))
            .unwrap_or(false);
        if granted {
            Ok(())
        } else {
            Err(incorrect(format!("key {} needs its key password", c.oid)))
        }
    }

    /// The password state of a new private or secret key from its template
    /// (`CKA_TRESOR_KEY_PASSWORD`), hashed with Argon2id.
    pub(crate) async fn key_password_from_template(
        &self,
        class: ObjectClass,
        t: &Template,
    ) -> Result<Option<KeyPasswordState>> {
        let Some(password) = t.bytes(CKA_TRESOR_KEY_PASSWORD) else {
            return Ok(None);
        };
        if !class.has_secret() {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "only private and secret keys have key passwords",
            ));
        }
        Ok(Some(KeyPasswordState::new(
            self.engine.hash_key_password(password).await?,
        )))
    }

    fn lockout_error(&self, oid: ObjectId, state: &KeyPasswordState, now: i64) -> Option<Error> {
        let max = self.engine.config.max_key_password_failures.max(1);
        (state.failures >= max && state.locked_until > now).then(|| {
            Error::new(
                Rv::PinLocked,
                format!(
                    "the password of key {oid} is locked after {} wrong attempts; try again in {} s",
                    state.failures,
                    state.locked_until - now
                ),
            )
        })
    }

    /// Check one presented password (see the module docs for the cache and the lockout).
    async fn check_key_password(&self, oid: ObjectId, password: &[u8]) -> Result<()> {
        self.require_user()?;
        let c = self.object(oid).await?;
        let Some(state) = c.rec.password.as_ref() else {
            return Err(incorrect(format!(
                "key {oid} has no key password; send none"
            )));
        };
        if let Some(e) = self.lockout_error(oid, state, unix_now()) {
            return Err(e);
        }
        let verifier = &self.engine.key_passwords;
        if verifier.matches(self.part.id, oid, &state.phc, password) {
            return Ok(());
        }
        // A full check: on the current state (another node may have counted failures).
        self.part.sync(&self.engine).await?;
        let c = self.object(oid).await?;
        let Some(state) = c.rec.password.as_ref() else {
            return Err(incorrect(format!(
                "key {oid} has no key password; send none"
            )));
        };
        if let Some(e) = self.lockout_error(oid, state, unix_now()) {
            return Err(e);
        }
        let ok = check_len(password).is_ok()
            && self
                .engine
                .verify_key_password(&state.phc, password)
                .await?;
        if ok {
            verifier.remember(self.part.id, oid, &state.phc, password);
            if state.failures > 0 {
                self.record_password_outcome(oid, true).await?;
            }
            return Ok(());
        }
        verifier.forget(self.part.id, oid);
        let locked = self.record_password_outcome(oid, false).await?;
        Err(match locked {
            Some(until) => Error::new(
                Rv::PinLocked,
                format!(
                    "wrong key password; the password of key {oid} is now locked for {} s",
                    until - unix_now()
                ),
            ),
            None => incorrect(format!("wrong key password for key {oid}")),
        })
    }

    /// Count a wrong password (or reset the count after a right one) in the key's record.
    /// Returns the lockout end if the key's password is now locked.
    async fn record_password_outcome(&self, oid: ObjectId, ok: bool) -> Result<Option<i64>> {
        let max = self.engine.config.max_key_password_failures.max(1);
        let lockout = i64::try_from(self.engine.config.key_password_lockout.as_secs())
            .unwrap_or(i64::MAX / 2);
        let mut last = None;
        for _ in 0..OUTCOME_RETRIES {
            let c = self.object(oid).await?;
            let mut rec = c.rec.clone();
            let Some(state) = rec.password.as_mut() else {
                return Ok(None);
            };
            let mut locked = None;
            if ok {
                state.failures = 0;
                state.locked_until = 0;
            } else {
                state.failures = state.failures.saturating_add(1);
                if state.failures >= max {
                    let until = unix_now().saturating_add(lockout);
                    state.locked_until = until;
                    locked = Some(until);
                }
            }
            let detail =
                serde_json::json!({"failures": state.failures, "locked": locked.is_some()});
            let action = if ok {
                "key.password.reset"
            } else {
                "key.password.fail"
            };
            match self.update_record(&c, rec, action, detail).await {
                Ok(()) => return Ok(locked),
                Err(e) if is_conflict(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(Rv::FunctionFailed, "key password outcome")))
    }

    /// Set, change or remove the password of a private or secret key. A key that has a
    /// password must be unlocked for this request (its current password presented).
    pub async fn change_key_password(&self, oid: ObjectId, new: Option<&[u8]>) -> Result<()> {
        self.require_user()?;
        let c = self.object(oid).await?;
        if !c.rec.class.has_secret() {
            return Err(Error::new(
                Rv::KeyTypeInconsistent,
                format!("object {oid} is not a private or secret key; only those have passwords"),
            ));
        }
        self.key_unlocked(&c)?;
        let state = match new {
            Some(p) => Some(KeyPasswordState::new(
                self.engine.hash_key_password(p).await?,
            )),
            None => None,
        };
        let set = state.is_some();
        let mut rec = c.rec.clone();
        rec.password = state;
        self.update_record(
            &c,
            rec,
            "key.password.change",
            serde_json::json!({"password": if set { "set" } else { "removed" }}),
        )
        .await?;
        self.engine.key_passwords.forget(self.part.id, oid);
        Ok(())
    }
}
