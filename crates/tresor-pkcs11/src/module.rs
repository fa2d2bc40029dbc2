//! The state of one initialised library in one process: its slots (from the configuration)
//! and its sessions. No lock is global: sessions live in sharded maps (a read lock to find
//! one), each session has its own mutex, and a slot's login state and caches are read-mostly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tresor_client::config::lookup::{find_config, find_secrets, ProcessEnvironment};
use tresor_client::config::primus::{LogConfig, PrimusConfig};
use tresor_client::config::secrets::SecretsFile;
use tresor_client::connect::SlotClient;
use tresor_proto::{AttrRead, MechanismInfo, Request, Response, UserType};

use crate::ck::*;
use crate::error::{Error, Result};
use crate::fail;
use crate::session::Session;

const SHARDS: usize = 16;

/// Objects whose immutable attributes are cached, at most (per slot).
const MAX_CACHED_OBJECTS: usize = 100_000;

/// The PIN state of a token (`Request::TokenStatus`), for `C_GetTokenInfo`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    /// The user PIN is set.
    pub user_pin_initialized: bool,
    /// Consecutive wrong SO PINs.
    pub so_failures: u32,
    /// Consecutive wrong user PINs.
    pub user_failures: u32,
    /// Wrong PINs after which a PIN is locked.
    pub max_failures: u32,
}

/// One configured slot: its client, login state (per application, as PKCS#11 defines it) and
/// the caches that spare round trips.
#[derive(Debug)]
pub struct Slot {
    /// The slot id of the configuration.
    pub id: u64,
    /// The partition (token label).
    pub partition: String,
    client: std::result::Result<SlotClient, String>,
    mechanisms: OnceLock<Vec<MechanismInfo>>,
    /// Who is logged in on this slot (shared by all sessions of the application).
    pub login: RwLock<Option<UserType>>,
    /// Immutable attributes read so far, per object id.
    attrs: RwLock<HashMap<i64, HashMap<u64, AttrRead>>>,
    /// Output lengths seen per (key, `CKM_*`) for fixed-length mechanisms.
    out_len: RwLock<HashMap<(i64, u64), usize>>,
    /// When the token last answered (milliseconds since `epoch`; 0 = never, or gone since).
    last_answer_ms: AtomicU64,
    /// The token's PIN state and when it was learned (milliseconds since `epoch`).
    state: RwLock<Option<(u64, TokenState)>>,
    epoch: Instant,
}

impl Slot {
    fn new(id: u64, partition: String, client: std::result::Result<SlotClient, String>) -> Self {
        Self {
            id,
            partition,
            client,
            mechanisms: OnceLock::new(),
            login: RwLock::new(None),
            attrs: RwLock::new(HashMap::new()),
            out_len: RwLock::new(HashMap::new()),
            last_answer_ms: AtomicU64::new(0),
            state: RwLock::new(None),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The token's PIN state: the one learned within `fresh` (while the token kept answering),
    /// else one `TokenStatus` request (which also shows that the token can be reached).
    pub fn token_state(&self, fresh: std::time::Duration) -> Result<TokenState> {
        let fresh = u64::try_from(fresh.as_millis()).unwrap_or(u64::MAX);
        if let Some((at, s)) = *self.state.read() {
            let present = self.last_answer_ms.load(Ordering::Relaxed) != 0;
            if present && self.now_ms().saturating_sub(at) <= fresh {
                return Ok(s);
            }
        }
        match self.call(&Request::TokenStatus {})? {
            Response::TokenStatus {
                user_pin_initialized,
                so_failures,
                user_failures,
                max_failures,
            } => {
                let s = TokenState {
                    user_pin_initialized,
                    so_failures,
                    user_failures,
                    max_failures,
                };
                *self.state.write() = Some((self.now_ms(), s));
                Ok(s)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Forgets the PIN state (after a PIN or the token changed through this library).
    pub fn forget_token_state(&self) {
        *self.state.write() = None;
    }

    /// True if credentials for the slot are configured (the token can be reached at all).
    pub fn configured(&self) -> bool {
        self.client.is_ok()
    }

    /// Sends a request; a node error or a transport failure becomes the matching `CK_RV`.
    pub fn call(&self, request: &Request) -> Result<Response> {
        let client = self
            .client
            .as_ref()
            .map_err(|m| Error::new(CKR_TOKEN_NOT_PRESENT, format!("slot {}: {m}", self.id)))?;
        let r = client.call(request);
        match &r {
            Ok(_) | Err(tresor_client::Error::Node { .. }) => {
                let now = self.now_ms();
                if now.saturating_sub(self.last_answer_ms.load(Ordering::Relaxed)) > 100 {
                    self.last_answer_ms.store(now, Ordering::Relaxed);
                }
            }
            // Gone: the next presence check asks again.
            Err(_) => self.last_answer_ms.store(0, Ordering::Relaxed),
        }
        match r {
            Ok(Response::Error { rv, message }) => Err(Error::new(rv, message)),
            Ok(r) => Ok(r),
            Err(e) => Err(Error::from_client(&e)),
        }
    }

    /// The mechanism catalogue of the node (fetched once).
    pub fn mechanisms(&self) -> Result<&[MechanismInfo]> {
        if let Some(m) = self.mechanisms.get() {
            return Ok(m);
        }
        let list = match self.call(&Request::GetMechanisms {})? {
            Response::Mechanisms { mechanisms } => mechanisms,
            other => return Err(unexpected(&other)),
        };
        Ok(self.mechanisms.get_or_init(|| list))
    }

    /// Reads attributes, from the cache where they are immutable and known; one request for
    /// the rest.
    pub fn attributes(&self, object: i64, types: &[u64]) -> Result<Vec<AttrRead>> {
        let mut out: Vec<Option<AttrRead>> = {
            let cache = self.attrs.read();
            let known = cache.get(&object);
            types
                .iter()
                .map(|t| known.and_then(|k| k.get(t)).cloned())
                .collect()
        };
        let missing: Vec<u64> = types
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| *t)
            .collect();
        if !missing.is_empty() {
            let values = match self.call(&Request::GetAttributes {
                object,
                types: missing.clone(),
            })? {
                Response::Attributes { values } if values.len() == missing.len() => values,
                other => return Err(unexpected(&other)),
            };
            let mut cache = self.attrs.write();
            if cache.len() >= MAX_CACHED_OBJECTS && !cache.contains_key(&object) {
                // Objects destroyed by other applications are never seen to go: start over
                // rather than grow without bound.
                cache.clear();
            }
            let entry = cache.entry(object).or_default();
            let mut it = values.into_iter();
            for slot in out.iter_mut().filter(|v| v.is_none()) {
                if let Some(v) = it.next() {
                    *slot = Some(v);
                }
            }
            for (t, v) in types.iter().zip(&out) {
                if let (true, Some(v @ AttrRead::Value(_))) = (crate::attrs::is_immutable(*t), v) {
                    entry.insert(*t, v.clone());
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.unwrap_or(AttrRead::Invalid))
            .collect())
    }

    /// One `CK_ULONG` attribute (cached if immutable); `None` if the object lacks it.
    pub fn ulong_attribute(&self, object: i64, ty: u64) -> Result<Option<u64>> {
        match self.attributes(object, &[ty])?.first() {
            Some(AttrRead::Value(v)) => Ok(crate::attrs::ulong(ty, v.expose()).ok()),
            _ => Ok(None),
        }
    }

    /// Drops the client's sealed copy of a session object (its session closed).
    pub fn drop_copy(&self, object: i64) {
        if let Ok(c) = &self.client {
            c.drop_copy(object);
        }
    }

    /// Forgets what is cached about an object (destroyed).
    pub fn forget(&self, object: i64) {
        self.attrs.write().remove(&object);
        self.out_len.write().retain(|(k, _), _| *k != object);
    }

    /// Forgets every object and the PIN state (the token was re-initialised).
    fn forget_everything(&self) {
        self.attrs.write().clear();
        self.out_len.write().clear();
        self.forget_token_state();
    }

    /// A fixed output length seen before for `key` and `mechanism`.
    pub fn known_len(&self, key: i64, mechanism: u64) -> Option<usize> {
        self.out_len.read().get(&(key, mechanism)).copied()
    }

    /// Remembers a fixed output length.
    pub fn remember_len(&self, key: i64, mechanism: u64, len: usize) {
        let known = self.out_len.read().get(&(key, mechanism)).copied();
        if known != Some(len) {
            self.out_len.write().insert((key, mechanism), len);
        }
    }
}

/// An answer of the wrong kind.
pub fn unexpected(r: &Response) -> Error {
    Error::new(
        CKR_DEVICE_ERROR,
        format!("unexpected answer from the HSM (kind {:#04x})", r.code()),
    )
}

/// The sessions of the library, sharded by handle.
#[derive(Debug)]
struct Sessions {
    shards: Vec<RwLock<HashMap<u64, Arc<Session>>>>,
}

impl Sessions {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, h: u64) -> &RwLock<HashMap<u64, Arc<Session>>> {
        &self.shards[(h as usize) % SHARDS]
    }
}

/// The library's state between `C_Initialize` and `C_Finalize`.
#[derive(Debug)]
pub struct Module {
    slots: Vec<Arc<Slot>>,
    sessions: Sessions,
    next_session: AtomicU64,
    /// Serialises login-state changes against session opening (rare operations only).
    login_lock: Mutex<()>,
    /// The configuration's `log` block.
    log: LogConfig,
    /// The configuration file read.
    config_path: std::path::PathBuf,
}

impl Module {
    /// Reads the configuration (`$TRESOR_PKCS11_CONF`, `$SECUROSYS_PKCS11_CONF`, standard
    /// paths) and the secrets file, and prepares one client per slot. Nothing connects yet.
    pub fn from_environment() -> Result<Self> {
        let env = ProcessEnvironment;
        let located =
            find_config(&env).map_err(|e| Error::new(CKR_GENERAL_ERROR, e.to_string()))?;
        let config = PrimusConfig::load(&located.path)
            .map_err(|e| Error::new(CKR_GENERAL_ERROR, e.to_string()))?;
        let secrets = find_secrets(&env)
            .and_then(|s| SecretsFile::load(&s.path))
            .map(|l| l.secrets);
        let mut m = Self::from_config(&config, secrets.as_ref().ok());
        m.config_path = located.path;
        Ok(m)
    }

    /// The configuration's `log` block.
    pub fn log_config(&self) -> &LogConfig {
        &self.log
    }

    /// The configuration file this state was built from (empty if built from a value).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// The slots of `config`; a slot whose credentials are missing is listed without a token.
    pub fn from_config(config: &PrimusConfig, secrets: Option<&SecretsFile>) -> Self {
        let mut slots: Vec<Arc<Slot>> = config
            .slots()
            .iter()
            .map(|s| {
                let client = match secrets {
                    Some(sec) => SlotClient::from_config(config, s, sec).map_err(|e| e.to_string()),
                    None => Err("no secrets file (run 'ppin -a')".to_owned()),
                };
                Arc::new(Slot::new(u64::from(s.id), s.user_name.clone(), client))
            })
            .collect();
        slots.sort_by_key(|s| s.id);
        Self {
            slots,
            sessions: Sessions::new(),
            next_session: AtomicU64::new(1),
            login_lock: Mutex::new(()),
            log: config.log.clone(),
            config_path: std::path::PathBuf::new(),
        }
    }

    /// All slots, by id.
    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// A slot by id.
    pub fn slot(&self, id: u64) -> Result<&Arc<Slot>> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::new(CKR_SLOT_ID_INVALID, format!("no slot {id}")))
    }

    /// A session by handle.
    pub fn session(&self, h: u64) -> Result<Arc<Session>> {
        self.sessions
            .shard(h)
            .read()
            .get(&h)
            .cloned()
            .ok_or_else(|| Error::new(CKR_SESSION_HANDLE_INVALID, format!("no session {h}")))
    }

    fn sessions_of(&self, slot: u64) -> Vec<Arc<Session>> {
        let mut v = Vec::new();
        for s in &self.sessions.shards {
            v.extend(s.read().values().filter(|x| x.slot.id == slot).cloned());
        }
        v
    }

    /// (sessions, read/write sessions) open on a slot.
    pub fn session_counts(&self, slot: u64) -> (usize, usize) {
        let all = self.sessions_of(slot);
        let rw = all.iter().filter(|s| s.rw).count();
        (all.len(), rw)
    }

    /// `C_OpenSession`.
    pub fn open_session(&self, slot_id: u64, flags: u64) -> Result<u64> {
        if flags & CKF_SERIAL_SESSION == 0 {
            fail!(
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                "CKF_SERIAL_SESSION must be set"
            );
        }
        if flags & CKF_ASYNC_SESSION != 0 {
            fail!(
                CKR_SESSION_ASYNC_NOT_SUPPORTED,
                "asynchronous sessions are not supported: every call completes before it returns"
            );
        }
        let slot = self.slot(slot_id)?.clone();
        if !slot.configured() {
            fail!(CKR_TOKEN_NOT_PRESENT, "slot {slot_id} has no credentials");
        }
        let rw = flags & CKF_RW_SESSION != 0;
        let _g = self.login_lock.lock();
        if !rw && *slot.login.read() == Some(UserType::SecurityOfficer) {
            fail!(
                CKR_SESSION_READ_WRITE_SO_EXISTS,
                "the security officer is logged in: only read/write sessions"
            );
        }
        let h = self.next_session.fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(Session::new(h, slot, rw));
        self.sessions.shard(h).write().insert(h, s);
        Ok(h)
    }

    /// `C_CloseSession`: destroys the session's session objects; the last session of a slot
    /// logs the application out.
    pub fn close_session(&self, h: u64) -> Result<()> {
        let s = self
            .sessions
            .shard(h)
            .write()
            .remove(&h)
            .ok_or_else(|| Error::new(CKR_SESSION_HANDLE_INVALID, format!("no session {h}")))?;
        s.destroy_session_objects();
        let _g = self.login_lock.lock();
        if self.sessions_of(s.slot.id).is_empty() {
            let was = s.slot.login.write().take();
            if was.is_some() {
                // The token is being left: a failure to reach it does not keep a login.
                let _ = s.slot.call(&Request::Logout {});
            }
        }
        Ok(())
    }

    /// `C_Login(CKU_CONTEXT_SPECIFIC)`: the password of a key with `CKA_ALWAYS_AUTHENTICATE`
    /// (a key password, see docs/objects.md) for the active signing or decryption operation
    /// of the session. The node checks it at once (a wrong one is `CKR_PIN_INCORRECT` and
    /// counts towards the key's lockout); the operation then sends it with its request, and it
    /// is forgotten when the operation ends. For a key without a password there is nothing to
    /// check or keep, and the call succeeds.
    fn context_login(&self, s: &Session, pin: &[u8]) -> Result<()> {
        if s.slot.login.read().is_none() {
            fail!(
                CKR_USER_NOT_LOGGED_IN,
                "a context-specific login needs the user logged in"
            );
        }
        let keys = s.context_keys();
        if keys.is_empty() {
            fail!(
                CKR_OPERATION_NOT_INITIALIZED,
                "no signing or decryption is active in this session"
            );
        }
        let password = tresor_proto::Secret::from_slice(pin);
        for key in keys {
            let needs = match s.slot.call(&Request::GetAttributes {
                object: key,
                types: vec![CKA_ALWAYS_AUTHENTICATE],
            })? {
                Response::Attributes { values } => matches!(
                    values.first(),
                    Some(tresor_proto::AttrRead::Value(v)) if v.expose().first().is_some_and(|b| *b != 0)
                ),
                other => return Err(unexpected(&other)),
            };
            if !needs {
                continue;
            }
            let check = Request::WithKeyPasswords {
                passwords: vec![tresor_proto::KeyPassword {
                    key,
                    password: password.clone(),
                }],
                request: Box::new(Request::GetAttributes {
                    object: key,
                    types: vec![CKA_CLASS],
                }),
            };
            match s.slot.call(&check) {
                Ok(Response::WithKeyPasswords { .. }) => {}
                Ok(other) => return Err(unexpected(&other)),
                Err(e) if e.rv == crate::session::KEY_PASSWORD_INCORRECT => {
                    return Err(Error::new(CKR_PIN_INCORRECT, e.message));
                }
                Err(e) => return Err(e),
            }
            s.set_context_password(key, &password);
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&self, slot_id: u64) -> Result<()> {
        self.slot(slot_id)?;
        for s in self.sessions_of(slot_id) {
            // A session closed concurrently is already gone: nothing to do.
            let _ = self.close_session(s.handle);
        }
        Ok(())
    }

    /// Closes everything (`C_Finalize`).
    pub fn close_everything(&self) {
        for slot in &self.slots {
            let _ = self.close_all_sessions(slot.id);
        }
    }

    /// `C_Login` / `C_LoginUser`.
    pub fn login(&self, h: u64, user: u64, pin: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        let user = match user {
            CKU_USER => UserType::User,
            CKU_SO => UserType::SecurityOfficer,
            CKU_CONTEXT_SPECIFIC => return self.context_login(&s, pin),
            other => fail!(CKR_USER_TYPE_INVALID, "user type {other:#x}"),
        };
        let _g = self.login_lock.lock();
        match *s.slot.login.read() {
            Some(u) if u == user => fail!(CKR_USER_ALREADY_LOGGED_IN, "already logged in"),
            Some(_) => fail!(
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
                "another user is logged in"
            ),
            None => {}
        }
        if user == UserType::SecurityOfficer && self.sessions_of(s.slot.id).iter().any(|x| !x.rw) {
            fail!(
                CKR_SESSION_READ_ONLY_EXISTS,
                "a read-only session is open: the security officer cannot log in"
            );
        }
        let r = s.slot.call(&Request::Login {
            user,
            pin: tresor_proto::Secret::from_slice(pin),
        });
        // The failure counts may have changed.
        s.slot.forget_token_state();
        match r {
            Ok(Response::LoggedIn {}) => {}
            // The node's context remembers a login this library lost track of (a former
            // C_Initialize in this process): log out there and in again.
            Err(e)
                if e.rv == CKR_USER_ALREADY_LOGGED_IN
                    || e.rv == CKR_USER_ANOTHER_ALREADY_LOGGED_IN =>
            {
                let _ = s.slot.call(&Request::Logout {});
                match s.slot.call(&Request::Login {
                    user,
                    pin: tresor_proto::Secret::from_slice(pin),
                })? {
                    Response::LoggedIn {} => {}
                    other => return Err(unexpected(&other)),
                }
            }
            Err(e) => return Err(e),
            Ok(other) => return Err(unexpected(&other)),
        }
        *s.slot.login.write() = Some(user);
        Ok(())
    }

    /// `C_Logout`.
    pub fn logout(&self, h: u64) -> Result<()> {
        let s = self.session(h)?;
        let _g = self.login_lock.lock();
        if s.slot.login.read().is_none() {
            fail!(CKR_USER_NOT_LOGGED_IN, "nobody is logged in");
        }
        let r = s.slot.call(&Request::Logout {});
        *s.slot.login.write() = None;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.rv == CKR_USER_NOT_LOGGED_IN => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `C_InitPIN` (security officer, read/write session).
    pub fn init_pin(&self, h: u64, pin: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        if *s.slot.login.read() != Some(UserType::SecurityOfficer) {
            fail!(
                CKR_USER_NOT_LOGGED_IN,
                "C_InitPIN needs the security officer"
            );
        }
        if !s.rw {
            fail!(
                CKR_SESSION_READ_ONLY,
                "C_InitPIN needs a read/write session"
            );
        }
        let r = s.slot.call(&Request::InitPin {
            new_pin: tresor_proto::Secret::from_slice(pin),
        });
        s.slot.forget_token_state();
        match r? {
            Response::PinInitialized {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_SetPIN` (read/write session).
    pub fn set_pin(&self, h: u64, old: &[u8], new: &[u8]) -> Result<()> {
        let s = self.session(h)?;
        if !s.rw {
            fail!(CKR_SESSION_READ_ONLY, "C_SetPIN needs a read/write session");
        }
        let r = s.slot.call(&Request::SetPin {
            old_pin: tresor_proto::Secret::from_slice(old),
            new_pin: tresor_proto::Secret::from_slice(new),
        });
        s.slot.forget_token_state();
        match r? {
            Response::PinChanged {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// `C_InitToken` (§5.5.7): the node's engine checks the label (the partition's name), the
    /// SO PIN (with its lockout) and re-initialises the token: every object destroyed, the
    /// user PIN cleared. Refused with `CKR_SESSION_EXISTS` while this application has a
    /// session on the slot.
    pub fn init_token(&self, slot_id: u64, so_pin: &[u8], label: &[u8]) -> Result<()> {
        let slot = self.slot(slot_id)?.clone();
        if !slot.configured() {
            fail!(CKR_TOKEN_NOT_PRESENT, "slot {slot_id} has no credentials");
        }
        // No session opens while the token is re-initialised.
        let _g = self.login_lock.lock();
        let open = self.sessions_of(slot_id).len();
        if open > 0 {
            fail!(
                CKR_SESSION_EXISTS,
                "this application has {open} session(s) open on slot {slot_id}: close them first"
            );
        }
        let r = slot.call(&Request::InitToken {
            so_pin: tresor_proto::Secret::from_slice(so_pin),
            label: label.to_vec(),
        });
        slot.forget_token_state();
        match r? {
            Response::TokenInitialized { .. } => {
                slot.forget_everything();
                *slot.login.write() = None;
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The `CKS_*` state of a session.
    pub fn session_state(&self, s: &Session) -> u64 {
        match (*s.slot.login.read(), s.rw) {
            (None, false) => CKS_RO_PUBLIC_SESSION,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (Some(UserType::User), false) => CKS_RO_USER_FUNCTIONS,
            (Some(UserType::User), true) => CKS_RW_USER_FUNCTIONS,
            (Some(UserType::SecurityOfficer), _) => CKS_RW_SO_FUNCTIONS,
        }
    }
}
