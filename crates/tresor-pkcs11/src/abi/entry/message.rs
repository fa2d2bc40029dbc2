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
                let mech = unsafe { params::mechanism(pMechanism)? };
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
