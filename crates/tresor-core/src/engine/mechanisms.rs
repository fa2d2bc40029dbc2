//! The mechanism catalogue: every `CKM_*` the engine performs, with the key-size range and
//! the `CKF_*` operation flags that match what the crypto layer really does. Every mechanism
//! carries `CKF_HW`: it is performed by the device (the HSM node), never in the calling
//! process — which is what the flag tells an application (pkcs11-tool `--test`, for one, only
//! runs its signature tests on such mechanisms).
//!
//! Key sizes follow the unit PKCS#11 defines per mechanism: bits for RSA, EC, Edwards and
//! generic-secret generation; bytes for AES, ChaCha20 and HMAC keys; the parameter-set range
//! (`CKP_*`) for ML-DSA, ML-KEM and SLH-DSA; zero where no key is involved (digests).
//!
//! `CKF_MULTI_MESSAGE` (the mechanism works with `C_EncryptMessageBegin` / `C_SignMessageBegin`
//! …) goes with the message flags of every mechanism that processes a whole message (AEAD,
//! hash-and-sign, HMAC, EdDSA, ML-DSA, SLH-DSA); the mechanisms that sign a precomputed digest
//! or an encoded block (`CKM_ECDSA`, `CKM_RSA_PKCS`, `CKM_RSA_X_509`, `CKM_RSA_PKCS_PSS`) are
//! single-part in PKCS#11 and do not carry it.
//!
//! The PKCS#11 library answers `C_GetMechanismList` / `C_GetMechanismInfo` from this list
//! (fetched once per slot with `Request::GetMechanisms`), so a flag here is a promise: a test in
//! the PKCS#11 crate exercises every operation flagged.

use cryptoki_sys as ck;

use crate::crypto::{
    DIGEST_BY_HASH, ECDSA_BY_HASH, HMAC_BY_HASH, RSA_PKCS_BY_HASH, RSA_PSS_BY_HASH,
};

/// `CK_MECHANISM_INFO` of one mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismInfo {
    /// `CKM_*` value.
    pub mechanism: u64,
    /// Minimum key size (unit per mechanism, see the module docs).
    pub min_key_size: u64,
    /// Maximum key size.
    pub max_key_size: u64,
    /// `CKF_*` flags.
    pub flags: u64,
}

/// `CKF_*` flags and `CKP_*` values as `u64` (`CK_ULONG` is `c_ulong`).
macro_rules! flags {
    ($($name:ident),* $(,)?) => {
        $(const $name: u64 = ck::$name as u64;)*
    };
}

flags!(
    CKF_SIGN,
    CKF_VERIFY,
    CKF_ENCRYPT,
    CKF_DECRYPT,
    CKF_WRAP,
    CKF_UNWRAP,
    CKF_MESSAGE_ENCRYPT,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_SIGN,
    CKF_MESSAGE_VERIFY,
    CKF_MULTI_MESSAGE,
    CKF_EC_F_P,
    CKF_EC_OID,
    CKF_EC_UNCOMPRESS,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_DIGEST,
    CKF_DERIVE,
    CKF_ENCAPSULATE,
    CKF_DECAPSULATE,
    CKP_ML_DSA_44,
    CKP_ML_DSA_87,
    CKP_ML_KEM_512,
    CKP_ML_KEM_1024,
    CKP_SLH_DSA_SHA2_128S,
    CKP_SLH_DSA_SHAKE_256F,
);

const SIGN_VERIFY: u64 = CKF_SIGN | CKF_VERIFY;
const ENC_DEC: u64 = CKF_ENCRYPT | CKF_DECRYPT;
const WRAP_UNWRAP: u64 = CKF_WRAP | CKF_UNWRAP;
/// Message-based AEAD, single-part (`C_EncryptMessage`) and multi-part (`C_EncryptMessageBegin`).
const MESSAGE_ENC_DEC: u64 = CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MULTI_MESSAGE;
/// Message-based signing of a precomputed digest or encoded block (`CKM_ECDSA`, `CKM_RSA_PKCS`,
/// `CKM_RSA_X_509`, `CKM_RSA_PKCS_PSS`): single-part mechanisms in PKCS#11, so no
/// `CKF_MULTI_MESSAGE`.
const MESSAGE_SIGN_VERIFY: u64 = CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY;
/// Message-based signing of a message (hash-and-sign, HMAC, EdDSA, ML-DSA, SLH-DSA), also in
/// parts (`C_SignMessageBegin`).
const MESSAGE_SIGN_VERIFY_MULTI: u64 = MESSAGE_SIGN_VERIFY | CKF_MULTI_MESSAGE;
const EC_CAPS: u64 = CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS;
const GENERATE: u64 = CKF_GENERATE;
const GENERATE_KEY_PAIR: u64 = CKF_GENERATE_KEY_PAIR;

/// RSA modulus range (bits): generation refuses below 2048.
const RSA_BITS: (u64, u64) = (2048, 8192);
/// Weierstrass curves: P-256 / secp256k1 / brainpoolP256r1 … P-521 (bits).
const EC_BITS: (u64, u64) = (256, 521);
/// Edwards curves: Ed25519 … Ed448 (bits).
const ED_BITS: (u64, u64) = (255, 448);
/// AES key length in bytes.
const AES_BYTES: (u64, u64) = (16, 32);
/// HMAC / generic secret key length in bytes.
const HMAC_BYTES: (u64, u64) = (1, 512);

// `CK_MECHANISM_TYPE` is `u64` on LP64 targets only: the cast is for the others.
#[allow(clippy::unnecessary_cast)]
fn info(m: ck::CK_MECHANISM_TYPE, (min, max): (u64, u64), flags: u64) -> MechanismInfo {
    MechanismInfo {
        mechanism: m as u64,
        min_key_size: min,
        max_key_size: max,
        flags: flags | ck::CKF_HW,
    }
}

/// Every mechanism the engine supports, in ascending `CKM_*` order.
pub fn catalogue() -> Vec<MechanismInfo> {
    let mut v = vec![
        info(ck::CKM_RSA_PKCS_KEY_PAIR_GEN, RSA_BITS, GENERATE_KEY_PAIR),
        info(
            ck::CKM_RSA_PKCS,
            RSA_BITS,
            SIGN_VERIFY | ENC_DEC | MESSAGE_SIGN_VERIFY,
        ),
        info(
            ck::CKM_RSA_X_509,
            RSA_BITS,
            SIGN_VERIFY | ENC_DEC | MESSAGE_SIGN_VERIFY,
        ),
        info(ck::CKM_RSA_PKCS_OAEP, RSA_BITS, ENC_DEC | WRAP_UNWRAP),
        info(
            ck::CKM_RSA_PKCS_PSS,
            RSA_BITS,
            SIGN_VERIFY | MESSAGE_SIGN_VERIFY,
        ),
    ];
    for m in RSA_PKCS_BY_HASH.into_iter().chain(RSA_PSS_BY_HASH) {
        v.push(info(m, RSA_BITS, SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI));
    }
    for m in DIGEST_BY_HASH {
        v.push(info(m, (0, 0), CKF_DIGEST));
    }
    for m in HMAC_BY_HASH {
        v.push(info(m, HMAC_BYTES, SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI));
    }
    v.push(info(ck::CKM_GENERIC_SECRET_KEY_GEN, (8, 4096), GENERATE));
    v.push(info(
        ck::CKM_EC_KEY_PAIR_GEN,
        EC_BITS,
        GENERATE_KEY_PAIR | EC_CAPS,
    ));
    v.push(info(
        ck::CKM_ECDSA,
        EC_BITS,
        SIGN_VERIFY | MESSAGE_SIGN_VERIFY | EC_CAPS,
    ));
    for m in ECDSA_BY_HASH {
        v.push(info(
            m,
            EC_BITS,
            SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI | EC_CAPS,
        ));
    }
    v.push(info(ck::CKM_ECDH1_DERIVE, EC_BITS, CKF_DERIVE | EC_CAPS));
    v.push(info(
        ck::CKM_EC_EDWARDS_KEY_PAIR_GEN,
        ED_BITS,
        GENERATE_KEY_PAIR | EC_CAPS,
    ));
    v.push(info(
        ck::CKM_EDDSA,
        ED_BITS,
        SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI | EC_CAPS,
    ));
    v.push(info(ck::CKM_AES_KEY_GEN, AES_BYTES, GENERATE));
    v.push(info(ck::CKM_AES_ECB, AES_BYTES, ENC_DEC));
    v.push(info(ck::CKM_AES_CBC, AES_BYTES, ENC_DEC));
    v.push(info(ck::CKM_AES_CBC_PAD, AES_BYTES, ENC_DEC));
    v.push(info(ck::CKM_AES_CTR, AES_BYTES, ENC_DEC));
    // The AEADs also wrap (`C_WrapKey`, and `C_WrapKeyAuthenticated` with separate
    // associated data).
    v.push(info(
        ck::CKM_AES_GCM,
        AES_BYTES,
        ENC_DEC | MESSAGE_ENC_DEC | WRAP_UNWRAP,
    ));
    v.push(info(ck::CKM_AES_KEY_WRAP, AES_BYTES, WRAP_UNWRAP));
    v.push(info(ck::CKM_AES_KEY_WRAP_PAD, AES_BYTES, WRAP_UNWRAP));
    v.push(info(ck::CKM_AES_KEY_WRAP_KWP, AES_BYTES, WRAP_UNWRAP));
    v.push(info(ck::CKM_CHACHA20_KEY_GEN, (32, 32), GENERATE));
    v.push(info(
        ck::CKM_CHACHA20_POLY1305,
        (32, 32),
        ENC_DEC | MESSAGE_ENC_DEC | WRAP_UNWRAP,
    ));
    let ml_dsa = (CKP_ML_DSA_44, CKP_ML_DSA_87);
    let ml_kem = (CKP_ML_KEM_512, CKP_ML_KEM_1024);
    let slh_dsa = (CKP_SLH_DSA_SHA2_128S, CKP_SLH_DSA_SHAKE_256F);
    v.push(info(ck::CKM_ML_KEM_KEY_PAIR_GEN, ml_kem, GENERATE_KEY_PAIR));
    v.push(info(
        ck::CKM_ML_KEM,
        ml_kem,
        CKF_ENCAPSULATE | CKF_DECAPSULATE,
    ));
    v.push(info(ck::CKM_ML_DSA_KEY_PAIR_GEN, ml_dsa, GENERATE_KEY_PAIR));
    v.push(info(
        ck::CKM_ML_DSA,
        ml_dsa,
        SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI,
    ));
    v.push(info(
        ck::CKM_SLH_DSA_KEY_PAIR_GEN,
        slh_dsa,
        GENERATE_KEY_PAIR,
    ));
    v.push(info(
        ck::CKM_SLH_DSA,
        slh_dsa,
        SIGN_VERIFY | MESSAGE_SIGN_VERIFY_MULTI,
    ));
    v.sort_by_key(|m| m.mechanism);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_sorted_and_performed_by_the_device() {
        let c = catalogue();
        assert!(c.len() > 50);
        for w in c.windows(2) {
            assert!(w[0].mechanism < w[1].mechanism, "{w:?}");
        }
        for m in &c {
            assert_ne!(m.flags & ck::CKF_HW, 0, "{m:?}");
            assert!(m.min_key_size <= m.max_key_size, "{m:?}");
            assert_ne!(m.flags & !(ck::CKF_HW), 0, "{m:?}");
        }
    }

    #[test]
    // `CK_MECHANISM_TYPE` is `u64` on LP64 targets only: the cast is for the others.
    #[allow(clippy::unnecessary_cast)]
    fn multi_message_only_with_a_message_flag_and_never_on_single_part_mechanisms() {
        let message =
            CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY;
        let c = catalogue();
        for m in &c {
            if m.flags & CKF_MULTI_MESSAGE != 0 {
                assert_ne!(m.flags & message, 0, "{m:?}");
            }
            // Every message mechanism but the single-part ones works in parts.
            let single_part = [
                ck::CKM_RSA_PKCS,
                ck::CKM_RSA_X_509,
                ck::CKM_RSA_PKCS_PSS,
                ck::CKM_ECDSA,
            ]
            .iter()
            .any(|s| *s as u64 == m.mechanism);
            if m.flags & message != 0 {
                assert_eq!(m.flags & CKF_MULTI_MESSAGE != 0, !single_part, "{m:?}");
            }
        }
        let multi = c
            .iter()
            .filter(|m| m.flags & CKF_MULTI_MESSAGE != 0)
            .count();
        assert!(multi > 30, "{multi}");
    }
}
