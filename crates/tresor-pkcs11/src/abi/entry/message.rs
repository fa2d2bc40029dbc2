//! The 3.0 message-based functions.

use super::*;

// ---- message-based functions (3.0 §5.8.x) -------------------------------------------------

macro_rules! message_init_fn {
    ($(#[$doc:meta])* $name:ident, $usage:expr) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pMechanism: *mut CK_MECHANISM,
            hKey: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: the mechanism of the 3.0 function.
                let mech = unsafe {
                    match $usage {
                        Usage::Encrypt | Usage::Decrypt => params::message_mechanism(pMechanism)?,
                        _ => params::mechanism(pMechanism)?,
                    }
                };
                s.message_init(&mech, u(hKey), $usage)
            })
        }
    };
}

macro_rules! message_final_fn {
    ($(#[$doc:meta])* $name:ident, $usage:expr) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(hSession: CK_SESSION_HANDLE) -> CK_RV {
            guard(stringify!($name), || {
                module()?.session(u(hSession))?.message_final($usage)
            })
        }
    };
}

message_init_fn!(
    /// `C_MessageEncryptInit` (3.0).
    C_MessageEncryptInit, Usage::Encrypt
);
message_init_fn!(
    /// `C_MessageDecryptInit` (3.0).
    C_MessageDecryptInit, Usage::Decrypt
);
message_init_fn!(
    /// `C_MessageSignInit` (3.0).
    C_MessageSignInit, Usage::Sign
);
message_init_fn!(
    /// `C_MessageVerifyInit` (3.0).
    C_MessageVerifyInit, Usage::Verify
);
message_final_fn!(
    /// `C_MessageEncryptFinal` (3.0).
    C_MessageEncryptFinal, Usage::Encrypt
);
message_final_fn!(
    /// `C_MessageDecryptFinal` (3.0).
    C_MessageDecryptFinal, Usage::Decrypt
);
message_final_fn!(
    /// `C_MessageSignFinal` (3.0).
    C_MessageSignFinal, Usage::Sign
);
message_final_fn!(
    /// `C_MessageVerifyFinal` (3.0).
    C_MessageVerifyFinal, Usage::Verify
);

/// `C_EncryptMessage` (3.0): AES-GCM (`CK_GCM_MESSAGE_PARAMS`) or ChaCha20-Poly1305; the tag
/// (and a generated IV) are written into the parameter.
pub unsafe extern "C" fn C_EncryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
    pPlaintext: *mut CK_BYTE,
    ulPlaintextLen: CK_ULONG,
    pCiphertext: *mut CK_BYTE,
    pulCiphertextLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_EncryptMessage", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Encrypt)?;
        // SAFETY: the arguments of the 3.0 function.
        let (p, aad, data, cap) = unsafe {
            (
                params::message(ty, pParameter, ulParameterLen)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
                bytes(pPlaintext, ulPlaintextLen)?,
                capacity(pCiphertext, pulCiphertextLen)?,
            )
        };
        let mut sealed = s.encrypt_message(&p, aad, data, cap)?;
        // SAFETY: as above.
        unsafe {
            params::write_back(ty, pParameter, ulParameterLen, &sealed)?;
            let out = std::mem::replace(&mut sealed.out, Out::Len(0));
            deliver(pCiphertext, pulCiphertextLen, out)
        }
    })
}

/// `C_DecryptMessage` (3.0).
pub unsafe extern "C" fn C_DecryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
    pCiphertext: *mut CK_BYTE,
    ulCiphertextLen: CK_ULONG,
    pPlaintext: *mut CK_BYTE,
    pulPlaintextLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_DecryptMessage", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Decrypt)?;
        // SAFETY: the arguments of the 3.0 function.
        let (p, aad, data, cap) = unsafe {
            (
                params::message(ty, pParameter, ulParameterLen)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
                bytes(pCiphertext, ulCiphertextLen)?,
                capacity(pPlaintext, pulPlaintextLen)?,
            )
        };
        let out = s.decrypt_message(&p, aad, data, cap)?;
        // SAFETY: as above.
        unsafe { deliver(pPlaintext, pulPlaintextLen, out) }
    })
}

/// `C_SignMessage` (3.0): the per-message parameter must be empty (the mechanism's
/// parameters come with `C_MessageSignInit`).
pub unsafe extern "C" fn C_SignMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignMessage", || {
        let s = module()?.session(u(hSession))?;
        if !pParameter.is_null() && ulParameterLen != 0 {
            return Err(Error::new(
                ck::CKR_MECHANISM_PARAM_INVALID,
                "no per-message parameter",
            ));
        }
        // SAFETY: the arguments of the 3.0 function.
        let (data, cap) = unsafe {
            (
                bytes(pData, ulDataLen)?,
                capacity(pSignature, pulSignatureLen)?,
            )
        };
        let out = s.sign_message(data, cap)?;
        // SAFETY: as above.
        unsafe { deliver(pSignature, pulSignatureLen, out) }
    })
}

/// `C_VerifyMessage` (3.0).
pub unsafe extern "C" fn C_VerifyMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessage", || {
        let s = module()?.session(u(hSession))?;
        if !pParameter.is_null() && ulParameterLen != 0 {
            return Err(Error::new(
                ck::CKR_MECHANISM_PARAM_INVALID,
                "no per-message parameter",
            ));
        }
        // SAFETY: the arguments of the 3.0 function.
        let (data, sig) = unsafe { (bytes(pData, ulDataLen)?, bytes(pSignature, ulSignatureLen)?) };
        s.verify_message(data, sig)
    })
}

// ---- multi-part messages (3.0 §5.9.3–4, §5.11.3–4, §5.14.3–4, §5.16.3–4) -------------------

/// `flags` of `C_EncryptMessageNext` / `C_DecryptMessageNext`: 0 or `CKF_END_OF_MESSAGE`.
fn end_of_message(flags: CK_FLAGS) -> Result<bool> {
    match flags as u64 {
        0 => Ok(false),
        f if f == ck::CKF_END_OF_MESSAGE => Ok(true),
        f => Err(Error::args(format!("message flags {f:#x}"))),
    }
}

/// The parameter of a signature message function must be empty (the mechanism's parameters
/// come with `C_MessageSignInit` / `C_MessageVerifyInit`).
fn no_parameter(p: *mut c_void, len: CK_ULONG) -> Result<()> {
    if !p.is_null() && len != 0 {
        return Err(Error::new(
            ck::CKR_MECHANISM_PARAM_INVALID,
            "no per-message parameter",
        ));
    }
    Ok(())
}

/// `C_EncryptMessageBegin` (3.0 §5.9.3): the IV is fixed here (generated when the parameter
/// asks for it, and written back into it).
pub unsafe extern "C" fn C_EncryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    guard("C_EncryptMessageBegin", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Encrypt)?;
        // SAFETY: the arguments of the 3.0 function.
        let (p, aad) = unsafe {
            (
                params::message(ty, pParameter, ulParameterLen)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
            )
        };
        let iv = s.message_begin(Usage::Encrypt, &p, aad)?;
        // SAFETY: as above (the IV buffer of the parameter).
        unsafe { params::write_iv(ty, pParameter, ulParameterLen, &iv) }
    })
}

/// `C_EncryptMessageNext` (3.0 §5.9.4): parts are gathered; the last one
/// (`CKF_END_OF_MESSAGE`) returns the whole ciphertext and writes the tag into the parameter.
pub unsafe extern "C" fn C_EncryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pPlaintextPart: *mut CK_BYTE,
    ulPlaintextPartLen: CK_ULONG,
    pCiphertextPart: *mut CK_BYTE,
    pulCiphertextPartLen: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_EncryptMessageNext", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Encrypt)?;
        let end = end_of_message(flags)?;
        // SAFETY: the arguments of the 3.0 function.
        let (data, cap) = unsafe {
            (
                bytes(pPlaintextPart, ulPlaintextPartLen)?,
                capacity(pCiphertextPart, pulCiphertextPartLen)?,
            )
        };
        // The last part's parameter receives the tag (a malformed one ends the message).
        let p = if end {
            // SAFETY: as above.
            match unsafe { params::message(ty, pParameter, ulParameterLen) } {
                Ok(p) => Some(p),
                Err(e) => {
                    s.message_abort(Usage::Encrypt);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let mut sealed = s.encrypt_message_next(p.as_ref(), data, cap, end)?;
        // SAFETY: as above.
        unsafe {
            if end {
                params::write_back(ty, pParameter, ulParameterLen, &sealed)?;
            }
            let out = std::mem::replace(&mut sealed.out, Out::Len(0));
            deliver(pCiphertextPart, pulCiphertextPartLen, out)
        }
    })
}

/// `C_DecryptMessageBegin` (3.0 §5.11.3).
pub unsafe extern "C" fn C_DecryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    guard("C_DecryptMessageBegin", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Decrypt)?;
        // SAFETY: the arguments of the 3.0 function.
        let (p, aad) = unsafe {
            (
                params::message(ty, pParameter, ulParameterLen)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
            )
        };
        s.message_begin(Usage::Decrypt, &p, aad).map(|_| ())
    })
}

/// `C_DecryptMessageNext` (3.0 §5.11.4): parts are gathered; the last one
/// (`CKF_END_OF_MESSAGE`) checks the tag of its parameter and returns the whole plaintext.
pub unsafe extern "C" fn C_DecryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pCiphertextPart: *mut CK_BYTE,
    ulCiphertextPartLen: CK_ULONG,
    pPlaintextPart: *mut CK_BYTE,
    pulPlaintextPartLen: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_DecryptMessageNext", || {
        let s = module()?.session(u(hSession))?;
        let ty = s.message_type(Usage::Decrypt)?;
        let end = end_of_message(flags)?;
        // SAFETY: the arguments of the 3.0 function.
        let (data, cap) = unsafe {
            (
                bytes(pCiphertextPart, ulCiphertextPartLen)?,
                capacity(pPlaintextPart, pulPlaintextPartLen)?,
            )
        };
        // The last part's parameter carries the tag; without one, the tag given at
        // C_DecryptMessageBegin is used.
        let p = if end && !(pParameter.is_null() && ulParameterLen == 0) {
            // SAFETY: as above.
            match unsafe { params::message(ty, pParameter, ulParameterLen) } {
                Ok(p) => Some(p),
                Err(e) => {
                    s.message_abort(Usage::Decrypt);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let out = s.decrypt_message_next(p.as_ref(), data, cap, end)?;
        // SAFETY: as above.
        unsafe { deliver(pPlaintextPart, pulPlaintextPartLen, out) }
    })
}

/// `C_SignMessageBegin` (3.0 §5.14.3): for mechanisms with `CKF_MULTI_MESSAGE`.
pub unsafe extern "C" fn C_SignMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    guard("C_SignMessageBegin", || {
        let s = module()?.session(u(hSession))?;
        no_parameter(pParameter, ulParameterLen)?;
        s.message_begin_signature(Usage::Sign)
    })
}

/// `C_SignMessageNext` (3.0 §5.14.4): a NULL `pulSignatureLen` means more parts follow;
/// otherwise this is the last part and the signature comes out (§5.2 conventions).
pub unsafe extern "C" fn C_SignMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pDataPart: *mut CK_BYTE,
    ulDataPartLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignMessageNext", || {
        let s = module()?.session(u(hSession))?;
        no_parameter(pParameter, ulParameterLen)?;
        // SAFETY: the data part of the 3.0 function.
        let data = unsafe { bytes(pDataPart, ulDataPartLen)? };
        if pulSignatureLen.is_null() {
            return s.message_part(Usage::Sign, data);
        }
        // SAFETY: the signature buffer and its length.
        let cap = unsafe { capacity(pSignature, pulSignatureLen)? };
        let out = s.sign_message_last(data, cap)?;
        // SAFETY: as above.
        unsafe { deliver(pSignature, pulSignatureLen, out) }
    })
}

/// `C_VerifyMessageBegin` (3.0 §5.16.3): for mechanisms with `CKF_MULTI_MESSAGE`.
pub unsafe extern "C" fn C_VerifyMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessageBegin", || {
        let s = module()?.session(u(hSession))?;
        no_parameter(pParameter, ulParameterLen)?;
        s.message_begin_signature(Usage::Verify)
    })
}

/// `C_VerifyMessageNext` (3.0 §5.16.4): a NULL `pSignature` means more parts follow;
/// otherwise this is the last part and the signature is checked.
pub unsafe extern "C" fn C_VerifyMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: *mut c_void,
    ulParameterLen: CK_ULONG,
    pDataPart: *mut CK_BYTE,
    ulDataPartLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessageNext", || {
        let s = module()?.session(u(hSession))?;
        no_parameter(pParameter, ulParameterLen)?;
        // SAFETY: the data part of the 3.0 function.
        let data = unsafe { bytes(pDataPart, ulDataPartLen)? };
        if pSignature.is_null() {
            return s.message_part(Usage::Verify, data);
        }
        // SAFETY: the signature of the 3.0 function.
        let sig = unsafe { bytes(pSignature, ulSignatureLen)? };
        s.verify_message_last(data, sig)
    })
}
