//! A session: its active operations (one per kind), its find state and the session objects
//! it created. Operations hold no network state: an `…Init` only checks and records; the
//! first call that needs the HSM sends everything in one request.
//!
//! Output follows the PKCS#11 conventions (§5.2): a length query (NULL buffer) or a short
//! buffer keeps the operation and its computed result, so the call that follows costs no
//! round trip; success or any other error ends the operation.
//!
//! This file holds the state and the delivery rules; the operations are in `crypto`
//! (sign, verify, encrypt, decrypt, digest), `dual` (the dual-function updates), `message`
//! (3.0 message-based functions),
//! `objects` (objects, attributes, find) and `keys` (generation, wrap, unwrap, derive,
//! KEM, random).

use std::sync::Arc;

use parking_lot::Mutex;
use tresor_proto::{Mechanism, Request, Response, Secret};
use zeroize::Zeroizing;

use crate::attrs::{self, RawAttr};
use crate::ck::*;
use crate::error::{Error, Result};
use crate::fail;
use crate::mechanism::{self, RawMechanism, Usage};
use crate::module::{unexpected, Slot};

pub use dual::Partner;
pub use message::{MsgParam, Sealed};

mod crypto;
mod dual;
mod keys;
mod message;
mod objects;

/// Largest input buffered for one operation (the node's frame limit, less headroom).
pub const MAX_DATA: usize = 16 * 1024 * 1024 - 64 * 1024;

/// What a call that returns bytes produced, for the ABI to deliver.
#[derive(Debug)]
pub enum Out {
    /// A length query (NULL buffer): the length needed.
    Len(usize),
    /// The buffer is too small: the length needed (`CKR_BUFFER_TOO_SMALL`).
    TooSmall(usize),
    /// The bytes (they fit the buffer).
    Data(Zeroizing<Vec<u8>>),
}

#[derive(Debug)]
struct Stash {
    input: Zeroizing<Vec<u8>>,
    output: Zeroizing<Vec<u8>>,
}

/// One active operation.
#[derive(Debug)]
struct Op {
    key: i64,
    ty: u64,
    mech: Mechanism,
    data: Zeroizing<Vec<u8>>,
    parts: bool,
    /// A decryption that already returned plaintext (dual-function updates): `mech` carries
    /// the chaining value for what `data` still holds.
    streamed: bool,
    stash: Option<Stash>,
    /// The key's password from `C_Login(CKU_CONTEXT_SPECIFIC)` for this operation alone (a
    /// key with `CKA_ALWAYS_AUTHENTICATE`); it goes with the operation's request and ends
    /// with the operation.
    auth: Option<Secret>,
}

impl Op {
    fn new(key: i64, ty: u64, mech: Mechanism) -> Self {
        Self {
            key,
            ty,
            mech,
            data: Zeroizing::new(Vec::new()),
            parts: false,
            streamed: false,
            stash: None,
            auth: None,
        }
    }
}

/// A message-based operation (PKCS#11 3.0 §5.9, §5.11, §5.14, §5.16).
#[derive(Debug)]
struct MsgOp {
    key: i64,
    ty: u64,
    raw: RawMechanism,
    counter: u64,
    sign_stash: Option<Stash>,
    /// The message begun with `C_…MessageBegin` and not yet ended.
    begun: Option<Begun>,
    /// The key's password from `C_Login(CKU_CONTEXT_SPECIFIC)`, for every message until
    /// `C_MessageSignFinal` / `C_MessageDecryptFinal`.
    auth: Option<Secret>,
}

/// A multi-part message under way: its mechanism (with the IV and associated data of an AEAD
/// message) and the parts gathered so far. The node works on whole messages, so the parts
/// travel in one request with the last one.
#[derive(Debug)]
struct Begun {
    op: Op,
    /// AEAD: the IV (or nonce) of the message.
    iv: Vec<u8>,
    /// AEAD: the tag length.
    tag_len: usize,
    /// AEAD decryption: the tag the parameter held at `C_DecryptMessageBegin` (used when the
    /// last part comes without a parameter).
    tag: Vec<u8>,
}

#[derive(Debug)]
struct Find {
    handles: Vec<i64>,
    pos: usize,
}

#[derive(Debug, Default)]
struct State {
    find: Option<Find>,
    sign: Option<Op>,
    verify: Option<Op>,
    encrypt: Option<Op>,
    decrypt: Option<Op>,
    digest: Option<Op>,
    verify_signature: Option<(Op, Vec<u8>)>,
    msg_encrypt: Option<MsgOp>,
    msg_decrypt: Option<MsgOp>,
    msg_sign: Option<MsgOp>,
    msg_verify: Option<MsgOp>,
    objects: Vec<i64>,
    wrapped: Option<((Mechanism, i64, i64), Vec<u8>)>,
    /// The last attestation read, so that a size query and the read that follows see the
    /// same document (each attestation carries its own time).
    attested: Option<(i64, std::time::Instant, tresor_proto::Attestation)>,
}

/// A PKCS#11 session.
#[derive(Debug)]
pub struct Session {
    /// Its handle.
    pub handle: u64,
    /// Its slot.
    pub slot: Arc<Slot>,
    /// Read/write session.
    pub rw: bool,
    state: Mutex<State>,
}

fn key_id(h: u64) -> Result<i64> {
    if h == 0 {
        fail!(CKR_KEY_HANDLE_INVALID, "handle 0 is never valid");
    }
    Ok(h as i64)
}

fn object_id(h: u64) -> Result<i64> {
    if h == 0 {
        fail!(CKR_OBJECT_HANDLE_INVALID, "handle 0 is never valid");
    }
    Ok(h as i64)
}

/// The `CK_OBJECT_HANDLE` of an object id (ids are non-zero; session objects negative).
pub fn handle(id: i64) -> u64 {
    id as u64
}

/// A key operation's node error: an unknown object is an invalid *key* handle here.
fn key_error(e: Error) -> Error {
    if e.rv == CKR_OBJECT_HANDLE_INVALID {
        Error::new(CKR_KEY_HANDLE_INVALID, e.message)
    } else {
        e
    }
}

/// The node's "wrong key password" (`TRESOR_KEY_PASSWORD_INCORRECT`).
pub(crate) const KEY_PASSWORD_INCORRECT: u64 = 0x8000_000E;

/// Sends `req` for an operation on a key, with the key's password when the operation has one
/// (`Request::WithKeyPasswords`). Without one, the node's "key password needed" is what
/// PKCS#11 calls a missing context-specific login (`CKR_USER_NOT_LOGGED_IN`).
fn key_call(slot: &Slot, key: i64, auth: Option<&Secret>, req: Request) -> Result<Response> {
    let Some(password) = auth else {
        return slot.call(&req).map_err(|e| {
            if e.rv == KEY_PASSWORD_INCORRECT {
                Error::new(
                    CKR_USER_NOT_LOGGED_IN,
                    format!(
                        "{}: the key has CKA_ALWAYS_AUTHENTICATE; call C_Login(CKU_CONTEXT_SPECIFIC) after the …Init",
                        e.message
                    ),
                )
            } else {
                key_error(e)
            }
        });
    };
    let wrapped = Request::WithKeyPasswords {
        passwords: vec![tresor_proto::KeyPassword {
            key,
            password: password.clone(),
        }],
        request: Box::new(req),
    };
    match slot.call(&wrapped).map_err(key_error)? {
        Response::WithKeyPasswords { response } => Ok(*response),
        other => Err(unexpected(&other)),
    }
}

fn start(slot: &mut Option<Op>, m: &RawMechanism, key: u64, usage: Usage) -> Result<()> {
    if slot.is_some() {
        fail!(CKR_OPERATION_ACTIVE, "an operation of this kind is active");
    }
    let mech = mechanism::to_wire(m, usage)?;
    let key = if usage == Usage::Digest {
        0
    } else {
        key_id(key)?
    };
    *slot = Some(Op::new(key, m.ty, mech));
    Ok(())
}

fn append(slot: &mut Option<Op>, part: &[u8]) -> Result<()> {
    let op = slot
        .as_mut()
        .ok_or_else(|| Error::new(CKR_OPERATION_NOT_INITIALIZED, "no operation"))?;
    if op.data.len() + part.len() > MAX_DATA {
        *slot = None;
        fail!(
            CKR_DATA_LEN_RANGE,
            "more than {MAX_DATA} bytes in one operation"
        );
    }
    op.parts = true;
    op.data.extend_from_slice(part);
    Ok(())
}

/// The common delivery of a single-part call (or a `…Final`, with `input` = the buffered
/// parts): a stashed result for the same input, else a locally known length for a query or a
/// short buffer, else the computation. Errors end the operation.
fn deliver(
    slot: &mut Option<Op>,
    input: Option<&[u8]>,
    cap: Option<usize>,
    local_len: impl FnOnce(&Op, usize) -> Option<usize>,
    compute: impl FnOnce(&Op, &[u8]) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<Out> {
    let op = slot
        .as_mut()
        .ok_or_else(|| Error::new(CKR_OPERATION_NOT_INITIALIZED, "no operation"))?;
    let input: Zeroizing<Vec<u8>> = match input {
        Some(i) => {
            if op.parts {
                fail!(CKR_OPERATION_ACTIVE, "a multi-part operation is under way");
            }
            if i.len() > MAX_DATA {
                *slot = None;
                fail!(CKR_DATA_LEN_RANGE, "more than {MAX_DATA} bytes");
            }
            Zeroizing::new(i.to_vec())
        }
        None => op.data.clone(),
    };
    let stashed = op
        .stash
        .as_ref()
        .filter(|s| s.input[..] == input[..])
        .map(|s| s.output.clone());
    let output = match stashed {
        Some(o) => o,
        None => {
            if let Some(n) = local_len(op, input.len()) {
                match cap {
                    None => return Ok(Out::Len(n)),
                    Some(c) if c < n => return Ok(Out::TooSmall(n)),
                    _ => {}
                }
            }
            match compute(op, &input) {
                Ok(o) => o,
                Err(e) => {
                    *slot = None;
                    return Err(e);
                }
            }
        }
    };
    let n = output.len();
    match cap {
        Some(c) if c >= n => {
            *slot = None;
            Ok(Out::Data(output))
        }
        _ => {
            op.stash = Some(Stash { input, output });
            Ok(if cap.is_none() {
                Out::Len(n)
            } else {
                Out::TooSmall(n)
            })
        }
    }
}

impl Session {
    /// A new session.
    pub fn new(handle: u64, slot: Arc<Slot>, rw: bool) -> Self {
        Self {
            handle,
            slot,
            rw,
            state: Mutex::new(State::default()),
        }
    }

    fn sign_request(
        &self,
        key: i64,
        ty: u64,
        mech: &Mechanism,
        data: &[u8],
        auth: Option<&Secret>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = Request::Sign {
            key,
            mechanism: mech.clone(),
            data: Secret::from_slice(data),
        };
        match key_call(&self.slot, key, auth, req)? {
            Response::Signature { signature } => {
                self.slot.remember_len(key, ty, signature.len());
                Ok(Zeroizing::new(signature))
            }
            other => Err(unexpected(&other)),
        }
    }

    fn verify_request(&self, key: i64, mech: &Mechanism, data: &[u8], sig: &[u8]) -> Result<()> {
        match self
            .slot
            .call(&Request::Verify {
                key,
                mechanism: mech.clone(),
                data: Secret::from_slice(data),
                signature: sig.to_vec(),
            })
            .map_err(key_error)?
        {
            Response::Verified {} => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn encrypt_request(
        &self,
        key: i64,
        ty: u64,
        mech: &Mechanism,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        match self
            .slot
            .call(&Request::Encrypt {
                key,
                mechanism: mech.clone(),
                data: Secret::from_slice(data),
            })
            .map_err(key_error)?
        {
            Response::Encrypted { ciphertext } => {
                if mechanism::encrypt_len(mech, 0).is_none() {
                    self.slot.remember_len(key, ty, ciphertext.len());
                }
                Ok(Zeroizing::new(ciphertext))
            }
            other => Err(unexpected(&other)),
        }
    }

    fn decrypt_request(
        &self,
        key: i64,
        mech: &Mechanism,
        data: &[u8],
        auth: Option<&Secret>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = Request::Decrypt {
            key,
            mechanism: mech.clone(),
            data: data.to_vec(),
        };
        match key_call(&self.slot, key, auth, req)? {
            Response::Decrypted { plaintext } => Ok(plaintext.into_inner()),
            other => Err(unexpected(&other)),
        }
    }

    // ---- context-specific login ------------------------------------------------------------

    /// The keys of the operations a `C_Login(CKU_CONTEXT_SPECIFIC)` applies to: the active
    /// signing and decryption operations (single-part, multi-part, message-based).
    pub fn context_keys(&self) -> Vec<i64> {
        let st = self.state.lock();
        let mut keys: Vec<i64> = [st.sign.as_ref(), st.decrypt.as_ref()]
            .into_iter()
            .flatten()
            .map(|op| op.key)
            .chain(
                [st.msg_sign.as_ref(), st.msg_decrypt.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|op| op.key),
            )
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Gives `password` to the active signing and decryption operations on `key`, for as long
    /// as each lasts.
    pub fn set_context_password(&self, key: i64, password: &Secret) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for op in [st.sign.as_mut(), st.decrypt.as_mut()]
            .into_iter()
            .flatten()
        {
            if op.key == key {
                op.auth = Some(password.clone());
            }
        }
        for op in [st.msg_sign.as_mut(), st.msg_decrypt.as_mut()]
            .into_iter()
            .flatten()
        {
            if op.key == key {
                op.auth = Some(password.clone());
            }
        }
    }

    // ---- cancel ---------------------------------------------------------------------------

    /// `C_SessionCancel`: ends the operations named by `flags`.
    pub fn cancel(&self, flags: u64) -> Result<()> {
        let mut st = self.state.lock();
        if flags & CKF_SIGN != 0 {
            st.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            st.verify = None;
            st.verify_signature = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            st.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            st.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            st.digest = None;
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            st.find = None;
        }
        if flags & CKF_MESSAGE_ENCRYPT != 0 {
            st.msg_encrypt = None;
        }
        if flags & CKF_MESSAGE_DECRYPT != 0 {
            st.msg_decrypt = None;
        }
        if flags & CKF_MESSAGE_SIGN != 0 {
            st.msg_sign = None;
        }
        if flags & CKF_MESSAGE_VERIFY != 0 {
            st.msg_verify = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn op() -> Option<Op> {
        Some(Op::new(5, CKM_ECDSA, Mechanism::Ecdsa {}))
    }

    fn sig(calls: &Cell<u32>) -> impl Fn(&Op, &[u8]) -> Result<Zeroizing<Vec<u8>>> + '_ {
        move |_, input| {
            calls.set(calls.get() + 1);
            Ok(Zeroizing::new(vec![input.len() as u8; 64]))
        }
    }

    #[test]
    fn query_then_buffer_costs_one_computation() {
        let calls = Cell::new(0);
        let mut slot = op();
        let out = deliver(&mut slot, Some(b"abc"), None, |_, _| None, sig(&calls));
        assert!(matches!(out, Ok(Out::Len(64))));
        assert!(slot.is_some(), "a length query keeps the operation");
        let out = deliver(&mut slot, Some(b"abc"), Some(10), |_, _| None, sig(&calls));
        assert!(matches!(out, Ok(Out::TooSmall(64))));
        assert!(slot.is_some(), "a short buffer keeps the operation");
        let out = deliver(&mut slot, Some(b"abc"), Some(64), |_, _| None, sig(&calls));
        assert!(matches!(out, Ok(Out::Data(d)) if d.len() == 64 && d[0] == 3));
        assert!(slot.is_none(), "success ends the operation");
        assert_eq!(calls.get(), 1, "the kept result served the later calls");
    }

    #[test]
    fn known_length_answers_locally_and_new_input_recomputes() {
        let calls = Cell::new(0);
        let mut slot = op();
        let out = deliver(&mut slot, Some(b"abc"), None, |_, _| Some(64), sig(&calls));
        assert!(matches!(out, Ok(Out::Len(64))));
        assert_eq!(calls.get(), 0);
        let out = deliver(
            &mut slot,
            Some(b"abc"),
            Some(1),
            |_, _| Some(64),
            sig(&calls),
        );
        assert!(matches!(out, Ok(Out::TooSmall(64))));
        assert_eq!(calls.get(), 0);
        // A stash for other data is not reused.
        let mut slot = op();
        let _ = deliver(&mut slot, Some(b"abc"), None, |_, _| None, sig(&calls));
        let out = deliver(&mut slot, Some(b"abcd"), Some(64), |_, _| None, sig(&calls));
        assert!(matches!(out, Ok(Out::Data(d)) if d[0] == 4));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn errors_end_the_operation_and_parts_are_buffered() {
        let mut slot = op();
        let out = deliver(
            &mut slot,
            Some(b"x"),
            Some(64),
            |_, _| None,
            |_, _| Err(Error::new(CKR_KEY_HANDLE_INVALID, "gone")),
        );
        assert_eq!(
            out.map(|_| ()).map_err(|e| e.rv),
            Err(CKR_KEY_HANDLE_INVALID)
        );
        assert!(slot.is_none());
        let mut slot = op();
        append(&mut slot, b"ab").unwrap_or(());
        append(&mut slot, b"c").unwrap_or(());
        let single = deliver(
            &mut slot,
            Some(b"abc"),
            Some(64),
            |_, _| None,
            |_, _| Ok(Zeroizing::new(Vec::new())),
        );
        assert_eq!(
            single.map(|_| ()).map_err(|e| e.rv),
            Err(CKR_OPERATION_ACTIVE)
        );
        let calls = Cell::new(0);
        let out = deliver(&mut slot, None, Some(64), |_, _| None, sig(&calls));
        assert!(matches!(out, Ok(Out::Data(d)) if d[0] == 3));
        let mut none = None;
        assert_eq!(
            append(&mut none, b"x").map_err(|e| e.rv),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
    }
}
