//! Algorithm, key and mechanism types shared by the engine and the faces.

use zeroize::Zeroizing;

/// Hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    /// Original Keccak padding (Ethereum), 224/256/384/512.
    Keccak224,
    Keccak256,
    Keccak384,
    Keccak512,
}

/// Weierstrass curves for ECDSA / ECDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
    BrainpoolP256r1,
    BrainpoolP384r1,
    BrainpoolP512r1,
}

/// Edwards curves for EdDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EdCurve {
    Ed25519,
    Ed448,
}

/// ML-DSA parameter sets (FIPS 204).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MlDsaParam {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

/// ML-KEM parameter sets (FIPS 203).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MlKemParam {
    MlKem512,
    MlKem768,
    MlKem1024,
}

/// SLH-DSA parameter sets (FIPS 205).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SlhDsaParam {
    Sha2_128s,
    Sha2_128f,
    Sha2_192s,
    Sha2_192f,
    Sha2_256s,
    Sha2_256f,
    Shake128s,
    Shake128f,
    Shake192s,
    Shake192f,
    Shake256s,
    Shake256f,
}

/// The algorithm of a key: PKCS#11 key type plus the domain parameters that fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlg {
    Rsa,
    Ec(Curve),
    Ed(EdCurve),
    Aes,
    GenericSecret,
    ChaCha20,
    MlDsa(MlDsaParam),
    MlKem(MlKemParam),
    SlhDsa(SlhDsaParam),
}

/// Mask generation function for PSS / OAEP (`CKG_MGF1_*`).
pub type Mgf1 = HashAlg;

/// `CK_RSA_PKCS_PSS_PARAMS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PssParams {
    pub hash: HashAlg,
    pub mgf: Mgf1,
    pub salt_len: usize,
}

/// `CK_RSA_PKCS_OAEP_PARAMS` (source = `CKZ_DATA_SPECIFIED` with `label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaepParams {
    pub hash: HashAlg,
    pub mgf: Mgf1,
    pub label: Vec<u8>,
}

/// `CK_GCM_PARAMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    pub iv: Vec<u8>,
    pub aad: Vec<u8>,
    /// 0 (REST "no tag"), 64, 96, 104, 112, 120 or 128; PKCS#11 allows 32..=128 in steps of 8.
    pub tag_bits: usize,
}

/// `CK_ECDH1_DERIVE_PARAMS` (KDF `CKD_NULL` = `None`, or `CKD_SHAxxx_KDF` = ANSI X9.63 KDF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdhParams {
    pub kdf: Option<HashAlg>,
    pub shared_data: Vec<u8>,
    /// The peer's public point: raw uncompressed point (or DER OCTET STRING of it), as PKCS#11.
    pub public_data: Vec<u8>,
}

/// A mechanism and its parameters, mirroring PKCS#11 `CKM_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// `CKM_RSA_PKCS`: sign a caller-built DigestInfo (or any data ≤ k-11) / encrypt v1.5.
    RsaPkcs,
    /// `CKM_RSA_X_509`: raw RSA.
    RsaX509,
    /// `CKM_SHAxxx_RSA_PKCS`: hash, DigestInfo, v1.5 signature.
    RsaPkcsHash(HashAlg),
    /// `CKM_RSA_PKCS_PSS` over a digest computed by the caller (length must match `hash`).
    RsaPss(PssParams),
    /// `CKM_SHAxxx_RSA_PKCS_PSS`: the token hashes with `hash` (must equal `params.hash`).
    RsaPssHash(HashAlg, PssParams),
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep(OaepParams),
    /// `CKM_ECDSA`: sign a caller-computed hash (truncated/padded per X9.62); raw r‖s output.
    Ecdsa,
    /// `CKM_ECDSA_SHAxxx` / `CKM_ECDSA_SHA3_xxx` / Keccak: the token hashes; raw r‖s output.
    EcdsaHash(HashAlg),
    /// Deterministic ECDSA (RFC 6979) with the token hashing; raw r‖s output.
    EcdsaDeterministic(HashAlg),
    /// ECDSA over SHA-256(SHA-256(data)) (Bitcoin); raw r‖s output.
    EcdsaDoubleSha256,
    /// `CKM_EDDSA`: pure Ed25519 / Ed448 (no pre-hash, empty context).
    Eddsa,
    /// `CKM_ML_DSA` with an optional context string (≤ 255 bytes).
    MlDsa { context: Vec<u8> },
    /// `CKM_SLH_DSA` with an optional context string (≤ 255 bytes).
    SlhDsa { context: Vec<u8> },
    /// `CKM_SHAxxx_HMAC` (full-length MAC).
    Hmac(HashAlg),
    /// `CKM_AES_ECB` (no padding; data a multiple of 16).
    AesEcb,
    /// `CKM_AES_CBC` (no padding) with a 16-byte IV.
    AesCbc { iv: Vec<u8> },
    /// `CKM_AES_CBC_PAD` (PKCS#7) with a 16-byte IV.
    AesCbcPad { iv: Vec<u8> },
    /// `CKM_AES_CTR` with a 16-byte counter block; `counter_bits` 1..=128.
    AesCtr { iv: Vec<u8>, counter_bits: usize },
    /// `CKM_AES_GCM`; encrypt output is ciphertext‖tag.
    AesGcm(GcmParams),
    /// `CKM_CHACHA20_POLY1305` with a 12-byte nonce; output ciphertext‖tag(16).
    ChaCha20Poly1305 { nonce: Vec<u8>, aad: Vec<u8> },
    /// `CKM_AES_KEY_WRAP` (RFC 3394).
    AesKeyWrap,
    /// `CKM_AES_KEY_WRAP_KWP` / `_PAD` (RFC 5649).
    AesKeyWrapPad,
    /// `CKM_ML_KEM` encapsulation / decapsulation.
    MlKem,
    /// `CKM_ECDH1_DERIVE`.
    Ecdh1Derive(EcdhParams),
    /// `CKM_SHA_1`, `CKM_SHA256`, …: digest.
    Digest(HashAlg),
}

/// `CK_MECHANISM_TYPE` as `u64` (`CK_ULONG` is `c_ulong`; the cast is for non-LP64 targets).
#[allow(clippy::unnecessary_cast)]
const fn ckm(m: cryptoki_sys::CK_MECHANISM_TYPE) -> u64 {
    m as u64
}

/// A hash-and-X mechanism family, listed SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, SHA3-224,
/// SHA3-256, SHA3-384, SHA3-512 (the order of [`by_hash`]).
pub type HashFamily = [cryptoki_sys::CK_MECHANISM_TYPE; 9];

/// `CKM_SHAxxx_RSA_PKCS`.
pub const RSA_PKCS_BY_HASH: HashFamily = {
    use cryptoki_sys as ck;
    [
        ck::CKM_SHA1_RSA_PKCS,
        ck::CKM_SHA224_RSA_PKCS,
        ck::CKM_SHA256_RSA_PKCS,
        ck::CKM_SHA384_RSA_PKCS,
        ck::CKM_SHA512_RSA_PKCS,
        ck::CKM_SHA3_224_RSA_PKCS,
        ck::CKM_SHA3_256_RSA_PKCS,
        ck::CKM_SHA3_384_RSA_PKCS,
        ck::CKM_SHA3_512_RSA_PKCS,
    ]
};

/// `CKM_SHAxxx_RSA_PKCS_PSS`.
pub const RSA_PSS_BY_HASH: HashFamily = {
    use cryptoki_sys as ck;
    [
        ck::CKM_SHA1_RSA_PKCS_PSS,
        ck::CKM_SHA224_RSA_PKCS_PSS,
        ck::CKM_SHA256_RSA_PKCS_PSS,
        ck::CKM_SHA384_RSA_PKCS_PSS,
        ck::CKM_SHA512_RSA_PKCS_PSS,
        ck::CKM_SHA3_224_RSA_PKCS_PSS,
        ck::CKM_SHA3_256_RSA_PKCS_PSS,
        ck::CKM_SHA3_384_RSA_PKCS_PSS,
        ck::CKM_SHA3_512_RSA_PKCS_PSS,
    ]
};

/// `CKM_ECDSA_SHAxxx`.
pub const ECDSA_BY_HASH: HashFamily = {
    use cryptoki_sys as ck;
    [
        ck::CKM_ECDSA_SHA1,
        ck::CKM_ECDSA_SHA224,
        ck::CKM_ECDSA_SHA256,
        ck::CKM_ECDSA_SHA384,
        ck::CKM_ECDSA_SHA512,
        ck::CKM_ECDSA_SHA3_224,
        ck::CKM_ECDSA_SHA3_256,
        ck::CKM_ECDSA_SHA3_384,
        ck::CKM_ECDSA_SHA3_512,
    ]
};

/// `CKM_SHAxxx_HMAC`.
pub const HMAC_BY_HASH: HashFamily = {
    use cryptoki_sys as ck;
    [
        ck::CKM_SHA_1_HMAC,
        ck::CKM_SHA224_HMAC,
        ck::CKM_SHA256_HMAC,
        ck::CKM_SHA384_HMAC,
        ck::CKM_SHA512_HMAC,
        ck::CKM_SHA3_224_HMAC,
        ck::CKM_SHA3_256_HMAC,
        ck::CKM_SHA3_384_HMAC,
        ck::CKM_SHA3_512_HMAC,
    ]
};

/// The digests `CKM_SHA_1` … `CKM_SHA3_512`.
pub const DIGEST_BY_HASH: HashFamily = {
    use cryptoki_sys as ck;
    [
        ck::CKM_SHA_1,
        ck::CKM_SHA224,
        ck::CKM_SHA256,
        ck::CKM_SHA384,
        ck::CKM_SHA512,
        ck::CKM_SHA3_224,
        ck::CKM_SHA3_256,
        ck::CKM_SHA3_384,
        ck::CKM_SHA3_512,
    ]
};

/// The member of a [`HashFamily`] for a hash; Keccak has no PKCS#11 number.
pub fn by_hash(h: HashAlg, family: HashFamily) -> Option<u64> {
    let i = match h {
        HashAlg::Sha1 => 0,
        HashAlg::Sha224 => 1,
        HashAlg::Sha256 => 2,
        HashAlg::Sha384 => 3,
        HashAlg::Sha512 => 4,
        HashAlg::Sha3_224 => 5,
        HashAlg::Sha3_256 => 6,
        HashAlg::Sha3_384 => 7,
        HashAlg::Sha3_512 => 8,
        HashAlg::Keccak224 | HashAlg::Keccak256 | HashAlg::Keccak384 | HashAlg::Keccak512 => {
            return None
        }
    };
    Some(ckm(family[i]))
}

impl Mechanism {
    /// The `CKM_*` values that name this mechanism, for `CKA_ALLOWED_MECHANISMS`: one as a
    /// rule; two for RFC 5649 wrapping (`CKM_AES_KEY_WRAP_PAD` and `CKM_AES_KEY_WRAP_KWP`,
    /// which the engine performs alike); none where PKCS#11 has no number (ECDSA over a Keccak
    /// hash). The forms only the REST API reaches are named by the PKCS#11 mechanism that can
    /// produce the same results: deterministic ECDSA by `CKM_ECDSA_SHAxxx` (only the nonce
    /// differs), ECDSA over a double SHA-256 by `CKM_ECDSA_SHA256` (applied to the first hash).
    pub fn ck_types(&self) -> Vec<u64> {
        use cryptoki_sys as ck;
        let one = |m| vec![ckm(m)];
        let hashed = |h, family| by_hash(h, family).into_iter().collect();
        match self {
            Mechanism::RsaPkcs => one(ck::CKM_RSA_PKCS),
            Mechanism::RsaX509 => one(ck::CKM_RSA_X_509),
            Mechanism::RsaPkcsHash(h) => hashed(*h, RSA_PKCS_BY_HASH),
            Mechanism::RsaPss(_) => one(ck::CKM_RSA_PKCS_PSS),
            Mechanism::RsaPssHash(h, _) => hashed(*h, RSA_PSS_BY_HASH),
            Mechanism::RsaOaep(_) => one(ck::CKM_RSA_PKCS_OAEP),
            Mechanism::Ecdsa => one(ck::CKM_ECDSA),
            Mechanism::EcdsaHash(h) | Mechanism::EcdsaDeterministic(h) => hashed(*h, ECDSA_BY_HASH),
            Mechanism::EcdsaDoubleSha256 => one(ck::CKM_ECDSA_SHA256),
            Mechanism::Eddsa => one(ck::CKM_EDDSA),
            Mechanism::MlDsa { .. } => one(ck::CKM_ML_DSA),
            Mechanism::SlhDsa { .. } => one(ck::CKM_SLH_DSA),
            Mechanism::Hmac(h) => hashed(*h, HMAC_BY_HASH),
            Mechanism::AesEcb => one(ck::CKM_AES_ECB),
            Mechanism::AesCbc { .. } => one(ck::CKM_AES_CBC),
            Mechanism::AesCbcPad { .. } => one(ck::CKM_AES_CBC_PAD),
            Mechanism::AesCtr { .. } => one(ck::CKM_AES_CTR),
            Mechanism::AesGcm(_) => one(ck::CKM_AES_GCM),
            Mechanism::ChaCha20Poly1305 { .. } => one(ck::CKM_CHACHA20_POLY1305),
            Mechanism::AesKeyWrap => one(ck::CKM_AES_KEY_WRAP),
            Mechanism::AesKeyWrapPad => {
                vec![ckm(ck::CKM_AES_KEY_WRAP_PAD), ckm(ck::CKM_AES_KEY_WRAP_KWP)]
            }
            Mechanism::MlKem => one(ck::CKM_ML_KEM),
            Mechanism::Ecdh1Derive(_) => one(ck::CKM_ECDH1_DERIVE),
            Mechanism::Digest(h) => hashed(*h, DIGEST_BY_HASH),
        }
    }
}

/// Secret key material: PKCS#8 `PrivateKeyInfo` DER for private keys, the raw value for
/// secret keys. Zeroized on drop; never printed.
pub struct KeyMaterial(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({} bytes, redacted)", self.0.len())
    }
}

impl KeyMaterial {
    /// The bytes (for sealing and wrapping only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// The public half of a key pair, in the forms PKCS#11 and REST report.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PublicInfo {
    /// DER `SubjectPublicKeyInfo`.
    pub spki: Vec<u8>,
    /// RSA: big-endian modulus (`CKA_MODULUS`).
    pub modulus: Option<Vec<u8>>,
    /// RSA: big-endian public exponent (`CKA_PUBLIC_EXPONENT`).
    pub public_exponent: Option<Vec<u8>>,
    /// RSA: modulus length in bits (`CKA_MODULUS_BITS`).
    pub modulus_bits: Option<u32>,
    /// EC / Edwards: DER of the curve OID (`CKA_EC_PARAMS`).
    pub ec_params: Option<Vec<u8>>,
    /// EC / Edwards: DER OCTET STRING holding the public point (`CKA_EC_POINT`).
    pub ec_point: Option<Vec<u8>>,
    /// ML-DSA / ML-KEM / SLH-DSA: raw public key (`CKA_VALUE` of the public key object).
    pub raw_public: Option<Vec<u8>>,
}

/// Parameters of key-pair generation beyond the [`KeyAlg`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPairParams {
    /// RSA modulus bits (2048..=8192 in steps of 8; 1024 refused).
    pub modulus_bits: Option<u32>,
    /// RSA public exponent, big-endian; default 65537.
    pub public_exponent: Option<Vec<u8>>,
}

/// A curve of either family, as named by `CKA_EC_PARAMS` (returned by `curve_from_oid_der`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AnyCurve {
    /// A curve for ECDSA / ECDH.
    Weierstrass(Curve),
    /// A curve for EdDSA.
    Edwards(EdCurve),
}
