//! The PKCS#11 numbers Tresor speaks, in one place for the engine, the PKCS#11 module and the
//! REST API: the standard ones taken from `cryptoki-sys` (PKCS#11 3.2 tables) as `u64` (the
//! wire's width; the module converts `CK_ULONG` at the ABI), Tresor's vendor attributes, and how
//! each attribute's value is encoded.
//!
//! The crate depends on `cryptoki-sys` only, so that the PKCS#11 module can share it without
//! linking the engine.

#![forbid(unsafe_code)]
#![allow(missing_docs)]

macro_rules! ck_consts {
    ($($name:ident),* $(,)?) => {
        $(pub const $name: u64 = cryptoki_sys::$name as u64;)*
    };
}

ck_consts!(
    // return values
    CKR_OK,
    CKR_HOST_MEMORY,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_REMOVED,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_AEAD_DECRYPT_FAILED,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_INDIGESTIBLE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    CKR_SESSION_ASYNC_NOT_SUPPORTED,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_READ_ONLY_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_SESSION_EXISTS,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TOKEN_NOT_PRESENT,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_TYPE_INVALID,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    CKR_BUFFER_TOO_SMALL,
    CKR_RANDOM_SEED_NOT_SUPPORTED,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CKR_CANT_LOCK,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_STATE_UNSAVEABLE,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_OPERATION_CANCEL_FAILED,
    CKR_NO_EVENT,
    // object classes
    CKO_DATA,
    CKO_CERTIFICATE,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
    // key types
    CKK_RSA,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_AES,
    CKK_GENERIC_SECRET,
    CKK_CHACHA20,
    CKK_ML_DSA,
    CKK_ML_KEM,
    CKK_SLH_DSA,
    // certificate types
    CKC_X_509,
    // attributes
    CKA_VENDOR_DEFINED,
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
    // mechanisms
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
    CKM_RSA_PKCS,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA3_224_RSA_PKCS,
    CKM_SHA3_256_RSA_PKCS,
    CKM_SHA3_384_RSA_PKCS,
    CKM_SHA3_512_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA3_224_RSA_PKCS_PSS,
    CKM_SHA3_256_RSA_PKCS_PSS,
    CKM_SHA3_384_RSA_PKCS_PSS,
    CKM_SHA3_512_RSA_PKCS_PSS,
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA_1_HMAC,
    CKM_SHA224_HMAC,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_512_HMAC,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_ECDSA_SHA3_224,
    CKM_ECDSA_SHA3_256,
    CKM_ECDSA_SHA3_384,
    CKM_ECDSA_SHA3_512,
    CKM_EDDSA,
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_AES_KEY_WRAP_KWP,
    CKM_CHACHA20_POLY1305,
    CKM_ML_KEM,
    CKM_ML_DSA,
    CKM_SLH_DSA,
    // post-quantum parameter sets
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
    // flags
    CKF_SERIAL_SESSION,
    CKF_RW_SESSION,
    CKF_ASYNC_SESSION,
    CKF_TOKEN_PRESENT,
    CKF_RNG,
    CKF_LOGIN_REQUIRED,
    CKF_USER_PIN_INITIALIZED,
    CKF_TOKEN_INITIALIZED,
    CKF_USER_PIN_COUNT_LOW,
    CKF_USER_PIN_FINAL_TRY,
    CKF_USER_PIN_LOCKED,
    CKF_SO_PIN_COUNT_LOW,
    CKF_SO_PIN_FINAL_TRY,
    CKF_SO_PIN_LOCKED,
    CKF_OS_LOCKING_OK,
    CKF_SIGN,
    CKF_VERIFY,
    CKF_ENCRYPT,
    CKF_DECRYPT,
    CKF_DIGEST,
    CKF_WRAP,
    CKF_UNWRAP,
    CKF_DERIVE,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN_RECOVER,
    CKF_VERIFY_RECOVER,
    CKF_MESSAGE_ENCRYPT,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_SIGN,
    CKF_MESSAGE_VERIFY,
    CKF_END_OF_MESSAGE,
    CKF_MULTI_MESSAGE,
    CKF_ENCAPSULATE,
    CKF_DECAPSULATE,
    CKF_DONT_BLOCK,
    CKF_FIND_OBJECTS,
    // user types
    CKU_SO,
    CKU_USER,
    CKU_CONTEXT_SPECIFIC,
    // session states
    CKS_RO_PUBLIC_SESSION,
    CKS_RO_USER_FUNCTIONS,
    CKS_RW_PUBLIC_SESSION,
    CKS_RW_USER_FUNCTIONS,
    CKS_RW_SO_FUNCTIONS,
    // MGFs and IV generators
    CKG_NO_GENERATE,
    CKG_GENERATE,
    CKG_GENERATE_COUNTER,
    CKG_GENERATE_RANDOM,
    CKG_GENERATE_COUNTER_XOR,
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
    CKG_MGF1_SHA3_224,
    CKG_MGF1_SHA3_256,
    CKG_MGF1_SHA3_384,
    CKG_MGF1_SHA3_512,
    // OAEP label sources
    CKZ_DATA_SPECIFIED,
    // key derivation functions
    CKD_NULL,
    CKD_SHA1_KDF,
    CKD_SHA224_KDF,
    CKD_SHA256_KDF,
    CKD_SHA384_KDF,
    CKD_SHA512_KDF,
    CKD_SHA3_224_KDF,
    CKD_SHA3_256_KDF,
    CKD_SHA3_384_KDF,
    CKD_SHA3_512_KDF,
);

/// `CK_UNAVAILABLE_INFORMATION` as `u64`.
pub const CK_UNAVAILABLE_INFORMATION: u64 = u64::MAX;

/// Base of Tresor's vendor attributes (`CKA_VENDOR_DEFINED | 0x5452_0000`, "TR").
pub const CKA_TRESOR_BASE: u64 = 0x8000_0000 | 0x5452_0000;
/// The key's approval policy as Securosys JSON (bytes; set at creation, read-only after).
pub const CKA_TRESOR_POLICY: u64 = CKA_TRESOR_BASE + 1;
/// The Smart Key Attribute `blocked` flag (`CK_BBOOL`, read-only; changed by block/unblock).
pub const CKA_TRESOR_BLOCKED: u64 = CKA_TRESOR_BASE + 2;
/// Number of uses of the key (`CK_ULONG`, read-only).
pub const CKA_TRESOR_USAGE_COUNT: u64 = CKA_TRESOR_BASE + 3;
/// Creation time, Unix seconds (`CK_ULONG`, read-only).
pub const CKA_TRESOR_CREATE_TIME: u64 = CKA_TRESOR_BASE + 4;
/// A private key as PKCS#8 `PrivateKeyInfo` DER (write-only, for import).
pub const CKA_TRESOR_PKCS8: u64 = CKA_TRESOR_BASE + 5;
/// The key's UUID as text (read-only).
pub const CKA_TRESOR_UUID: u64 = CKA_TRESOR_BASE + 6;
/// The key's attestation: XML document (bytes, read-only; computed by the PKCS#11 module with
/// one `Attest` request, not stored).
pub const CKA_TRESOR_ATTESTATION: u64 = CKA_TRESOR_BASE + 0x10;
/// The attestation's ECDSA-SHA256 signature (DER, read-only).
pub const CKA_TRESOR_ATTESTATION_SIGNATURE: u64 = CKA_TRESOR_BASE + 0x11;
/// The attestation certificate chain, PEM (read-only).
pub const CKA_TRESOR_ATTESTATION_CHAIN: u64 = CKA_TRESOR_BASE + 0x12;
/// Creation only: the new private or secret key's password (bytes; the engine keeps an
/// Argon2id hash and reads it as sensitive). Such a key has `CKA_ALWAYS_AUTHENTICATE`: every
/// signing or decryption needs `C_Login(CKU_CONTEXT_SPECIFIC)` with the password.
pub const CKA_TRESOR_KEY_PASSWORD: u64 = CKA_TRESOR_BASE + 0x20;
/// Creation only (`CK_ULONG`): refuse the new token object if an existing token object of one
/// of these classes carries its label; bit `1 << CKO_*` per class. Checked in the same commit
/// as the object is written, so two writers cannot both succeed. Not stored.
pub const CKA_TRESOR_UNIQUE_LABEL: u64 = CKA_TRESOR_BASE + 0x21;

/// How an attribute's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    /// `CK_BBOOL`: one byte.
    Bool,
    /// `CK_ULONG`.
    Ulong,
    /// A byte string.
    Bytes,
    /// An array of `CK_MECHANISM_TYPE` (`CKA_ALLOWED_MECHANISMS`); on the wire and in the
    /// engine 8 bytes per value, native byte order.
    Mechanisms,
}

/// The encoding of every attribute the engine stores and the PKCS#11 module passes on; `None`
/// for an unknown type (the attestation attributes, which the module computes, included).
pub fn attr_kind(ty: u64) -> Option<AttrKind> {
    use AttrKind::*;
    Some(match ty {
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_TRUSTED
        | CKA_SENSITIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_DERIVE
        | CKA_EXTRACTABLE
        | CKA_LOCAL
        | CKA_NEVER_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_ALWAYS_AUTHENTICATE
        | CKA_WRAP_WITH_TRUSTED
        | CKA_ENCAPSULATE
        | CKA_DECAPSULATE
        | CKA_TRESOR_BLOCKED => Bool,
        CKA_CLASS
        | CKA_CERTIFICATE_TYPE
        | CKA_CERTIFICATE_CATEGORY
        | CKA_KEY_TYPE
        | CKA_MODULUS_BITS
        | CKA_VALUE_LEN
        | CKA_KEY_GEN_MECHANISM
        | CKA_PARAMETER_SET
        | CKA_TRESOR_USAGE_COUNT
        | CKA_TRESOR_CREATE_TIME
        | CKA_TRESOR_UNIQUE_LABEL => Ulong,
        CKA_LABEL
        | CKA_UNIQUE_ID
        | CKA_APPLICATION
        | CKA_VALUE
        | CKA_OBJECT_ID
        | CKA_ISSUER
        | CKA_SERIAL_NUMBER
        | CKA_CHECK_VALUE
        | CKA_SUBJECT
        | CKA_ID
        | CKA_START_DATE
        | CKA_END_DATE
        | CKA_MODULUS
        | CKA_PUBLIC_EXPONENT
        | CKA_PRIVATE_EXPONENT
        | CKA_PRIME_1
        | CKA_PRIME_2
        | CKA_EXPONENT_1
        | CKA_EXPONENT_2
        | CKA_COEFFICIENT
        | CKA_PUBLIC_KEY_INFO
        | CKA_EC_PARAMS
        | CKA_EC_POINT
        | CKA_TRESOR_POLICY
        | CKA_TRESOR_PKCS8
        | CKA_TRESOR_UUID
        | CKA_TRESOR_KEY_PASSWORD => Bytes,
        CKA_ALLOWED_MECHANISMS => Mechanisms,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vendor attribute has a number of its own, in the vendor range (the engine's key
    /// password and unique label once shared theirs with two attestation attributes).
    #[test]
    fn vendor_attributes_are_distinct_and_vendor_defined() {
        let all = [
            CKA_TRESOR_POLICY,
            CKA_TRESOR_BLOCKED,
            CKA_TRESOR_USAGE_COUNT,
            CKA_TRESOR_CREATE_TIME,
            CKA_TRESOR_PKCS8,
            CKA_TRESOR_UUID,
            CKA_TRESOR_ATTESTATION,
            CKA_TRESOR_ATTESTATION_SIGNATURE,
            CKA_TRESOR_ATTESTATION_CHAIN,
            CKA_TRESOR_KEY_PASSWORD,
            CKA_TRESOR_UNIQUE_LABEL,
        ];
        let vendor = CKA_VENDOR_DEFINED;
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a & vendor, vendor, "{a:#x} is not in the vendor range");
            for b in &all[i + 1..] {
                assert_ne!(a, b, "two vendor attributes share {a:#x}");
            }
        }
        assert_eq!(attr_kind(CKA_TRESOR_KEY_PASSWORD), Some(AttrKind::Bytes));
        assert_eq!(attr_kind(CKA_TRESOR_UNIQUE_LABEL), Some(AttrKind::Ulong));
        // Computed by the module, never stored or sent in a template.
        assert_eq!(attr_kind(CKA_TRESOR_ATTESTATION), None);
    }

    #[test]
    fn the_numbers_are_the_standards() {
        assert_eq!(CKA_ALLOWED_MECHANISMS, 0x4000_0600);
        assert_eq!(CKM_ECDSA_SHA256, 0x1044);
        assert_eq!(CKR_MECHANISM_INVALID, 0x70);
        assert_eq!(
            attr_kind(CKA_ALLOWED_MECHANISMS),
            Some(AttrKind::Mechanisms)
        );
        assert_eq!(attr_kind(0x7fff_0000), None);
    }
}
