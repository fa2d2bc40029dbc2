//! The JSON bodies of the TSB v1 surface, with the exact Securosys field names (compat §1–§3):
//! wrapper objects for crypto requests, flat bodies for `/v1/key*` and certificates, base64
//! for every binary value, passwords as arrays of one-character strings.
//!
//! Enumerations list every Securosys value, including the ones the engine does not offer, so
//! that an unknown value is a 600 and a known but unsupported one a precise 611.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[allow(missing_docs, non_camel_case_types)]
        pub enum $name { $(#[serde(rename = $s)] $var),* }
        impl $name {
            /// The Securosys spelling.
            pub fn as_str(&self) -> &'static str { match self { $(Self::$var => $s),* } }
        }
    };
}

str_enum!(
    /// Key algorithm (`algorithm`).
    KeyAlgorithm {
        Ec = "EC", Ed = "ED", Rsa = "RSA", Dsa = "DSA", Iss = "ISS", Bls = "BLS", Aes = "AES",
        ChaCha20 = "ChaCha20", Camellia = "Camellia", Tdea = "TDEA", HmacSha256 = "HMACSHA256",
        MlDsa44 = "ML-DSA-44", MlDsa65 = "ML-DSA-65", MlDsa87 = "ML-DSA-87",
        MlKem512 = "ML-KEM-512", MlKem768 = "ML-KEM-768", MlKem1024 = "ML-KEM-1024",
        SlhDsaSha2_128s = "SLH-DSA-SHA2-128s", SlhDsaSha2_128f = "SLH-DSA-SHA2-128f",
        SlhDsaSha2_192s = "SLH-DSA-SHA2-192s", SlhDsaSha2_192f = "SLH-DSA-SHA2-192f",
        SlhDsaSha2_256s = "SLH-DSA-SHA2-256s", SlhDsaSha2_256f = "SLH-DSA-SHA2-256f",
        SlhDsaShake128s = "SLH-DSA-SHAKE-128s", SlhDsaShake128f = "SLH-DSA-SHAKE-128f",
        SlhDsaShake192s = "SLH-DSA-SHAKE-192s", SlhDsaShake192f = "SLH-DSA-SHAKE-192f",
        SlhDsaShake256s = "SLH-DSA-SHAKE-256s", SlhDsaShake256f = "SLH-DSA-SHAKE-256f",
        Lms = "LMS", XmssSha256 = "XMSS-SHA256_10_256", XmssShake256 = "XMSS-SHAKE256_10_256",
    }
);

str_enum!(
    /// Signature algorithm (`signatureAlgorithm`).
    SignatureAlgorithm {
        Sha1Rsa = "SHA1_WITH_RSA", Sha224Rsa = "SHA224_WITH_RSA", Sha256Rsa = "SHA256_WITH_RSA",
        Sha384Rsa = "SHA384_WITH_RSA", Sha512Rsa = "SHA512_WITH_RSA", NoneRsa = "NONE_WITH_RSA",
        Sha1RsaPss = "SHA1_WITH_RSA_PSS", Sha224RsaPss = "SHA224_WITH_RSA_PSS",
        Sha256RsaPss = "SHA256_WITH_RSA_PSS", Sha384RsaPss = "SHA384_WITH_RSA_PSS",
        Sha512RsaPss = "SHA512_WITH_RSA_PSS", NoneRsaPss = "NONE_WITH_RSA_PSS",
        NoneSha1Rsa = "NONESHA1_WITH_RSA", NoneSha224Rsa = "NONESHA224_WITH_RSA",
        NoneSha256Rsa = "NONESHA256_WITH_RSA", NoneSha384Rsa = "NONESHA384_WITH_RSA",
        NoneSha512Rsa = "NONESHA512_WITH_RSA", NoneSha224RsaPss = "NONESHA224_WITH_RSA_PSS",
        NoneSha256RsaPss = "NONESHA256_WITH_RSA_PSS", NoneSha384RsaPss = "NONESHA384_WITH_RSA_PSS",
        NoneSha512RsaPss = "NONESHA512_WITH_RSA_PSS",
        NoneEcdsa = "NONE_WITH_ECDSA", Sha1Ecdsa = "SHA1_WITH_ECDSA", Sha224Ecdsa = "SHA224_WITH_ECDSA",
        Sha256Ecdsa = "SHA256_WITH_ECDSA", DoubleSha256Ecdsa = "DOUBLE_SHA256_WITH_ECDSA",
        Sha384Ecdsa = "SHA384_WITH_ECDSA", Sha512Ecdsa = "SHA512_WITH_ECDSA",
        Sha3_224Ecdsa = "SHA3224_WITH_ECDSA", Sha3_256Ecdsa = "SHA3256_WITH_ECDSA",
        Sha3_384Ecdsa = "SHA3384_WITH_ECDSA", Sha3_512Ecdsa = "SHA3512_WITH_ECDSA",
        Sha256EcdsaDeterministic = "SHA256_WITH_ECDSA_DETERMINISTIC",
        Keccak224Ecdsa = "KECCAK224_WITH_ECDSA", Keccak256Ecdsa = "KECCAK256_WITH_ECDSA",
        Keccak384Ecdsa = "KECCAK384_WITH_ECDSA", Keccak512Ecdsa = "KECCAK512_WITH_ECDSA",
        EdDsa = "EDDSA",
        NoneDsa = "NONE_WITH_DSA", Sha1Dsa = "SHA1_WITH_DSA", Sha224Dsa = "SHA224_WITH_DSA",
        Sha256Dsa = "SHA256_WITH_DSA", Sha384Dsa = "SHA384_WITH_DSA", Sha512Dsa = "SHA512_WITH_DSA",
        Bls = "BLS", Dilithium = "DILITHIUM", MlDsa = "ML_DSA", SphincsPlus = "SPHINCS_PLUS",
        SlhDsa = "SLH_DSA", Lms = "LMS", Xmss = "XMSS",
    }
);

str_enum!(
    /// Signature encoding (`signatureType`).
    SignatureType { Der = "DER", Eth = "ETH", Raw = "RAW" }
);

str_enum!(
    /// Payload type (`payloadType`).
    PayloadType {
        Unspecified = "UNSPECIFIED", Iso20022 = "ISO_20022", Pdf = "PDF", Btc = "BTC", Eth = "ETH",
    }
);

str_enum!(
    /// Cipher (`cipherAlgorithm`).
    CipherAlgorithm {
        Rsa = "RSA", RsaOaep = "RSA_PADDING_OAEP", RsaOaepSha1 = "RSA_PADDING_OAEP_WITH_SHA1",
        RsaOaepSha224 = "RSA_PADDING_OAEP_WITH_SHA224", RsaOaepSha256 = "RSA_PADDING_OAEP_WITH_SHA256",
        RsaOaepSha384 = "RSA_PADDING_OAEP_WITH_SHA384", RsaOaepSha512 = "RSA_PADDING_OAEP_WITH_SHA512",
        RsaPkcs = "RSA_PADDING_PKCS", RsaNoPadding = "RSA_NO_PADDING",
        AesGcm = "AES_GCM", AesCtr = "AES_CTR", AesEcb = "AES_ECB",
        AesCbcNoPadding = "AES_CBC_NO_PADDING", Aes = "AES",
        ChaCha20 = "CHACHA20", ChaCha20Aead = "CHACHA20_AEAD",
        Camellia = "CAMELLIA", CamelliaCbcNoPadding = "CAMELLIA_CBC_NO_PADDING",
        CamelliaEcb = "CAMELLIA_ECB", TdeaCbc = "TDEA_CBC", TdeaEcb = "TDEA_ECB",
        TdeaCbcNoPadding = "TDEA_CBC_NO_PADDING",
    }
);

str_enum!(
    /// Wrap method (`wrapMethod`).
    WrapMethod {
        AesWrap = "AES_WRAP", AesWrapDsa = "AES_WRAP_DSA", AesWrapEc = "AES_WRAP_EC",
        AesWrapEd = "AES_WRAP_ED", AesWrapRsa = "AES_WRAP_RSA", AesWrapBls = "AES_WRAP_BLS",
        AesWrapPad = "AES_WRAP_PAD", AesWrapPadDsa = "AES_WRAP_PAD_DSA",
        AesWrapPadEc = "AES_WRAP_PAD_EC", AesWrapPadEd = "AES_WRAP_PAD_ED",
        AesWrapPadRsa = "AES_WRAP_PAD_RSA", AesWrapPadBls = "AES_WRAP_PAD_BLS",
        RsaWrapPad = "RSA_WRAP_PAD", RsaWrapOaep = "RSA_WRAP_OAEP",
        MlKem512 = "ML-KEM-512", MlKem768 = "ML-KEM-768", MlKem1024 = "ML-KEM-1024",
    }
);

str_enum!(
    /// X.509 key usage.
    KeyUsage {
        DigitalSignature = "DIGITAL_SIGNATURE", ContentCommitment = "CONTENT_COMMITMENT",
        KeyEncipherment = "KEY_ENCIPHERMENT", DataEncipherment = "DATA_ENCIPHERMENT",
        KeyAgreement = "KEY_AGREEMENT", KeyCertSign = "KEY_CERT_SIGN", CrlSign = "CRL_SIGN",
        EncipherOnly = "ENCIPHER_ONLY", DecipherOnly = "DECIPHER_ONLY",
    }
);

str_enum!(
    /// X.509 extended key usage.
    ExtendedKeyUsage {
        Any = "ANY_EXTENDED_KEY_USAGE", ServerAuth = "SERVER_AUTH", ClientAuth = "CLIENT_AUTH",
        CodeSigning = "CODE_SIGNING", EmailProtection = "EMAIL_PROTECTION",
        TimeStamping = "TIME_STAMPING", OcspSigning = "OCSP_SIGNING",
    }
);

/// A password: an array of one-character strings (`["R","E","P"]`), or null / absent (none).
pub type Password = Option<PasswordChars>;

/// The characters of a password array, joined, in a zeroizing secret; never printed. An empty
/// array is no password. Any element that is not a one-character string fails the body (600).
#[derive(Clone, Default)]
pub struct PasswordChars(Option<secrecy::SecretString>);

impl PasswordChars {
    /// The password as UTF-8 bytes (`None` for an empty array).
    pub fn bytes(&self) -> Option<&[u8]> {
        use secrecy::ExposeSecret;
        self.0.as_ref().map(|s| s.expose_secret().as_bytes())
    }
}

impl std::fmt::Debug for PasswordChars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PasswordChars(***)"
        } else {
            "PasswordChars(empty)"
        })
    }
}

impl<'de> Deserialize<'de> for PasswordChars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Chars;
        impl<'de> serde::de::Visitor<'de> for Chars {
            type Value = PasswordChars;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of one-character strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PasswordChars, A::Error> {
                use zeroize::Zeroize;
                let mut all = zeroize::Zeroizing::new(String::new());
                while let Some(mut c) = seq.next_element::<String>()? {
                    let one = c.chars().count() == 1;
                    if one {
                        all.push_str(&c);
                    }
                    c.zeroize();
                    if !one {
                        return Err(serde::de::Error::custom(
                            "a password is an array of one-character strings",
                        ));
                    }
                }
                Ok(PasswordChars(if all.is_empty() {
                    None
                } else {
                    Some(secrecy::SecretString::from(all.as_str()))
                }))
            }
        }
        d.deserialize_seq(Chars)
    }
}

/// Key attributes of a create, import or unwrap request (compat §3).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct KeyAttributes {
    pub encrypt: Option<bool>,
    pub decrypt: Option<bool>,
    pub verify: Option<bool>,
    pub sign: Option<bool>,
    pub wrap: Option<bool>,
    pub unwrap: Option<bool>,
    pub derive: Option<bool>,
    pub bip32: Option<bool>,
    pub slip10: Option<bool>,
    pub extractable: Option<bool>,
    pub modifiable: Option<bool>,
    pub destroyable: Option<bool>,
    pub sensitive: Option<bool>,
    pub copyable: Option<bool>,
}

/// `POST /v1/key`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "label": "TSB_KEY_TEST", "id": null, "password": null, "algorithm": "RSA", "curveOid": null,
    "keySize": 2048,
    "attributes": {"encrypt": true, "decrypt": true, "verify": true, "sign": true, "wrap": true,
        "unwrap": true, "derive": false, "bip32": false, "extractable": false,
        "modifiable": true, "destroyable": true, "sensitive": true, "copyable": false},
    "policy": null}))]
pub struct CreateKeyRequest {
    /// Key name.
    pub label: String,
    /// `CKA_ID` (text, or hex).
    pub id: Option<String>,
    /// Password of the new key (array of one-character strings), or null.
    #[schema(value_type = Option<Vec<String>>)]
    pub password: Password,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Key size in bits (RSA, AES, HMAC).
    pub key_size: Option<u32>,
    /// Curve OID (EC, ED).
    pub curve_oid: Option<String>,
    /// Algorithm OID (ignored).
    pub algorithm_oid: Option<String>,
    /// Address format (SKA keys only; not supported).
    #[schema(value_type = Option<Object>)]
    pub address_format: Option<Value>,
    /// Key attributes.
    pub attributes: Option<KeyAttributes>,
    /// Smart Key Attribute policy (compat §4), or null.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
}

/// `{label, password}` bodies (`/v1/key/attributes`, `/v1/key/deleteKey`, `/v1/key/export/plain`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"label": "TSB_KEY_TEST", "password": null}))]
pub struct KeyNameRequest {
    /// Key name.
    pub label: String,
    /// The key's password, if it has one.
    #[schema(value_type = Option<Vec<String>>)]
    pub password: Password,
}

/// `POST /v1/key/changePassword`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// Key name.
    pub label: String,
    /// Current password.
    #[schema(value_type = Option<Vec<String>>)]
    pub password: Password,
    /// New password (null or empty: the key has no password afterwards).
    #[schema(value_type = Option<Vec<String>>)]
    pub new_password: Password,
}

/// `POST /v1/key/import/plain`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportKeyRequest {
    /// Key name.
    pub label: String,
    /// Password of the imported private or secret key (array of one-character strings).
    #[schema(value_type = Option<Vec<String>>)]
    pub password: Password,
    /// Algorithm.
    pub algorithm: Option<KeyAlgorithm>,
    /// PKCS#8 DER, base64.
    pub private_key: Option<String>,
    /// SubjectPublicKeyInfo DER, base64.
    pub public_key: Option<String>,
    /// Raw secret key, base64.
    pub secret_key: Option<String>,
    /// X.509 certificate DER, base64.
    pub certificate: Option<String>,
    /// Key attributes.
    pub attributes: Option<KeyAttributes>,
    /// Policy (null).
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
}

/// The answer of `POST /v1/key/export/plain`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportKeyResponse {
    /// Algorithm.
    pub algorithm: String,
    /// PKCS#8 DER, base64 (null: none or not exportable).
    pub private_key: Option<String>,
    /// SubjectPublicKeyInfo DER, base64.
    pub public_key: Option<String>,
    /// Raw secret key, base64.
    pub secret_key: Option<String>,
    /// Certificate DER, base64.
    pub certificate: Option<String>,
}

/// The key envelope of `POST /v1/key` and `/v1/key/attributes`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyEnvelope {
    /// The attestation document (UTF-8 XML).
    pub xml: String,
    /// The key's attributes.
    #[schema(value_type = Object)]
    pub json: Value,
    /// Signature over the exact XML bytes by the partition's attestation key, base64.
    pub xml_signature: String,
    /// Name of the attestation key.
    pub attestation_key_name: String,
}

/// `signRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignRequest {
    /// Data (or digest for `NONE*`), base64.
    pub payload: String,
    /// Payload type.
    pub payload_type: Option<PayloadType>,
    /// Key name.
    pub sign_key_name: String,
    /// External key object (not supported).
    #[schema(value_type = Option<Object>)]
    pub sign_key_object: Option<Value>,
    /// The key's password, if it has one.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Signature encoding (default DER).
    pub signature_type: Option<SignatureType>,
    /// Base64 JSON shown to approvers.
    pub meta_data: Option<String>,
    /// Signature of the metadata.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"signRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"signRequest": {"payload": "UGF5bG9hZA==", "payloadType": "UNSPECIFIED",
    "signKeyName": "TSB_KEY_TEST", "keyPassword": null, "signatureAlgorithm": "SHA224_WITH_RSA_PSS",
    "signatureType": "DER", "metaData": null, "metaDataSignature": null}}))]
pub struct SignBody {
    /// The request.
    pub sign_request: SignRequest,
    /// Request signature (async workflow; ignored here).
    #[schema(value_type = Option<Object>)]
    pub request_signature: Option<Value>,
}

/// `{"signature": b64}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignResponse {
    /// The signature, base64.
    pub signature: String,
}

/// `verifySignatureRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// Signed data, base64.
    pub payload: String,
    /// Key name.
    pub sign_key_name: String,
    /// External key object (not supported).
    #[schema(value_type = Option<Object>)]
    pub sign_key_object: Option<Value>,
    /// Key password (sic).
    #[schema(value_type = Option<Vec<String>>)]
    pub master_key_password: Password,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The signature, base64.
    pub signature: String,
    /// Signature encoding (default DER).
    pub signature_type: Option<SignatureType>,
}

/// `{"verifySignatureRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBody {
    /// The request.
    pub verify_signature_request: VerifyRequest,
}

/// `{"signatureValid": bool}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the signature is valid.
    pub signature_valid: bool,
}

/// `hmacRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HmacRequest {
    /// Key name.
    pub key_name: String,
    /// Data, base64.
    pub payload: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
}

/// `{"hmacRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HmacBody {
    /// The request.
    pub hmac_request: HmacRequest,
}

/// `{"keyedHash": b64}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HmacResponse {
    /// The MAC, base64.
    pub keyed_hash: String,
}

/// `verifyHmacRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyHmacRequest {
    /// Key name.
    pub key_name: String,
    /// Data, base64.
    pub payload: String,
    /// The MAC to check, base64.
    pub signature: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
}

/// `{"verifyHmacRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyHmacBody {
    /// The request.
    pub verify_hmac_request: VerifyHmacRequest,
}

/// `encryptRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    /// Plaintext, base64.
    pub payload: String,
    /// Key name.
    pub encrypt_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Cipher.
    pub cipher_algorithm: CipherAlgorithm,
    /// GCM tag length in bits (0, 64, 96, 104, 112, 120, 128; default 128).
    pub tag_length: Option<i64>,
    /// Additional authenticated data, base64.
    pub additional_authentication_data: Option<String>,
}

/// `{"encryptRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"encryptRequest": {"payload": "UGF5bG9hZA==", "encryptKeyName": "AES_KEY",
    "cipherAlgorithm": "AES_GCM", "keyPassword": null, "tagLength": 128,
    "additionalAuthenticationData": null}}))]
pub struct EncryptBody {
    /// The request.
    pub encrypt_request: EncryptRequest,
}

/// The answer of `/v1/encrypt`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Ciphertext (GCM: ciphertext ‖ tag), base64.
    pub encrypted_payload: String,
    /// GCM: the ciphertext without the tag.
    pub encrypted_payload_without_message_authentication_code: Option<String>,
    /// The IV the service chose.
    pub initialization_vector: Option<String>,
    /// GCM: the tag.
    pub message_authentication_code: Option<String>,
}

/// `decryptRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    /// Ciphertext (GCM: ciphertext ‖ tag), base64.
    pub encrypted_payload: String,
    /// Key name.
    pub decrypt_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Cipher.
    pub cipher_algorithm: CipherAlgorithm,
    /// The IV returned by encrypt.
    pub initialization_vector: Option<String>,
    /// GCM tag length in bits.
    pub tag_length: Option<i64>,
    /// Additional authenticated data, base64.
    pub additional_authentication_data: Option<String>,
    /// Metadata (async workflow).
    pub meta_data: Option<String>,
    /// Metadata signature.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"decryptRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecryptBody {
    /// The request.
    pub decrypt_request: DecryptRequest,
}

/// `{"payload": b64}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecryptResponse {
    /// Plaintext, base64.
    pub payload: String,
}

/// `wrapKeyRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrapRequest {
    /// Name of the key to wrap.
    pub key_to_be_wrapped: String,
    /// Its password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_to_be_wrapped_password: Password,
    /// Wrapping key name.
    pub wrap_key_name: String,
    /// Its password.
    #[schema(value_type = Option<Vec<String>>)]
    pub wrap_key_password: Password,
    /// Wrap method.
    pub wrap_method: WrapMethod,
}

/// `{"wrapKeyRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrapBody {
    /// The request.
    pub wrap_key_request: WrapRequest,
}

/// `{"wrappedKey": b64}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrapResponse {
    /// The wrapped key, base64.
    pub wrapped_key: String,
}

/// `unwrapKeyRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnwrapRequest {
    /// The wrapped key, base64.
    pub wrapped_key: String,
    /// Name of the new key.
    pub label: String,
    /// Its attributes.
    pub attributes: Option<KeyAttributes>,
    /// Unwrapping key name.
    pub unwrap_key_name: String,
    /// Its password.
    #[schema(value_type = Option<Vec<String>>)]
    pub unwrap_key_password: Password,
    /// Wrap method.
    pub wrap_method: WrapMethod,
    /// Policy of the new key.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
    /// Metadata (async workflow).
    pub meta_data: Option<String>,
    /// Metadata signature.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"unwrapKeyRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnwrapBody {
    /// The request.
    pub unwrap_key_request: UnwrapRequest,
}

/// `blockRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockRequest {
    /// Key name.
    pub block_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Metadata.
    pub meta_data: Option<String>,
    /// Metadata signature.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"blockRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockBody {
    /// The request.
    pub block_request: BlockRequest,
}

/// `unblockRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnblockRequest {
    /// Key name.
    pub unblock_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Metadata.
    pub meta_data: Option<String>,
    /// Metadata signature.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"unblockRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnblockBody {
    /// The request.
    pub unblock_request: UnblockRequest,
}

/// `modifyRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifyRequest {
    /// Key name.
    pub modify_key_name: String,
    /// The key's password, if it has one.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// The new Smart Key Attribute policy (compat §4). `keyStatus`, if given, must state the
    /// key's current blocked state (block / unblock change it).
    #[schema(value_type = Object)]
    pub policy: Value,
    /// Metadata.
    pub meta_data: Option<String>,
    /// Metadata signature.
    pub meta_data_signature: Option<String>,
    /// Pre-signed approvals (not supported yet).
    pub signed_approvals: Option<Vec<String>>,
}

/// `{"modifyRequest": …}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"modifyRequest": {"modifyKeyName": "SKA_KEY", "keyPassword": null,
    "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
        "keyStatus": {"blocked": false}},
    "metaData": null, "metaDataSignature": null}, "requestSignature": null}))]
pub struct ModifyBody {
    /// The request.
    pub modify_request: ModifyRequest,
    /// Request signature (async workflow; ignored here).
    #[schema(value_type = Option<Object>)]
    pub request_signature: Option<Value>,
}

/// `{"modifyKeyRequestId": uuid}` (HTTP 201).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifyRequestId {
    /// Request id.
    pub modify_key_request_id: String,
}

/// `{"random": b64}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RandomResponse {
    /// Random bytes, base64.
    pub random: String,
}

/// `{"Version": …}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionResponse {
    /// The API version.
    #[serde(rename = "Version")]
    pub version: String,
}

/// `{"clientFlags": […]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseResponse {
    /// Licence flags.
    pub client_flags: Vec<String>,
}

/// Key store statistics.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsResponse {
    /// Keys (private and secret keys, and public keys without a private half).
    pub key_count: u64,
    /// Private keys.
    pub private_key_count: u64,
    /// Public keys.
    pub public_key_count: u64,
    /// Secret keys.
    pub secret_key_count: u64,
    /// Certificates.
    pub certificate_count: u64,
    /// All objects.
    pub object_count: u64,
}

/// Health and readiness.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `UP` or `DOWN`.
    pub status: String,
}

/// `GET /v1/request/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatusResponse {
    /// Request id.
    pub id: String,
    /// `PENDING`, `APPROVED`, `EXECUTED`, `FAILED`, `EXPIRED`, `REJECTED` or `CANCELLED`.
    pub status: String,
    /// When the HSM ran it (ISO-8601).
    pub execution_time: Option<String>,
    /// Approvers who approved (base64 public keys).
    pub approved_by: Vec<String>,
    /// Approvers still missing.
    pub not_yet_approved_by: Vec<String>,
    /// Approvers who rejected.
    pub rejected_by: Vec<String>,
    /// Result (signature, …) or empty.
    pub result: Option<String>,
}

/// Certificate subject attributes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct StandardCertificateAttributes {
    pub common_name: Option<String>,
    pub country: Option<String>,
    pub state_or_province_name: Option<String>,
    pub locality: Option<String>,
    pub organization_name: Option<String>,
    pub organization_unit_name: Option<String>,
    pub organization_identifier: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub surname: Option<String>,
    pub given_name: Option<String>,
    pub initials: Option<String>,
    pub pseudonym: Option<String>,
    pub generation_qualifier: Option<String>,
}

/// `POST /v1/certificate/synchronous/request`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsrRequest {
    /// Key name.
    pub sign_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Validity of the self-signed placeholder certificate, days.
    pub validity: Option<u32>,
    /// Subject.
    pub standard_certificate_attributes: StandardCertificateAttributes,
    /// Key usages.
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
}

/// `{label, certificateSigningRequest}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsrResponse {
    /// Key name.
    pub label: String,
    /// PEM CSR.
    pub certificate_signing_request: String,
}

/// `POST /v1/certificate/synchronous/selfsign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfSignRequest {
    /// Key name.
    pub sign_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Validity, days.
    pub validity: Option<u32>,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Common name.
    pub common_name: String,
    /// CA:TRUE.
    pub certificate_authority: Option<bool>,
    /// Key usages.
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
}

/// `POST /v1/certificate/synchronous/sign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignCertificateRequest {
    /// Issuer key name.
    pub sign_key_name: String,
    /// Key password.
    #[schema(value_type = Option<Vec<String>>)]
    pub key_password: Password,
    /// Validity, days.
    pub validity: Option<u32>,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The CSR (PEM).
    pub certificate_signing_request: String,
    /// CA:TRUE.
    pub certificate_authority: Option<bool>,
    /// Key usages.
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages.
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
}

/// `{label, certificate}` (PEM in answers of issue operations, base64 DER on import/get).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateBody {
    /// Key name.
    pub label: String,
    /// The certificate.
    pub certificate: String,
}

/// `{"signRequestId": uuid}` (HTTP 201).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignRequestId {
    /// Request id (poll `/v1/request/{id}`).
    pub sign_request_id: String,
}

/// `{"unwrapRequestId": uuid}` (HTTP 201).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnwrapRequestId {
    /// Request id.
    pub unwrap_request_id: String,
}

/// `{"blockKeyRequestId": uuid}` (HTTP 201).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockRequestId {
    /// Request id.
    pub block_key_request_id: String,
}

/// `{"unblockKeyRequestId": uuid}` (HTTP 201).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnblockRequestId {
    /// Request id.
    pub unblock_key_request_id: String,
}
