//! Caller contexts: login state, PINs and session objects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use tresor_store::Mutation;

use super::partition::{check_pin_len, Cached, Partition, UseBuffer};
use super::{store_err, Engine};
use crate::audit::EntryContent;
use crate::error::{vendor, Error, Result, Rv};
use crate::object::ObjectId;

/// Who is logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    /// The security officer (`CKU_SO`): manages the user PIN; cannot use private objects.
    SecurityOfficer,
    /// The crypto user (`CKU_USER`): uses and manages keys.
    User,
}

impl UserType {
    fn name(self) -> &'static str {
        match self {
            UserType::SecurityOfficer => "so",
            UserType::User => "user",
        }
    }
}

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);
static NEXT_SESSION_OBJECT: AtomicI64 = AtomicI64::new(1);

/// One caller's view of one partition: a connection or an application. Login state and
/// session objects belong to it (never to the process). Dropping it logs out and destroys its
/// session objects.
pub struct Context {
    pub(crate) engine: Arc<Engine>,
    pub(crate) part: Arc<Partition>,
    pub(crate) id: u64,
    login: RwLock<Option<UserType>>,
    pub(crate) session_objects: RwLock<HashMap<ObjectId, Arc<Cached>>>,
    /// This context's queue of audit events (drained by the partition's flushes).
    pub(crate) buffer: Arc<UseBuffer>,
    /// The partition's token generation this context's login and session objects belong to.
    pub(crate) generation: AtomicU64,
    /// The application this context serves (sealed copies of its session objects).
    pub(crate) app: Option<super::sealed::Application>,
    /// True once a session object was created or restored here (a restore needs a new context).
    pub(crate) had_session_objects: AtomicBool,
    /// The registered client key (fingerprint) this context was opened for, if any: once that
    /// key is revoked (here or through another node), every call fails.
    pub(crate) client: Option<String>,
    /// The partition's `clients_epoch` when the client key was last found registered.
    pub(crate) clients_epoch: AtomicU64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("partition", &self.part.name)
            .field("login", &*self.login.read())
            .finish()
    }
}

impl Engine {
    /// Open a context on a partition (not logged in).
    pub async fn open_context(self: &Arc<Self>, partition: &str) -> Result<Context> {
        self.open_context_for(partition, None).await
    }

    /// A context for the registered client key `fingerprint` (the network path): it fails with
    /// `CLIENT_NOT_REGISTERED` from the first call after that key is revoked, wherever the
    /// revocation was made (another node's is seen within `sync_interval`).
    pub async fn open_client_context(
        self: &Arc<Self>,
        partition: &str,
        fingerprint: &str,
    ) -> Result<Context> {
        self.open_context_for(partition, Some(fingerprint)).await
    }

    pub(crate) async fn open_context_for(
        self: &Arc<Self>,
        partition: &str,
        client: Option<&str>,
    ) -> Result<Context> {
        let part = self.partition(partition).await?;
        let clients_epoch = AtomicU64::new(part.clients_epoch.load(Ordering::Acquire));
        if let Some(fp) = client {
            if !part.clients.read().contains(fp) {
                return Err(client_revoked(partition, fp));
            }
        }
        let buffer = part.new_buffer();
        let generation = AtomicU64::new(part.generation.load(Ordering::Acquire));
        Ok(Context {
            engine: self.clone(),
            buffer,
            part,
            id: NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed),
            login: RwLock::new(None),
            session_objects: RwLock::new(HashMap::new()),
            generation,
            app: None,
            had_session_objects: AtomicBool::new(false),
            client: client.map(str::to_owned),
            clients_epoch,
        })
    }
}

fn client_revoked(partition: &str, fingerprint: &str) -> Error {
    Error::new(
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED),
        format!("the client key {fingerprint} is no longer registered for partition '{partition}'"),
    )
}

impl Context {
    /// The context's id (appears in audit entries).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The partition's name (the token label).
    pub fn partition_name(&self) -> &str {
        &self.part.name
    }

    /// The partition's id (stable; used as token serial).
    pub fn partition_id(&self) -> i64 {
        self.part.id
    }

    /// Who is logged in (nobody after the token was re-initialised).
    pub fn logged_in(&self) -> Option<UserType> {
        if self.part.generation.load(Ordering::Acquire) != self.generation.load(Ordering::Acquire) {
            return None;
        }
        *self.login.read()
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        self.engine.check_active()?;
        if self.part.deleted.load(Ordering::Acquire) {
            return Err(Error::new(
                Rv::Vendor(vendor::USER_NOT_FOUND),
                format!("partition '{}' was deleted", self.part.name),
            ));
        }
        if let Some(fp) = &self.client {
            let epoch = self.part.clients_epoch.load(Ordering::Acquire);
            if epoch != self.clients_epoch.load(Ordering::Acquire) {
                if !self.part.clients.read().contains(fp) {
                    // Nothing of it stays usable or in memory: its login and session objects
                    // go now, not when the node drops the context.
                    self.session_objects.write().clear();
                    *self.login.write() = None;
                    return Err(client_revoked(&self.part.name, fp));
                }
                self.clients_epoch.store(epoch, Ordering::Release);
            }
        }
        let generation = self.part.generation.load(Ordering::Acquire);
        if generation != self.generation.load(Ordering::Acquire) {
            // The token was re-initialised (C_InitToken) since this context logged in or made
            // its session objects: they are gone.
            self.session_objects.write().clear();
            *self.login.write() = None;
            self.generation.store(generation, Ordering::Release);
        }
        Ok(())
    }

    /// Require the crypto user.
    pub(crate) fn require_user(&self) -> Result<()> {
        self.check_live()?;
        match *self.login.read() {
            Some(UserType::User) => Ok(()),
            _ => Err(Error::new(
                Rv::UserNotLoggedIn,
                "this operation needs the user to be logged in",
            )),
        }
    }

    pub(crate) fn actor(&self) -> String {
        match *self.login.read() {
            Some(u) => format!("{}/{}", u.name(), self.id),
            None => format!("public/{}", self.id),
        }
    }

    pub(crate) fn new_session_id() -> ObjectId {
        -NEXT_SESSION_OBJECT.fetch_add(1, Ordering::Relaxed)
    }

    /// Never hand out a session handle at or above `-lowest` again (restored handles keep
    /// theirs).
    pub(crate) fn reserve_session_ids(lowest: ObjectId) {
        let next = lowest.checked_neg().and_then(|n| n.checked_add(1));
        if let Some(n) = next {
            NEXT_SESSION_OBJECT.fetch_max(n, Ordering::Relaxed);
        }
    }

    /// Log in (`C_Login`). Wrong PINs count towards the lockout; a correct PIN resets the count.
    pub async fn login(&self, user: UserType, pin: &[u8]) -> Result<()> {
        self.check_live()?;
        if let Some(current) = *self.login.read() {
            return Err(if current == user {
                Error::new(Rv::UserAlreadyLoggedIn, "already logged in")
            } else {
                Error::new(
                    Rv::UserAnotherAlreadyLoggedIn,
                    "the other user is logged in",
                )
            });
        }
        self.check_pin_counted(user, pin, "login", "login.fail")
            .await?;
        *self.login.write() = Some(user);
        Ok(())
    }

    /// Verify a PIN of `user`, counting wrong PINs towards the lockout (and a correct one
    /// resetting the count), with an audit entry for each failure.
    pub(crate) async fn check_pin_counted(
        &self,
        user: UserType,
        pin: &[u8],
        ok_action: &'static str,
        fail_action: &'static str,
    ) -> Result<()> {
        check_pin_len(pin).map_err(|_| Error::new(Rv::PinIncorrect, "wrong PIN"))?;
        let engine = &self.engine;
        // The PIN may have been set by another process (`tresor admin credentials
        // set-pkcs11-password`) since the partition was loaded.
        self.part.sync(engine).await?;
        let row = engine
            .store
            .partition(self.part.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::new(Rv::Vendor(vendor::USER_NOT_FOUND), "partition was deleted")
            })?;
        let failures = match user {
            UserType::SecurityOfficer => row.so_failures,
            UserType::User => row.user_failures,
        };
        let max = engine.config.max_pin_failures;
        if failures >= max {
            return Err(Error::new(
                Rv::PinLocked,
                format!(
                    "the {} PIN is locked after {failures} wrong attempts",
                    user.name()
                ),
            ));
        }
        let phc = {
            let w = self.part.writer.lock().await;
            match user {
                UserType::SecurityOfficer => Some(w.record.so_pin.clone()),
                UserType::User => w.record.user_pin.clone(),
            }
        };
        let phc = phc.ok_or_else(|| {
            Error::new(
                Rv::UserPinNotInitialized,
                "the user PIN has not been set by the security officer",
            )
        })?;
        let ok = engine.verify_pin(&phc, pin).await?;
        let new_failures = if ok { 0 } else { failures + 1 };
        if new_failures != failures || !ok {
            let (so, us) = match user {
                UserType::SecurityOfficer => (new_failures, row.user_failures),
                UserType::User => (row.so_failures, new_failures),
            };
            let action = if ok { ok_action } else { fail_action };
            let entry = EntryContent::now(
                format!("{}/{}", user.name(), self.id),
                action,
                None,
                serde_json::json!({"failures": new_failures}).to_string(),
            );
            let m = vec![Mutation::SetPinFailures {
                partition_id: self.part.id,
                so_failures: so,
                user_failures: us,
            }];
            self.part.commit(engine, m, vec![entry], None).await?;
        } else {
            let entry = EntryContent::now(
                format!("{}/{}", user.name(), self.id),
                ok_action,
                None,
                "{}".into(),
            );
            self.part
                .commit(engine, Vec::new(), vec![entry], None)
                .await?;
        }
        if !ok {
            return Err(if new_failures >= max {
                Error::new(
                    Rv::PinLocked,
                    format!("wrong PIN; the {} PIN is now locked", user.name()),
                )
            } else {
                Error::new(Rv::PinIncorrect, "wrong PIN")
            });
        }
        Ok(())
    }

    /// Log out (`C_Logout`).
    pub fn logout(&self) -> Result<()> {
        let mut l = self.login.write();
        if l.is_none() {
            return Err(Error::new(Rv::UserNotLoggedIn, "nobody is logged in"));
        }
        *l = None;
        // Private session objects become unreachable; PKCS#11 keeps them, but they are
        // private, so they stay hidden until the user logs in again.
        Ok(())
    }

    /// Set the user PIN as the security officer (`C_InitPIN`); also clears the user lockout.
    pub async fn init_pin(&self, new_pin: &[u8]) -> Result<()> {
        self.check_live()?;
        if *self.login.read() != Some(UserType::SecurityOfficer) {
            return Err(Error::new(
                Rv::UserNotLoggedIn,
                "only the security officer can set the user PIN",
            ));
        }
        let hash = self.engine.hash_pin(new_pin).await?;
        let entry = EntryContent::now(self.actor(), "pin.init", None, "{}".into());
        let row = self
            .engine
            .store
            .partition(self.part.id)
            .await
            .map_err(store_err)?;
        let so_failures = row.map_or(0, |r| r.so_failures);
        let m = vec![Mutation::SetPinFailures {
            partition_id: self.part.id,
            so_failures,
            user_failures: 0,
        }];
        self.part
            .commit_with(&self.engine, m, vec![entry], None, |r| {
                r.user_pin = Some(hash);
                Ok(true)
            })
            .await
    }

    /// Change the logged-in user's own PIN (`C_SetPIN`).
    pub async fn set_pin(&self, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
        self.check_live()?;
        let user = (*self.login.read())
            .ok_or_else(|| Error::new(Rv::UserNotLoggedIn, "log in to change a PIN"))?;
        check_pin_len(new_pin)?;
        self.check_pin_counted(user, old_pin, "pin.verify", "pin.verify.fail")
            .await?;
        let hash = self.engine.hash_pin(new_pin).await?;
        let entry = EntryContent::now(self.actor(), "pin.change", None, "{}".into());
        self.part
            .commit_with(&self.engine, Vec::new(), vec![entry], None, |r| {
                match user {
                    UserType::SecurityOfficer => r.so_pin = hash,
                    UserType::User => r.user_pin = Some(hash),
                }
                Ok(true)
            })
            .await
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.remember_final_state();
        self.session_objects.write().clear();
        // Queued events stay in the buffer until the next flush writes them.
        self.buffer.closed.store(true, Ordering::Release);
    }
}

// The engine and its contexts are shared across threads by every face.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Context>();
    send_sync::<Engine>();
};
