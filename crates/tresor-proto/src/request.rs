//! [`Request`]: one variant per engine operation. The variant's code is the message kind
//! byte of the header (`0x01..=0x7f`). Codes are part of the wire format: never renumber,
//! only append.

use crate::codec::{wire_variants, Reader, Wire, Writer};
use crate::error::{ProtoError, Result};
use crate::secret::Secret;
use crate::types::{
    HashAlg, KeyPassword, Mechanism, ObjectHandle, SealedObject, Template, UserType,
};

wire_variants! {
    /// A request from a client (PKCS#11 library, REST API, ppin) to an HSM node.
    pub enum Request {
        /// No-op; answered with [`Response::Pong`](crate::Response::Pong).
        Ping = 0x01 {},
        /// Open this connection's context on a partition (not logged in). The node checks the
        /// name against the partition the channel authenticated.
        OpenSession = 0x02 {
            /// Partition name.
            partition: String,
        },
        /// Close the context (logs out, destroys session objects).
        CloseSession = 0x03 {},
        /// `C_Login`.
        Login = 0x04 {
            /// Who logs in.
            user: UserType,
            /// The PIN.
            pin: Secret,
        },
        /// `C_Logout`.
        Logout = 0x05 {},
        /// `C_InitPIN` (as the security officer).
        InitPin = 0x06 {
            /// The new user PIN.
            new_pin: Secret,
        },
        /// `C_SetPIN` (own PIN).
        SetPin = 0x07 {
            /// The current PIN.
            old_pin: Secret,
            /// The new PIN.
            new_pin: Secret,
        },
        /// `C_CreateObject`.
        CreateObject = 0x08 {
            /// The object's attributes (may hold key material).
            template: Template,
        },
        /// `C_GenerateKey`.
        GenerateKey = 0x09 {
            /// `CKM_*` key-generation mechanism.
            mechanism: u64,
            /// The key's attributes.
            template: Template,
        },
        /// `C_GenerateKeyPair`.
        GenerateKeyPair = 0x0a {
            /// `CKM_*` key-pair-generation mechanism.
            mechanism: u64,
            /// Public key attributes.
            public_template: Template,
            /// Private key attributes.
            private_template: Template,
        },
        /// `C_DestroyObject`.
        DestroyObject = 0x0b {
            /// The object.
            object: ObjectHandle,
        },
        /// `C_SetAttributeValue`.
        SetAttributes = 0x0c {
            /// The object.
            object: ObjectHandle,
            /// The attributes to set.
            template: Template,
        },
        /// `C_CopyObject`.
        CopyObject = 0x0d {
            /// The object to copy.
            object: ObjectHandle,
            /// Attributes to change in the copy.
            template: Template,
        },
        /// `C_GetAttributeValue`.
        GetAttributes = 0x0e {
            /// The object.
            object: ObjectHandle,
            /// `CKA_*` types to read.
            types: Vec<u64>,
        },
        /// `C_FindObjects` (init + find + final in one call).
        FindObjects = 0x0f {
            /// Attributes to match.
            template: Template,
            /// At most this many handles.
            max: u32,
        },
        /// An object's full record (everything but its secret) and usage count.
        Record = 0x10 {
            /// The object.
            object: ObjectHandle,
        },
        /// `C_Sign`.
        Sign = 0x11 {
            /// Signing key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Data to sign.
            data: Secret,
        },
        /// Length `Sign` will produce (a PKCS#11 length query), without signing.
        SignatureLen = 0x12 {
            /// Signing key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
        },
        /// `C_Verify`.
        Verify = 0x13 {
            /// Verification key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Signed data.
            data: Secret,
            /// The signature.
            signature: Vec<u8>,
        },
        /// `C_Encrypt`.
        Encrypt = 0x14 {
            /// Encryption key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Plaintext.
            data: Secret,
        },
        /// `C_Decrypt`.
        Decrypt = 0x15 {
            /// Decryption key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Ciphertext.
            data: Vec<u8>,
        },
        /// `C_WrapKey`.
        WrapKey = 0x16 {
            /// Wrapping key.
            wrapping_key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Key to wrap.
            target: ObjectHandle,
        },
        /// `C_UnwrapKey`.
        UnwrapKey = 0x17 {
            /// Unwrapping key.
            unwrapping_key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// Wrapped key.
            wrapped: Vec<u8>,
            /// The new key's attributes.
            template: Template,
        },
        /// `C_DeriveKey`.
        DeriveKey = 0x18 {
            /// Base key.
            base_key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// The new key's attributes.
            template: Template,
        },
        /// `C_EncapsulateKey`.
        Encapsulate = 0x19 {
            /// Public (encapsulation) key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// The new secret key's attributes.
            template: Template,
        },
        /// `C_DecapsulateKey`.
        Decapsulate = 0x1a {
            /// Private (decapsulation) key.
            key: ObjectHandle,
            /// Mechanism.
            mechanism: Mechanism,
            /// The KEM ciphertext.
            ciphertext: Vec<u8>,
            /// The new secret key's attributes.
            template: Template,
        },
        /// Block a Smart-Key-Attribute key.
        BlockKey = 0x1b {
            /// The key.
            key: ObjectHandle,
        },
        /// Unblock a Smart-Key-Attribute key.
        UnblockKey = 0x1c {
            /// The key.
            key: ObjectHandle,
        },
        /// A key's attestation.
        Attest = 0x1d {
            /// The key.
            key: ObjectHandle,
        },
        /// `C_Digest`.
        Digest = 0x1e {
            /// Hash function.
            hash: HashAlg,
            /// Data.
            data: Secret,
        },
        /// `C_GenerateRandom`.
        Random = 0x1f {
            /// Number of bytes.
            len: u32,
        },
        /// Create a partition (administration).
        CreatePartition = 0x20 {
            /// Name.
            name: String,
            /// Security officer PIN.
            so_pin: Secret,
            /// Optional user PIN.
            user_pin: Option<Secret>,
        },
        /// List partitions (administration).
        ListPartitions = 0x21 {},
        /// Delete a partition and its objects (administration).
        DeletePartition = 0x22 {
            /// Name.
            name: String,
        },
        /// Capability query: the mechanisms the node supports, with their info.
        GetMechanisms = 0x23 {},
        /// `ppin -a`: exchange the partition's one-time setup password (and the PKCS#11
        /// password) for the registration of this client's permanent public key. Sent on a
        /// channel without a client certificate; the connection ends after the answer.
        RegisterClient = 0x24 {
            /// Partition (HSM user name).
            partition: String,
            /// The setup password `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`.
            setup_password: Secret,
            /// The PKCS#11 password (the partition's user PIN).
            pin: Secret,
            /// The client's public key, SubjectPublicKeyInfo DER (P-256).
            public_key: Vec<u8>,
            /// A label for the credential (client id, host).
            label: String,
        },
        /// Join the shared context named by `token` on a partition (creating it if needed):
        /// every pooled connection of one client process names the same token, so they share
        /// login state and session objects. Needs a registered client certificate.
        AttachSession = 0x25 {
            /// Partition name.
            partition: String,
            /// 16 random bytes chosen by the client process.
            token: Vec<u8>,
        },
        /// `C_InitToken` on the context's partition: the SO PIN authorises it; every object
        /// is destroyed and the user PIN cleared.
        InitToken = 0x26 {
            /// The security officer's PIN.
            so_pin: Secret,
            /// The 32-byte blank-padded label (must be the partition's name).
            label: Vec<u8>,
        },
        /// The PIN state of the token (`C_GetTokenInfo`).
        TokenStatus = 0x27 {},
        /// Run `request` and answer with [`Response::Sealed`](crate::Response::Sealed): its
        /// answer and a sealed copy of every session object it created or changed. Only on a
        /// context attached with a token (`AttachSession`); `request` is never itself a
        /// `Sealing` request.
        Sealing = 0x28 {
            /// The request (a creation or change of objects).
            request: Box<Request>,
        },
        /// Restore sealed session objects into this new context under their handles (after a
        /// failover, or once the context lingered out): all or nothing.
        RestoreSessionObjects = 0x29 {
            /// The sealed copies the client kept.
            objects: Vec<SealedObject>,
        },
        /// Run `request` with key passwords presented: the engine checks each password against
        /// its key (a wrong one is refused and counted towards the key's lockout), then runs
        /// the request with those keys usable for it alone. The answer is
        /// [`Response::WithKeyPasswords`](crate::Response::WithKeyPasswords) around the inner
        /// request's answer, or an error. `request` is never itself a `WithKeyPasswords`.
        WithKeyPasswords = 0x30 {
            /// One password per key that needs one.
            passwords: Vec<KeyPassword>,
            /// The request to run.
            request: Box<Request>,
        },
        /// Set, change or remove a key's password. A key that has a password must be unlocked
        /// for this request (sent inside `WithKeyPasswords` with its current password).
        ChangeKeyPassword = 0x31 {
            /// The private or secret key.
            key: ObjectHandle,
            /// The new password; `None` removes the password.
            new_password: Option<Secret>,
        },
        /// Replace the approval policy of a Smart-Key-Attribute key (Securosys modify).
        ModifyPolicy = 0x32 {
            /// The private or secret key.
            key: ObjectHandle,
            /// The new policy, Securosys JSON.
            policy: Vec<u8>,
        },
    }
}

/// The code of [`Request::Sealing`].
pub const SEALING: u8 = 0x28;
/// The code of [`Request::WithKeyPasswords`].
pub const WITH_KEY_PASSWORDS: u8 = 0x30;

/// A request inside a wrapper ([`Request::Sealing`], [`Request::WithKeyPasswords`]):
/// `code:u8 ‖ fields`. A wrapper never wraps a wrapper (of either kind), so decoding never
/// recurses more than once; an unknown code is refused too.
impl Wire for Box<Request> {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        let code = self.code();
        if code == SEALING || code == WITH_KEY_PASSWORDS {
            return Err(ProtoError::Unrepresentable(
                "a wrapped request cannot itself be a Sealing or WithKeyPasswords request".into(),
            ));
        }
        w.u8(code);
        self.put_fields(w)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        let code = r.u8()?;
        let unknown = ProtoError::UnknownTag {
            what: "wrapped request",
            tag: code,
            offset,
        };
        if code == SEALING || code == WITH_KEY_PASSWORDS {
            return Err(unknown);
        }
        match Request::get_fields(code, r)? {
            Some(inner) => Ok(Box::new(inner)),
            None => Err(unknown),
        }
    }
}

impl Request {
    /// True if running the request twice leaves the same stored state as running it once, so
    /// a client may retry it on another node without a request-id check. Everything else
    /// (creations, destructions, changes, logins, partition administration) must be
    /// deduplicated by `request_id`.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self,
            Request::Ping { .. }
                | Request::GetAttributes { .. }
                | Request::FindObjects { .. }
                | Request::Record { .. }
                | Request::Sign { .. }
                | Request::SignatureLen { .. }
                | Request::Verify { .. }
                | Request::Encrypt { .. }
                | Request::Decrypt { .. }
                | Request::WrapKey { .. }
                | Request::Attest { .. }
                | Request::Digest { .. }
                | Request::Random { .. }
                | Request::ListPartitions { .. }
                | Request::GetMechanisms { .. }
                | Request::AttachSession { .. }
                | Request::TokenStatus { .. }
        ) || matches!(self, Request::Sealing { request } if request.is_idempotent())
            || matches!(self, Request::WithKeyPasswords { request, .. } if request.is_idempotent())
    }

    /// The request itself, or the one a [`Request::Sealing`] wraps.
    pub fn inner(&self) -> &Request {
        match self {
            Request::Sealing { request } => request,
            other => other,
        }
    }
}
