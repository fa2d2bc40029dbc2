//! The PKCS#11 numbers the engine speaks (classes, key types, attributes, mechanisms), taken from
//! `cryptoki-sys` (PKCS#11 3.2 tables) as `u64`, plus Tresor's vendor attributes.

#![allow(missing_docs)]

macro_rules! ck_consts {
    ($($name:ident),* $(,)?) => {
        $(pub const $name: u64 = cryptoki_sys::$name as u64;)*
    };
}

ck_consts!(
    CKO_DATA,
    CKO_CERTIFICATE,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
    CKK_RSA,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_AES,
    CKK_GENERIC_SECRET,
    CKK_CHACHA20,
    CKK_ML_DSA,
    CKK_ML_KEM,
    CKK_SLH_DSA,
    CKC_X_509,
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_UNIQUE_ID,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_PARAMETER_SET,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
    CKA_ALLOWED_MECHANISMS,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_AES_KEY_GEN,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_CHACHA20_KEY_GEN,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKM_ML_KEM_KEY_PAIR_GEN,
    CKM_SLH_DSA_KEY_PAIR_GEN,
    CKM_ECDH1_DERIVE,
    CKP_ML_DSA_44,
    CKP_ML_DSA_65,
    CKP_ML_DSA_87,
    CKP_ML_KEM_512,
    CKP_ML_KEM_768,
    CKP_ML_KEM_1024,
    CKP_SLH_DSA_SHA2_128S,
    CKP_SLH_DSA_SHA2_128F,
    CKP_SLH_DSA_SHA2_192S,
    CKP_SLH_DSA_SHA2_192F,
    CKP_SLH_DSA_SHA2_256S,
    CKP_SLH_DSA_SHA2_256F,
    CKP_SLH_DSA_SHAKE_128S,
    CKP_SLH_DSA_SHAKE_128F,
    CKP_SLH_DSA_SHAKE_192S,
    CKP_SLH_DSA_SHAKE_192F,
    CKP_SLH_DSA_SHAKE_256S,
    CKP_SLH_DSA_SHAKE_256F,
);

/// `CK_UNAVAILABLE_INFORMATION` as `u64`.
pub const CK_UNAVAILABLE_INFORMATION: u64 = u64::MAX;

/// Base of Tresor's vendor attributes (`CKA_VENDOR_DEFINED | 0x5452_0000`, "TR").
pub const CKA_TRESOR_BASE: u64 = 0x8000_0000 | 0x5452_0000;
/// The key's approval policy as Securosys JSON (read-only after creation except via modify).
pub const CKA_TRESOR_POLICY: u64 = CKA_TRESOR_BASE + 1;
/// The Smart Key Attribute `blocked` flag (CK_BBOOL, read-only; changed by block/unblock).
pub const CKA_TRESOR_BLOCKED: u64 = CKA_TRESOR_BASE + 2;
/// Number of uses of the key (CK_ULONG, read-only).
pub const CKA_TRESOR_USAGE_COUNT: u64 = CKA_TRESOR_BASE + 3;
/// Creation time, Unix seconds (CK_ULONG, read-only).
pub const CKA_TRESOR_CREATE_TIME: u64 = CKA_TRESOR_BASE + 4;
/// A private key as PKCS#8 `PrivateKeyInfo` DER (write-only, for import).
pub const CKA_TRESOR_PKCS8: u64 = CKA_TRESOR_BASE + 5;
/// The key's UUID as text (read-only).
pub const CKA_TRESOR_UUID: u64 = CKA_TRESOR_BASE + 6;
/// Creation only: the new private or secret key's password (bytes; stored as an Argon2id hash,
/// never readable). Later changes go through the engine's key-password change.
pub const CKA_TRESOR_KEY_PASSWORD: u64 = CKA_TRESOR_BASE + 0x20;
/// Creation only (CK_ULONG): refuse the new token object if an existing token object of one of
/// these classes carries its label; bit `1 << CKO_*` per class. Checked in the same commit as
/// the object is written (with the partition's compare-and-swap), so two writers cannot both
/// succeed. Not stored.
pub const CKA_TRESOR_UNIQUE_LABEL: u64 = CKA_TRESOR_BASE + 0x21;
