//! Sealed copies of session objects, so that an application's session objects survive the
//! loss of the node that holds them.
//!
//! A context opened for an application (the client key's fingerprint and the process token of
//! `AttachSession`, [`Application`]) can seal a copy of each of its session objects: the
//! object's record and material, AES-256-GCM under the partition key (which every node of the
//! cluster can unwrap), with an AAD ([`seal::aad_session_object`]) that binds the purpose, the
//! partition, the token generation (`C_InitToken` voids every copy), the application and the
//! object id and version. The client library keeps these copies (ciphertext only) and, when it
//! finds its context new on a node (failover, or the context lingered out), restores them in
//! one request under the same handles.
//!
//! Rules of a restore ([`Context::restore_session_objects`]), all or nothing:
//! * only into a new context of the same application that has never held a session object
//!   (no object is replaced or resurrected in a live context);
//! * each copy must open for this partition, generation, application, handle and version
//!   (nothing can be moved to another application or partition, and no attribute changed);
//! * on the node where the application's previous context (one that held session objects)
//!   ended, each copy must also be of an object that context still held at that version at its
//!   end (no destroyed object comes back, no older version returns): the node remembers the
//!   final state of such contexts it drops, for a day ([`SessionStates`]).
//!
//! What is not detected: after the node that served the application is *lost* (the failover
//! this exists for), the new node has no memory of the old context, so an application that
//! kept older copies of its own session objects could restore that earlier state. Refusing it
//! would need a durable record of every session-object destruction and change, a store write
//! on the session-object path this design deliberately avoids; copies never leave the
//! application that owns them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::context::Context;
use super::partition::{join_payload, split_payload, Cached};
use super::Engine;
use crate::crypto::KeyMaterial;
use crate::error::{vendor, Error, Result, Rv};
use crate::object::{ObjectId, ObjectRecord};
use crate::seal;

/// Most session objects one restore may carry.
pub const MAX_RESTORE: usize = 100_000;

/// How long a node remembers the final state of a context it dropped.
const STATE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Most dropped contexts remembered (the oldest go first).
const MAX_STATES: usize = 100_000;

/// The application a context serves: the client key and the process token of
/// `AttachSession` (16 random bytes the client library chose).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Application {
    /// SHA-256 fingerprint (hex) of the client's registered key.
    pub fingerprint: String,
    /// The application's token.
    pub token: Vec<u8>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("fingerprint", &self.fingerprint)
            .field("token_len", &self.token.len())
            .finish()
    }
}

/// A sealed copy of a session object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedObject {
    /// The object's handle (negative).
    pub object: ObjectId,
    /// Its version.
    pub version: i64,
    /// The blob.
    pub sealed: Vec<u8>,
}

/// The session objects `(handle, version)` a context held when it ended, sorted.
type FinalState = Vec<(ObjectId, i64)>;

/// The final session objects of the contexts this engine dropped, per (partition,
/// application), with when they ended.
#[derive(Default)]
pub(crate) struct SessionStates {
    map: Mutex<HashMap<(i64, Application), (Instant, FinalState)>>,
}

impl SessionStates {
    fn remember(&self, partition: i64, app: Application, mut objects: FinalState) {
        objects.sort_unstable();
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= MAX_STATES {
            map.retain(|_, (at, _)| now.duration_since(*at) < STATE_TTL);
            if map.len() >= MAX_STATES {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.insert((partition, app), (now, objects));
    }

    /// The remembered final state, sorted.
    fn get(&self, partition: i64, app: &Application) -> Option<FinalState> {
        let map = self.map.lock();
        let (at, objects) = map.get(&(partition, app.clone()))?;
        (at.elapsed() < STATE_TTL).then(|| objects.clone())
    }

    /// Forget a state (its context was restored: the new one is authoritative now).
    fn forget(&self, partition: i64, app: &Application) {
        self.map.lock().remove(&(partition, app.clone()));
    }
}

impl Engine {
    /// Open a context for `app` on a partition (not logged in): as
    /// [`open_context`](Engine::open_context), and its session objects can be sealed for the
    /// application and restored into a later context of it.
    pub async fn open_application_context(
        self: &Arc<Self>,
        partition: &str,
        app: Application,
    ) -> Result<Context> {
        let mut ctx = self
            .open_context_for(partition, Some(&app.fingerprint))
            .await?;
        ctx.app = Some(app);
        Ok(ctx)
    }
}

impl Context {
    /// The application this context serves, if it was opened for one.
    pub fn application(&self) -> Option<&Application> {
        self.app.as_ref()
    }

    fn app_or_refuse(&self) -> Result<&Application> {
        self.app.as_ref().ok_or_else(|| {
            Error::new(
                Rv::FunctionNotSupported,
                "sealed session objects need a context attached with an application token",
            )
        })
    }

    /// Can this context seal its session objects (checked before the request whose objects
    /// would be sealed runs)?
    pub fn check_sealable(&self) -> Result<()> {
        self.check_live()?;
        self.app_or_refuse().map(|_| ())
    }

    fn aad(&self, app: &Application, object: ObjectId, version: i64) -> Vec<u8> {
        seal::aad_session_object(
            self.part.id,
            self.generation.load(Ordering::Acquire),
            &app.fingerprint,
            &app.token,
            object,
            version,
        )
    }

    /// A sealed copy of one of this context's session objects, for its application.
    pub fn seal_session_object(&self, object: ObjectId) -> Result<SealedObject> {
        self.check_live()?;
        let app = self.app_or_refuse()?;
        let c = self
            .session_objects
            .read()
            .get(&object)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    Rv::ObjectHandleInvalid,
                    format!("session object {object} does not exist"),
                )
            })?;
        let json =
            serde_json::to_vec(&c.rec).map_err(|e| Error::new(Rv::GeneralError, e.to_string()))?;
        let payload = join_payload(
            &json,
            c.secret.as_ref().map(|s| s.expose()).unwrap_or_default(),
        );
        let sealed = seal::seal(&self.part.key, &self.aad(app, object, c.version), &payload)?;
        Ok(SealedObject {
            object,
            version: c.version,
            sealed,
        })
    }

    /// Restore sealed copies into this new context under their handles (see the module docs
    /// for the rules). All or nothing; returns how many were restored.
    pub async fn restore_session_objects(&self, objects: &[SealedObject]) -> Result<usize> {
        self.check_live()?;
        let app = self.app_or_refuse()?.clone();
        // The copies carry the token generation: read the partition as it is now.
        self.part.sync(&self.engine).await?;
        self.check_live()?;
        if objects.len() > MAX_RESTORE {
            return Err(Error::new(
                Rv::ArgumentsBad,
                format!("more than {MAX_RESTORE} session objects in one restore"),
            ));
        }
        if self.had_session_objects.load(Ordering::Acquire)
            || !self.session_objects.read().is_empty()
        {
            return Err(Error::new(
                Rv::ActionProhibited,
                "session objects are restored only into a new context",
            ));
        }
        let mut opened: Vec<Arc<Cached>> = Vec::with_capacity(objects.len());
        for o in objects {
            if o.object >= 0 || opened.iter().any(|c| c.oid == o.object) {
                return Err(Error::new(
                    Rv::ArgumentsBad,
                    format!("{} is not a distinct session object handle", o.object),
                ));
            }
            let payload = seal::open(&self.part.key, &self.aad(&app, o.object, o.version), &o.sealed)
                .map_err(|e| {
                    Error::new(
                        Rv::Vendor(vendor::INTEGRITY),
                        format!(
                            "the sealed copy of session object {} does not open for this application, partition and token ({})",
                            o.object,
                            e.detail()
                        ),
                    )
                })?;
            let (json, secret) = split_payload(&payload)?;
            let rec: ObjectRecord = serde_json::from_slice(json).map_err(|e| {
                Error::integrity(format!(
                    "session object {}: record unreadable: {e}",
                    o.object
                ))
            })?;
            if rec.flags.token {
                return Err(Error::integrity(format!(
                    "sealed copy {} is not a session object",
                    o.object
                )));
            }
            let secret =
                (!secret.is_empty()).then(|| KeyMaterial(zeroize::Zeroizing::new(secret.to_vec())));
            opened.push(Arc::new(Cached::new(o.object, o.version, rec, secret, 0)?));
        }
        // Where this application's previous context ended on this node, only what it held
        // then may come back.
        let states = &self.engine.session_states;
        if let Some(last) = states.get(self.part.id, &app) {
            if let Some(c) = opened
                .iter()
                .find(|c| last.binary_search(&(c.oid, c.version)).is_err())
            {
                let oid = c.oid;
                return Err(Error::new(
                    Rv::ActionProhibited,
                    format!(
                        "session object {oid} was destroyed or changed since this sealed copy was made"
                    ),
                ));
            }
        }
        self.part.audit_ready(&self.engine, &self.buffer)?;
        {
            let mut so = self.session_objects.write();
            if self.had_session_objects.swap(true, Ordering::AcqRel) || !so.is_empty() {
                return Err(Error::new(
                    Rv::ActionProhibited,
                    "session objects are restored only into a new context",
                ));
            }
            for c in &opened {
                so.insert(c.oid, c.clone());
            }
        }
        states.forget(self.part.id, &app);
        if let Some(min) = opened.iter().map(|c| c.oid).min() {
            Context::reserve_session_ids(min);
        }
        for c in &opened {
            self.part
                .record_session_event(&self.buffer, self.actor(), "object.restore", c.oid);
        }
        Ok(opened.len())
    }

    /// Remember this context's final session objects (on drop), if it ever held any: a
    /// context that never did says nothing about the application's copies.
    pub(crate) fn remember_final_state(&self) {
        if !self.had_session_objects.load(Ordering::Acquire) {
            return;
        }
        if let Some(app) = &self.app {
            let objects = self
                .session_objects
                .read()
                .values()
                .map(|c| (c.oid, c.version))
                .collect();
            self.engine
                .session_states
                .remember(self.part.id, app.clone(), objects);
        }
    }
}
