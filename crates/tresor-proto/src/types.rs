//! Wire mirrors of the engine's argument and result types: hash algorithms, mechanisms with
//! their parameters, attribute templates, attribute reads, partition summaries and
//! attestations. Tags are part of the wire format: never renumber, only append.

use crate::codec::{get_seq, put_seq, wire_seq, wire_struct, wire_unit_enum, wire_variants};
use crate::codec::{Reader, Wire, Writer};
use crate::error::{ProtoError, Result};
use crate::secret::Secret;

/// An object handle: the engine's object id (negative for session objects).
pub type ObjectHandle = i64;

wire_unit_enum! {
    /// Hash functions (`tresor_core::crypto::HashAlg`).
    pub enum HashAlg {
        /// SHA-1.
        Sha1 = 0x00,
        /// SHA-224.
        Sha224 = 0x01,
        /// SHA-256.
        Sha256 = 0x02,
        /// SHA-384.
        Sha384 = 0x03,
        /// SHA-512.
        Sha512 = 0x04,
        /// SHA3-224.
        Sha3_224 = 0x05,
        /// SHA3-256.
        Sha3_256 = 0x06,
        /// SHA3-384.
        Sha3_384 = 0x07,
        /// SHA3-512.
        Sha3_512 = 0x08,
        /// Keccak-224 (original padding).
        Keccak224 = 0x09,
        /// Keccak-256 (original padding, Ethereum).
        Keccak256 = 0x0a,
        /// Keccak-384 (original padding).
        Keccak384 = 0x0b,
        /// Keccak-512 (original padding).
        Keccak512 = 0x0c,
    }
}

wire_unit_enum! {
    /// Who logs in (`CKU_SO` / `CKU_USER`).
    pub enum UserType {
        /// The security officer.
        SecurityOfficer = 0x00,
        /// The crypto user.
        User = 0x01,
    }
}

wire_struct! {
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    pub struct PssParams {
        /// Hash of the message.
        pub hash: HashAlg,
        /// MGF1 hash.
        pub mgf: HashAlg,
        /// Salt length in bytes.
        pub salt_len: u64,
    }
}

wire_struct! {
    /// `CK_RSA_PKCS_OAEP_PARAMS` (source `CKZ_DATA_SPECIFIED` with `label`).
    pub struct OaepParams {
        /// Hash.
        pub hash: HashAlg,
        /// MGF1 hash.
        pub mgf: HashAlg,
        /// Label (may be empty).
        pub label: Vec<u8>,
    }
}

wire_struct! {
    /// `CK_GCM_PARAMS`.
    pub struct GcmParams {
        /// IV (nonce).
        pub iv: Vec<u8>,
        /// Additional authenticated data.
        pub aad: Vec<u8>,
        /// Tag length in bits.
        pub tag_bits: u32,
    }
}

wire_struct! {
    /// `CK_ECDH1_DERIVE_PARAMS`.
    pub struct EcdhParams {
        /// `None` = `CKD_NULL`, else the X9.63 KDF hash.
        pub kdf: Option<HashAlg>,
        /// KDF shared data.
        pub shared_data: Vec<u8>,
        /// The peer's public point.
        pub public_data: Vec<u8>,
    }
}

wire_variants! {
    /// A mechanism and its parameters (`tresor_core::crypto::Mechanism`).
    pub enum Mechanism {
        /// `CKM_RSA_PKCS`.
        RsaPkcs = 0x00 {},
        /// `CKM_RSA_X_509`.
        RsaX509 = 0x01 {},
        /// `CKM_SHAxxx_RSA_PKCS`.
        RsaPkcsHash = 0x02 {
            /// The hash.
            hash: HashAlg,
        },
        /// `CKM_RSA_PKCS_PSS` over a caller-computed digest.
        RsaPss = 0x03 {
            /// PSS parameters.
            params: PssParams,
        },
        /// `CKM_SHAxxx_RSA_PKCS_PSS`.
        RsaPssHash = 0x04 {
            /// The hash the token computes.
            hash: HashAlg,
            /// PSS parameters.
            params: PssParams,
        },
        /// `CKM_RSA_PKCS_OAEP`.
        RsaOaep = 0x05 {
            /// OAEP parameters.
            params: OaepParams,
        },
        /// `CKM_ECDSA` over a caller-computed hash.
        Ecdsa = 0x06 {},
        /// `CKM_ECDSA_SHAxxx` (the token hashes).
        EcdsaHash = 0x07 {
            /// The hash.
            hash: HashAlg,
        },
        /// Deterministic ECDSA (RFC 6979).
        EcdsaDeterministic = 0x08 {
            /// The hash.
            hash: HashAlg,
        },
        /// ECDSA over SHA-256(SHA-256(data)).
        EcdsaDoubleSha256 = 0x09 {},
        /// `CKM_EDDSA` (pure).
        Eddsa = 0x0a {},
        /// `CKM_ML_DSA`.
        MlDsa = 0x0b {
            /// Context string (≤ 255 bytes).
            context: Vec<u8>,
        },
        /// `CKM_SLH_DSA`.
        SlhDsa = 0x0c {
            /// Context string (≤ 255 bytes).
            context: Vec<u8>,
        },
        /// `CKM_SHAxxx_HMAC`.
        Hmac = 0x0d {
            /// The hash.
            hash: HashAlg,
        },
        /// `CKM_AES_ECB`.
        AesEcb = 0x0e {},
        /// `CKM_AES_CBC`.
        AesCbc = 0x0f {
            /// 16-byte IV.
            iv: Vec<u8>,
        },
        /// `CKM_AES_CBC_PAD`.
        AesCbcPad = 0x10 {
            /// 16-byte IV.
            iv: Vec<u8>,
        },
        /// `CKM_AES_CTR`.
        AesCtr = 0x11 {
            /// 16-byte counter block.
            iv: Vec<u8>,
            /// Counter bits (1..=128).
            counter_bits: u32,
        },
        /// `CKM_AES_GCM`.
        AesGcm = 0x12 {
            /// GCM parameters.
            params: GcmParams,
        },
        /// `CKM_CHACHA20_POLY1305`.
        ChaCha20Poly1305 = 0x13 {
            /// 12-byte nonce.
            nonce: Vec<u8>,
            /// Additional authenticated data.
            aad: Vec<u8>,
        },
        /// `CKM_AES_KEY_WRAP` (RFC 3394).
        AesKeyWrap = 0x14 {},
        /// `CKM_AES_KEY_WRAP_KWP` (RFC 5649).
        AesKeyWrapPad = 0x15 {},
        /// `CKM_ML_KEM`.
        MlKem = 0x16 {},
        /// `CKM_ECDH1_DERIVE`.
        Ecdh1Derive = 0x17 {
            /// ECDH parameters.
            params: EcdhParams,
        },
        /// `CKM_SHA_1`, `CKM_SHA256`, …
        Digest = 0x18 {
            /// The hash.
            hash: HashAlg,
        },
    }
}

impl Wire for Mechanism {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        w.u8(self.code());
        self.put_fields(w)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        let tag = r.u8()?;
        Mechanism::get_fields(tag, r)?.ok_or(ProtoError::UnknownTag {
            what: "Mechanism",
            tag,
            offset,
        })
    }
}

/// The value of one attribute (`tresor_core::template::AttrValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// `CK_BBOOL` (tag `0x00`, one byte 0/1).
    Bool(bool),
    /// `CK_ULONG` (tag `0x01`, `u64`).
    Ulong(u64),
    /// Byte string (tag `0x02`, `u32` length ‖ bytes); may be key material.
    Bytes(Secret),
}

impl Wire for AttrValue {
    const MIN_LEN: usize = 2;
    fn put(&self, w: &mut Writer) -> Result<()> {
        match self {
            AttrValue::Bool(b) => {
                w.u8(0);
                b.put(w)
            }
            AttrValue::Ulong(u) => {
                w.u8(1);
                u.put(w)
            }
            AttrValue::Bytes(b) => {
                w.u8(2);
                b.put(w)
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        match r.u8()? {
            0 => Ok(AttrValue::Bool(bool::get(r)?)),
            1 => Ok(AttrValue::Ulong(u64::get(r)?)),
            2 => Ok(AttrValue::Bytes(Secret::get(r)?)),
            tag => Err(ProtoError::UnknownTag {
                what: "AttrValue",
                tag,
                offset,
            }),
        }
    }
}

wire_struct! {
    /// One attribute of a template.
    pub struct Attribute {
        /// `CKA_*` type.
        pub ty: u64,
        /// Its value.
        pub value: AttrValue,
    }
}

/// An attribute template: `u32` count ‖ attributes. Kinds and duplicates are checked when it
/// is turned into an engine template, not on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template(pub Vec<Attribute>);

impl Template {
    /// An empty template.
    pub fn new() -> Self {
        Template::default()
    }

    /// Add a boolean attribute.
    pub fn with_bool(mut self, ty: u64, v: bool) -> Self {
        self.0.push(Attribute {
            ty,
            value: AttrValue::Bool(v),
        });
        self
    }

    /// Add a `CK_ULONG` attribute.
    pub fn with_ulong(mut self, ty: u64, v: u64) -> Self {
        self.0.push(Attribute {
            ty,
            value: AttrValue::Ulong(v),
        });
        self
    }

    /// Add a byte-string attribute.
    pub fn with_bytes(mut self, ty: u64, v: &[u8]) -> Self {
        self.0.push(Attribute {
            ty,
            value: AttrValue::Bytes(Secret::from_slice(v)),
        });
        self
    }
}

impl Wire for Template {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut Writer) -> Result<()> {
        put_seq(w, &self.0)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Template(get_seq(r)?))
    }
}

/// The outcome of reading one attribute (`tresor_core::object::AttrRead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrRead {
    /// Tag `0x00`: the value as PKCS#11 passes it (may be key material).
    Value(Secret),
    /// Tag `0x01`: sensitive or unextractable (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
    /// Tag `0x02`: no such attribute (`CKR_ATTRIBUTE_TYPE_INVALID`).
    Invalid,
}

impl Wire for AttrRead {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut Writer) -> Result<()> {
        match self {
            AttrRead::Value(v) => {
                w.u8(0);
                v.put(w)
            }
            AttrRead::Sensitive => {
                w.u8(1);
                Ok(())
            }
            AttrRead::Invalid => {
                w.u8(2);
                Ok(())
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self> {
        let offset = r.offset();
        match r.u8()? {
            0 => Ok(AttrRead::Value(Secret::get(r)?)),
            1 => Ok(AttrRead::Sensitive),
            2 => Ok(AttrRead::Invalid),
            tag => Err(ProtoError::UnknownTag {
                what: "AttrRead",
                tag,
                offset,
            }),
        }
    }
}

wire_struct! {
    /// A partition in a listing (`tresor_core::engine::PartitionSummary`).
    pub struct PartitionSummary {
        /// Stable id (token serial).
        pub id: i64,
        /// Name (token label).
        pub name: String,
        /// Creation time, Unix seconds.
        pub created: i64,
        /// Number of objects.
        pub objects: i64,
    }
}

wire_struct! {
    /// A key's attestation (`tresor_core::attest::Attestation`).
    pub struct Attestation {
        /// The XML attribute document.
        pub xml: String,
        /// ECDSA-SHA256 (DER) over `xml` by the partition's attestation key.
        pub signature: Vec<u8>,
        /// PEM chain: attestation certificate, node certificate.
        pub chain_pem: String,
        /// Name of the attestation key.
        pub attestation_key_name: String,
    }
}

wire_struct! {
    /// `CK_MECHANISM_INFO` of one mechanism.
    pub struct MechanismInfo {
        /// `CKM_*` value.
        pub mechanism: u64,
        /// Minimum key size (bits or bytes, as PKCS#11 defines per mechanism).
        pub min_key_size: u64,
        /// Maximum key size.
        pub max_key_size: u64,
        /// `CKF_*` flags.
        pub flags: u64,
    }
}

wire_struct! {
    /// A session object sealed by the node for the application that owns it (see
    /// `Request::Sealing`): ciphertext only, restorable into a new context of the same
    /// application (`Request::RestoreSessionObjects`).
    pub struct SealedObject {
        /// The session object's handle (negative).
        pub object: i64,
        /// Its version (1 at creation, one more per change).
        pub version: i64,
        /// The sealed blob (AES-256-GCM under the partition key; see `docs/sealing.md`).
        pub sealed: Vec<u8>,
    }
}

wire_struct! {
    /// A key password presented for one object (`Request::WithKeyPasswords`).
    pub struct KeyPassword {
        /// The object the password belongs to (a private or secret key).
        pub key: ObjectHandle,
        /// The password (UTF-8 text as the caller typed it).
        pub password: Secret,
    }
}

wire_seq!(
    Attribute,
    AttrRead,
    PartitionSummary,
    MechanismInfo,
    SealedObject,
    KeyPassword
);
