//! [`Response`]: one variant per request, plus [`Response::Error`]. A response's code is its
//! request's code with the high bit set (`0x80 | request`); `Error` is `0xff`. Codes are part
//! of the wire format: never renumber, only append.

use crate::codec::{wire_variants, Reader, Wire, Writer};
use crate::error::{ProtoError, Result};
use crate::request::Request;
use crate::secret::Secret;
use crate::types::{
    Attestation, AttrRead, MechanismInfo, ObjectHandle, PartitionSummary, SealedObject, UserType,
};

/// The code of [`Response::Error`].
pub const ERROR_CODE: u8 = 0xff;

wire_variants! {
    /// A node's answer to a [`Request`].
    pub enum Response {
        /// Answers `Ping`.
        Pong = 0x81 {
            /// The node's maximum frame length in bytes.
            max_frame_len: u32,
        },
        /// Answers `OpenSession`.
        SessionOpened = 0x82 {
            /// The node's context id (appears in audit entries).
            context_id: u64,
            /// The partition's stable id (token serial).
            partition_id: i64,
        },
        /// Answers `CloseSession`.
        SessionClosed = 0x83 {},
        /// Answers `Login`.
        LoggedIn = 0x84 {},
        /// Answers `Logout`.
        LoggedOut = 0x85 {},
        /// Answers `InitPin`.
        PinInitialized = 0x86 {},
        /// Answers `SetPin`.
        PinChanged = 0x87 {},
        /// Answers `CreateObject`.
        ObjectCreated = 0x88 {
            /// The new object.
            object: ObjectHandle,
        },
        /// Answers `GenerateKey`.
        KeyGenerated = 0x89 {
            /// The new key.
            key: ObjectHandle,
        },
        /// Answers `GenerateKeyPair`.
        KeyPairGenerated = 0x8a {
            /// The public key.
            public_key: ObjectHandle,
            /// The private key.
            private_key: ObjectHandle,
        },
        /// Answers `DestroyObject`.
        ObjectDestroyed = 0x8b {},
        /// Answers `SetAttributes`.
        AttributesSet = 0x8c {},
        /// Answers `CopyObject`.
        ObjectCopied = 0x8d {
            /// The copy.
            object: ObjectHandle,
        },
        /// Answers `GetAttributes`: one entry per requested type, in order.
        Attributes = 0x8e {
            /// The reads.
            values: Vec<AttrRead>,
        },
        /// Answers `FindObjects`.
        Objects = 0x8f {
            /// Matching handles.
            objects: Vec<ObjectHandle>,
        },
        /// Answers `Record`.
        Record = 0x90 {
            /// The engine's `ObjectRecord` as JSON (it never holds secret material).
            record_json: Vec<u8>,
            /// The key's usage count.
            usage_count: i64,
        },
        /// Answers `Sign`.
        Signature = 0x91 {
            /// The signature (or MAC).
            signature: Vec<u8>,
        },
        /// Answers `SignatureLen`.
        SignatureLen = 0x92 {
            /// Length in bytes.
            len: u64,
        },
        /// Answers `Verify` when the signature is valid (an invalid one is an `Error` with
        /// `CKR_SIGNATURE_INVALID`).
        Verified = 0x93 {},
        /// Answers `Encrypt`.
        Encrypted = 0x94 {
            /// Ciphertext.
            ciphertext: Vec<u8>,
        },
        /// Answers `Decrypt`.
        Decrypted = 0x95 {
            /// Plaintext.
            plaintext: Secret,
        },
        /// Answers `WrapKey`.
        Wrapped = 0x96 {
            /// The wrapped key.
            wrapped: Vec<u8>,
        },
        /// Answers `UnwrapKey`.
        Unwrapped = 0x97 {
            /// The new key.
            key: ObjectHandle,
        },
        /// Answers `DeriveKey`.
        Derived = 0x98 {
            /// The new key.
            key: ObjectHandle,
        },
        /// Answers `Encapsulate`.
        Encapsulated = 0x99 {
            /// The KEM ciphertext.
            ciphertext: Vec<u8>,
            /// The new secret key.
            key: ObjectHandle,
        },
        /// Answers `Decapsulate`.
        Decapsulated = 0x9a {
            /// The new secret key.
            key: ObjectHandle,
        },
        /// Answers `BlockKey`.
        KeyBlocked = 0x9b {},
        /// Answers `UnblockKey`.
        KeyUnblocked = 0x9c {},
        /// Answers `Attest`.
        Attested = 0x9d {
            /// The attestation.
            attestation: Attestation,
        },
        /// Answers `Digest`.
        Digest = 0x9e {
            /// The digest.
            digest: Vec<u8>,
        },
        /// Answers `Random`.
        Random = 0x9f {
            /// Random bytes.
            bytes: Secret,
        },
        /// Answers `CreatePartition`.
        PartitionCreated = 0xa0 {
            /// The new partition's id.
            id: i64,
        },
        /// Answers `ListPartitions`.
        Partitions = 0xa1 {
            /// The partitions.
            partitions: Vec<PartitionSummary>,
        },
        /// Answers `DeletePartition`.
        PartitionDeleted = 0xa2 {},
        /// Answers `GetMechanisms`.
        Mechanisms = 0xa3 {
            /// Supported mechanisms.
            mechanisms: Vec<MechanismInfo>,
        },
        /// Answers `RegisterClient`.
        ClientRegistered = 0xa4 {
            /// SHA-256 of the registered SubjectPublicKeyInfo, lowercase hex.
            fingerprint: String,
        },
        /// Answers `AttachSession`.
        SessionAttached = 0xa5 {
            /// The node's context id (appears in audit entries).
            context_id: u64,
            /// The partition's stable id (token serial).
            partition_id: i64,
            /// True if the context existed already (joined, not created).
            joined: bool,
            /// Who is logged in on the context: none, or the `UserType` tag.
            login: Option<UserType>,
        },
        /// Answers `InitToken`.
        TokenInitialized = 0xa6 {
            /// How many token objects were destroyed.
            objects_destroyed: u64,
        },
        /// Answers `TokenStatus`.
        TokenStatus = 0xa7 {
            /// The user PIN is set (`CKF_USER_PIN_INITIALIZED`).
            user_pin_initialized: bool,
            /// Consecutive wrong SO PINs.
            so_failures: u32,
            /// Consecutive wrong user PINs.
            user_failures: u32,
            /// Wrong PINs after which a PIN is locked.
            max_failures: u32,
        },
        /// Answers `Sealing`: the wrapped request's answer and the sealed copies of the session
        /// objects it created or changed.
        Sealed = 0xa8 {
            /// One sealed copy per session object created or changed.
            objects: Vec<SealedObject>,
            /// The wrapped request's answer (never itself `Sealed`).
            answer: Box<Response>,
        },
        /// Answers `RestoreSessionObjects`.
        SessionObjectsRestored = 0xa9 {
            /// How many session objects were restored.
            restored: u32,
        },
        /// Answers `WithKeyPasswords`: the wrapped request's answer (never an error, which is
        /// answered as `Error` directly, and never another `WithKeyPasswords`).
        WithKeyPasswords = 0xb0 {
            /// The inner request's answer.
            response: Box<Response>,
        },
        /// Answers `ChangeKeyPassword`.
        KeyPasswordChanged = 0xb1 {},
        /// Answers `ModifyPolicy`.
        PolicyModified = 0xb2 {},
        /// Any request failed.
        Error = 0xff {
            /// The `CK_RV` (PKCS#11 or Tresor vendor code).
            rv: u64,
            /// What was wrong (never secret values).
            message: String,
        },
    }
}

impl Response {
    /// An error response.
    pub fn error(rv: u64, message: impl Into<String>) -> Self {
        Response::Error {
            rv,
            message: message.into(),
        }
    }

    /// True if this response can answer `request`: the matching variant, or `Error`.
    pub fn answers(&self, request: &Request) -> bool {
        let c = self.code();
        c == ERROR_CODE || c == (request.code() | 0x80)
    }
}

/// The code of [`Response::Sealed`].
pub const SEALED: u8 = 0xa8;
/// The code of [`Response::WithKeyPasswords`].
pub const WITH_KEY_PASSWORDS_ANSWER: u8 = 0xb0;

/// The answer inside a wrapper ([`Response::Sealed`], [`Response::WithKeyPasswords`]):
/// `code:u8 ‖ fields`. A wrapper never wraps a wrapper (of either kind) nor an `Error` (a
/// failed inner request is answered with `Error` directly), so decoding never recurses more
/// than once; an unknown code is refused too.
impl Wire for Box<Response> {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        let code = self.code();
        if code == SEALED || code == WITH_KEY_PASSWORDS_ANSWER || code == ERROR_CODE {
            return Err(ProtoError::Unrepresentable(
                "a wrapped answer is a success answer that is not itself a wrapper".into(),
            ));
        }
        w.u8(code);
        self.put_fields(w)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        let code = r.u8()?;
        let unknown = ProtoError::UnknownTag {
            what: "wrapped response",
            tag: code,
            offset,
        };
        if code == SEALED || code == WITH_KEY_PASSWORDS_ANSWER || code == ERROR_CODE {
            return Err(unknown);
        }
        match Response::get_fields(code, r)? {
            Some(inner) => Ok(Box::new(inner)),
            None => Err(unknown),
        }
    }
}
