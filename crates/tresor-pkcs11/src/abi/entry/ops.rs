//! Encryption, decryption, digest, signing and verification (§5.9–§5.14), with the
//! functions that do not apply to this token.

use super::*;

// ---- single- and multi-part operations (§5.8–§5.12) ------------------------------------------

macro_rules! init_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pMechanism: *mut CK_MECHANISM,
            hKey: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: the mechanism of the function's section.
                let mech = unsafe { params::mechanism(pMechanism)? };
                s.$method(&mech, u(hKey))
            })
        }
    };
}

macro_rules! single_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pData: *mut CK_BYTE,
            ulDataLen: CK_ULONG,
            pOut: *mut CK_BYTE,
            pulOutLen: *mut CK_ULONG,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: input, output and length of the function's section.
                let (data, cap) = unsafe { (bytes(pData, ulDataLen)?, capacity(pOut, pulOutLen)?) };
                let out = s.$method(Some(data), cap)?;
                // SAFETY: as above.
                unsafe { deliver(pOut, pulOutLen, out) }
            })
        }
    };
}

macro_rules! final_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pOut: *mut CK_BYTE,
            pulOutLen: *mut CK_ULONG,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: output and length of the function's section.
                let cap = unsafe { capacity(pOut, pulOutLen)? };
                let out = s.$method(None, cap)?;
                // SAFETY: as above.
                unsafe { deliver(pOut, pulOutLen, out) }
            })
        }
    };
}

macro_rules! update_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pPart: *mut CK_BYTE,
            ulPartLen: CK_ULONG,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: the part of the function's section.
                let part = unsafe { bytes(pPart, ulPartLen)? };
                s.$method(part)
            })
        }
    };
}

/// An update that could return output (encrypt/decrypt): everything is buffered and comes
/// out at `…Final`, so the output length is 0.
macro_rules! update_out_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pPart: *mut CK_BYTE,
            ulPartLen: CK_ULONG,
            pOut: *mut CK_BYTE,
            pulOutLen: *mut CK_ULONG,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: input, output and length of the function's section.
                let (part, cap) = unsafe { (bytes(pPart, ulPartLen)?, capacity(pOut, pulOutLen)?) };
                // A length query consumes no input (the part comes again with a buffer).
                if cap.is_some() {
                    s.$method(part)?;
                }
                // SAFETY: as above.
                unsafe { deliver(pOut, pulOutLen, Out::Data(Zeroizing::new(Vec::new()))) }
            })
        }
    };
}

init_fn!(
    /// `C_EncryptInit` (§5.9.1).
    C_EncryptInit, encrypt_init
);
single_fn!(
    /// `C_Encrypt` (§5.9.2).
    C_Encrypt, encrypt
);
update_out_fn!(
    /// `C_EncryptUpdate` (§5.9.3).
    C_EncryptUpdate, encrypt_update
);
final_fn!(
    /// `C_EncryptFinal` (§5.9.4).
    C_EncryptFinal, encrypt
);
init_fn!(
    /// `C_DecryptInit` (§5.10.1).
    C_DecryptInit, decrypt_init
);
single_fn!(
    /// `C_Decrypt` (§5.10.2).
    C_Decrypt, decrypt
);
update_out_fn!(
    /// `C_DecryptUpdate` (§5.10.3).
    C_DecryptUpdate, decrypt_update
);
final_fn!(
    /// `C_DecryptFinal` (§5.10.4).
    C_DecryptFinal, decrypt
);
single_fn!(
    /// `C_Digest` (§5.11.2).
    C_Digest, digest
);
update_fn!(
    /// `C_DigestUpdate` (§5.11.3).
    C_DigestUpdate, digest_update
);
final_fn!(
    /// `C_DigestFinal` (§5.11.5).
    C_DigestFinal, digest
);
init_fn!(
    /// `C_SignInit` (§5.12.1).
    C_SignInit, sign_init
);
single_fn!(
    /// `C_Sign` (§5.12.2).
    C_Sign, sign
);
update_fn!(
    /// `C_SignUpdate` (§5.12.3).
    C_SignUpdate, sign_update
);
final_fn!(
    /// `C_SignFinal` (§5.12.4).
    C_SignFinal, sign
);
init_fn!(
    /// `C_VerifyInit` (§5.13.1).
    C_VerifyInit, verify_init
);
update_fn!(
    /// `C_VerifyUpdate` (§5.13.3).
    C_VerifyUpdate, verify_update
);

/// `C_DigestInit` (§5.11.1).
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
) -> CK_RV {
    guard("C_DigestInit", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the mechanism of §5.11.1.
        let mech = unsafe { params::mechanism(pMechanism)? };
        s.digest_init(&mech)
    })
}

/// `C_DigestKey` (§5.11.4).
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    guard("C_DigestKey", || {
        module()?.session(u(hSession))?.digest_key(u(hKey))
    })
}

/// `C_Verify` (§5.13.2).
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_Verify", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the buffers of §5.13.2.
        let (data, sig) = unsafe { (bytes(pData, ulDataLen)?, bytes(pSignature, ulSignatureLen)?) };
        s.verify(Some(data), sig)
    })
}

/// `C_VerifyFinal` (§5.13.4).
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyFinal", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the signature of §5.13.4.
        let sig = unsafe { bytes(pSignature, ulSignatureLen)? };
        s.verify(None, sig)
    })
}

/// `C_VerifySignatureInit` (3.2).
pub unsafe extern "C" fn C_VerifySignatureInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifySignatureInit", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: mechanism and signature of the 3.2 function.
        let (mech, sig) = unsafe {
            (
                params::mechanism(pMechanism)?,
                bytes(pSignature, ulSignatureLen)?,
            )
        };
        s.verify_signature_init(&mech, u(hKey), sig)
    })
}

/// `C_VerifySignature` (3.2).
pub unsafe extern "C" fn C_VerifySignature(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifySignature", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the data of the 3.2 function.
        let data = unsafe { bytes(pData, ulDataLen)? };
        s.verify_signature(Some(data))
    })
}

update_fn!(
    /// `C_VerifySignatureUpdate` (3.2).
    C_VerifySignatureUpdate, verify_signature_update
);

/// `C_VerifySignatureFinal` (3.2).
pub unsafe extern "C" fn C_VerifySignatureFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_VerifySignatureFinal", || {
        module()?.session(u(hSession))?.verify_signature(None)
    })
}

unsupported_fn!(
    /// `C_SignRecoverInit` (§5.12.5).
    C_SignRecoverInit(pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE)
);
unsupported_fn!(
    /// `C_SignRecover` (§5.12.6).
    C_SignRecover(pData: *mut CK_BYTE, ulDataLen: CK_ULONG, pSignature: *mut CK_BYTE, pulSignatureLen: *mut CK_ULONG)
);
unsupported_fn!(
    /// `C_VerifyRecoverInit` (§5.13.5).
    C_VerifyRecoverInit(pMechanism: *mut CK_MECHANISM, hKey: CK_OBJECT_HANDLE)
);
unsupported_fn!(
    /// `C_VerifyRecover` (§5.13.6).
    C_VerifyRecover(pSignature: *mut CK_BYTE, ulSignatureLen: CK_ULONG, pData: *mut CK_BYTE, pulDataLen: *mut CK_ULONG)
);
/// A dual-function update (§5.14): the input part goes to two active operations; the output
/// follows §5.2 (a length query or a short buffer consumes nothing).
macro_rules! dual_fn {
    ($(#[$doc:meta])* $name:ident, $method:ident, $partner:expr) => {
        $(#[$doc])*
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pPart: *mut CK_BYTE,
            ulPartLen: CK_ULONG,
            pOut: *mut CK_BYTE,
            pulOutLen: *mut CK_ULONG,
        ) -> CK_RV {
            guard(stringify!($name), || {
                let s = module()?.session(u(hSession))?;
                // SAFETY: input, output and length of the function's section.
                let (part, cap) = unsafe { (bytes(pPart, ulPartLen)?, capacity(pOut, pulOutLen)?) };
                let out = s.$method($partner, part, cap)?;
                // SAFETY: as above.
                unsafe { deliver(pOut, pulOutLen, out) }
            })
        }
    };
}

dual_fn!(
    /// `C_DigestEncryptUpdate` (§5.14.1): the part is digested and encrypted; the ciphertext
    /// comes out at `C_EncryptFinal`.
    C_DigestEncryptUpdate, encrypt_with, Partner::Digest
);
dual_fn!(
    /// `C_DecryptDigestUpdate` (§5.14.2): the plaintext returned is digested.
    C_DecryptDigestUpdate, decrypt_with, Partner::Digest
);
dual_fn!(
    /// `C_SignEncryptUpdate` (§5.14.3): the part is signed and encrypted; the ciphertext comes
    /// out at `C_EncryptFinal`.
    C_SignEncryptUpdate, encrypt_with, Partner::Sign
);
dual_fn!(
    /// `C_DecryptVerifyUpdate` (§5.14.4): the plaintext returned is verified.
    C_DecryptVerifyUpdate, decrypt_with, Partner::Verify
);
unsupported_fn!(
    /// `C_AsyncComplete` (3.2): no asynchronous operations.
    C_AsyncComplete(pFunctionName: *mut CK_UTF8CHAR, pResult: *mut CK_ASYNC_DATA)
);
unsupported_fn!(
    /// `C_AsyncGetID` (3.2).
    C_AsyncGetID(pFunctionName: *mut CK_UTF8CHAR, pulID: *mut CK_ULONG)
);
unsupported_fn!(
    /// `C_AsyncJoin` (3.2).
    C_AsyncJoin(pFunctionName: *mut CK_UTF8CHAR, ulID: CK_ULONG, pData: *mut CK_BYTE, ulData: CK_ULONG)
);
