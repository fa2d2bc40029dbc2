//! `CK_MECHANISM` and the message parameters of the 3.0 AEAD functions, read into the safe
//! [`RawMechanism`] / [`MsgParam`], and the tag / IV written back after encryption.

use std::os::raw::c_void;

use cryptoki_sys::{
    CK_AES_CTR_PARAMS, CK_ECDH1_DERIVE_PARAMS, CK_GCM_MESSAGE_PARAMS, CK_GCM_PARAMS, CK_MECHANISM,
    CK_RSA_PKCS_OAEP_PARAMS, CK_RSA_PKCS_PSS_PARAMS, CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS,
    CK_SALSA20_CHACHA20_POLY1305_PARAMS, CK_SIGN_ADDITIONAL_CONTEXT, CK_ULONG,
};

use super::ptr::{bytes, read_struct};
use crate::ck::*;
use crate::error::{Error, Result};
use crate::mechanism::{Param, RawMechanism};
use crate::session::{MsgParam, Sealed};

fn is_pss(ty: u64) -> bool {
    matches!(
        ty,
        CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS
            | CKM_SHA3_224_RSA_PKCS_PSS
            | CKM_SHA3_256_RSA_PKCS_PSS
            | CKM_SHA3_384_RSA_PKCS_PSS
            | CKM_SHA3_512_RSA_PKCS_PSS
    )
}

/// Reads a mechanism and its parameter (interpreted by the mechanism's type).
///
/// # Safety
/// `p` must be NULL or point to a `CK_MECHANISM` whose `pParameter` is valid for
/// `ulParameterLen` bytes, and whose nested pointers are valid for their lengths.
pub unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<RawMechanism> {
    if p.is_null() {
        return Err(Error::args("NULL mechanism"));
    }
    // SAFETY: non-NULL and valid per the contract.
    let m = unsafe { &*p };
    let ty = m.mechanism as u64;
    let (pp, len) = (m.pParameter as *const c_void, m.ulParameterLen);
    if pp.is_null() {
        if len != 0 {
            return Err(Error::args("NULL mechanism parameter with a length"));
        }
        return Ok(RawMechanism {
            ty,
            param: Param::None,
        });
    }
    let malformed = Param::Malformed(len as u64);
    // SAFETY (every block below): `pp` is valid for `len` bytes; `read_struct` checks the
    // size; nested pointers are valid for their lengths per the contract.
    let param = unsafe {
        if is_pss(ty) {
            read_struct::<CK_RSA_PKCS_PSS_PARAMS>(pp, len).map_or(malformed, |s| Param::Pss {
                hash: s.hashAlg as u64,
                mgf: s.mgf as u64,
                salt_len: s.sLen as u64,
            })
        } else {
            match ty {
                CKM_RSA_PKCS_OAEP => match read_struct::<CK_RSA_PKCS_OAEP_PARAMS>(pp, len) {
                    Some(s) => Param::Oaep {
                        hash: s.hashAlg as u64,
                        mgf: s.mgf as u64,
                        source: s.source as u64,
                        label: bytes(s.pSourceData as *const u8, s.ulSourceDataLen)?.to_vec(),
                    },
                    None => malformed,
                },
                CKM_AES_GCM => match read_struct::<CK_GCM_PARAMS>(pp, len) {
                    Some(s) => Param::Gcm {
                        iv: bytes(s.pIv, s.ulIvLen)?.to_vec(),
                        aad: bytes(s.pAAD, s.ulAADLen)?.to_vec(),
                        tag_bits: s.ulTagBits as u64,
                    },
                    None => malformed,
                },
                CKM_AES_CTR => match read_struct::<CK_AES_CTR_PARAMS>(pp, len) {
                    Some(s) => Param::Ctr {
                        counter_bits: s.ulCounterBits as u64,
                        cb: s.cb,
                    },
                    None => malformed,
                },
                CKM_CHACHA20_POLY1305 => {
                    match read_struct::<CK_SALSA20_CHACHA20_POLY1305_PARAMS>(pp, len) {
                        Some(s) => Param::ChaChaPoly {
                            nonce: bytes(s.pNonce, s.ulNonceLen)?.to_vec(),
                            aad: bytes(s.pAAD, s.ulAADLen)?.to_vec(),
                        },
                        None => malformed,
                    }
                }
                CKM_ECDH1_DERIVE => match read_struct::<CK_ECDH1_DERIVE_PARAMS>(pp, len) {
                    Some(s) => Param::Ecdh {
                        kdf: s.kdf as u64,
                        shared: bytes(s.pSharedData, s.ulSharedDataLen)?.to_vec(),
                        public: bytes(s.pPublicData, s.ulPublicDataLen)?.to_vec(),
                    },
                    None => malformed,
                },
                CKM_ML_DSA | CKM_SLH_DSA => {
                    match read_struct::<CK_SIGN_ADDITIONAL_CONTEXT>(pp, len) {
                        Some(s) => Param::SignContext {
                            hedge: s.hedgeVariant as u64,
                            context: bytes(s.pContext, s.ulContextLen)?.to_vec(),
                        },
                        None => malformed,
                    }
                }
                _ => Param::Bytes(bytes(pp as *const u8, len)?.to_vec()),
            }
        }
    };
    Ok(RawMechanism { ty, param })
}

/// Reads the mechanism of `C_MessageEncryptInit` / `C_MessageDecryptInit`: for the AEAD
/// mechanisms its parameter, if any, is a per-message parameter (`CK_GCM_MESSAGE_PARAMS`, as
/// in the standard's example) that must be well formed; the parameters that count come with
/// each message.
///
/// # Safety
/// As [`mechanism`].
pub unsafe fn message_mechanism(p: *const CK_MECHANISM) -> Result<RawMechanism> {
    if p.is_null() {
        return Err(Error::args("NULL mechanism"));
    }
    // SAFETY: non-NULL and valid per the contract.
    let m = unsafe { &*p };
    let ty = m.mechanism as u64;
    let (pp, len) = (m.pParameter as *const c_void, m.ulParameterLen);
    if pp.is_null() {
        if len != 0 {
            return Err(Error::args("NULL mechanism parameter with a length"));
        }
    } else if matches!(ty, CKM_AES_GCM | CKM_CHACHA20_POLY1305) {
        // SAFETY: `pp` is valid for `len` bytes per the contract.
        unsafe { message(ty, pp, len)? };
    }
    Ok(RawMechanism {
        ty,
        param: Param::None,
    })
}

/// Reads the per-message parameter of an AEAD message operation.
///
/// # Safety
/// `p` must be valid for `len` bytes, its nested pointers for their lengths.
pub unsafe fn message(ty: u64, p: *const c_void, len: CK_ULONG) -> Result<MsgParam> {
    let bad = || {
        Error::new(
            CKR_MECHANISM_PARAM_INVALID,
            "message parameter does not fit",
        )
    };
    // SAFETY: forwarded contract; `read_struct` checks NULL and size.
    unsafe {
        match ty {
            CKM_AES_GCM => {
                let s = read_struct::<CK_GCM_MESSAGE_PARAMS>(p, len).ok_or_else(bad)?;
                let tag_len = (s.ulTagBits / 8) as CK_ULONG;
                let tag = if s.pTag.is_null() {
                    Vec::new()
                } else {
                    bytes(s.pTag, tag_len)?.to_vec()
                };
                Ok(MsgParam::Gcm {
                    iv: bytes(s.pIv, s.ulIvLen)?.to_vec(),
                    iv_fixed_bits: s.ulIvFixedBits as u64,
                    generator: s.ivGenerator as u64,
                    tag,
                    tag_bits: s.ulTagBits as u64,
                })
            }
            CKM_CHACHA20_POLY1305 => {
                let s = read_struct::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>(p, len)
                    .ok_or_else(bad)?;
                let tag = if s.pTag.is_null() {
                    Vec::new()
                } else {
                    bytes(s.pTag, 16)?.to_vec()
                };
                Ok(MsgParam::ChaChaPoly {
                    nonce: bytes(s.pNonce, s.ulNonceLen)?.to_vec(),
                    tag,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Writes the tag (and a generated IV) of an encrypted message back into its parameter.
///
/// # Safety
/// As [`message`]; `pTag` must be writable for the tag length, `pIv` for `ulIvLen` bytes.
pub unsafe fn write_back(ty: u64, p: *const c_void, len: CK_ULONG, sealed: &Sealed) -> Result<()> {
    if sealed.tag.is_empty() {
        return Ok(());
    }
    let bad = || {
        Error::new(
            CKR_MECHANISM_PARAM_INVALID,
            "message parameter does not fit",
        )
    };
    // SAFETY: forwarded contract; destinations are checked for NULL and their lengths
    // against what was produced.
    unsafe {
        let (tag_ptr, iv_ptr, iv_len) = match ty {
            CKM_AES_GCM => {
                let s = read_struct::<CK_GCM_MESSAGE_PARAMS>(p, len).ok_or_else(bad)?;
                (s.pTag, s.pIv, s.ulIvLen as usize)
            }
            _ => {
                let s = read_struct::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>(p, len)
                    .ok_or_else(bad)?;
                (s.pTag, s.pNonce, s.ulNonceLen as usize)
            }
        };
        if tag_ptr.is_null() {
            return Err(Error::args("NULL tag buffer"));
        }
        std::ptr::copy_nonoverlapping(sealed.tag.as_ptr(), tag_ptr, sealed.tag.len());
        if !iv_ptr.is_null() && iv_len == sealed.iv.len() {
            std::ptr::copy_nonoverlapping(sealed.iv.as_ptr(), iv_ptr, iv_len);
        }
    }
    Ok(())
}

/// Writes the IV (or nonce) a message uses back into its parameter (`C_EncryptMessageBegin`),
/// when the parameter's IV buffer has its length.
///
/// # Safety
/// As [`message`]; `pIv` / `pNonce` must be writable for `ulIvLen` / `ulNonceLen` bytes.
pub unsafe fn write_iv(ty: u64, p: *const c_void, len: CK_ULONG, iv: &[u8]) -> Result<()> {
    // SAFETY: forwarded contract; the destination is checked for NULL and its length.
    unsafe {
        let (iv_ptr, iv_len) = match ty {
            CKM_AES_GCM => match read_struct::<CK_GCM_MESSAGE_PARAMS>(p, len) {
                Some(s) => (s.pIv, s.ulIvLen as usize),
                None => return Err(Error::new(CKR_MECHANISM_PARAM_INVALID, "no parameter")),
            },
            _ => match read_struct::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>(p, len) {
                Some(s) => (s.pNonce, s.ulNonceLen as usize),
                None => return Err(Error::new(CKR_MECHANISM_PARAM_INVALID, "no parameter")),
            },
        };
        if !iv_ptr.is_null() && iv_len == iv.len() {
            std::ptr::copy_nonoverlapping(iv.as_ptr(), iv_ptr, iv_len);
        }
    }
    Ok(())
}
