//! The function tables (2.40, 3.0, 3.2), the interface list and the three exported symbols.

use std::os::raw::c_void;

use cryptoki_sys::{
    CK_FLAGS, CK_FUNCTION_LIST, CK_FUNCTION_LIST_3_0, CK_FUNCTION_LIST_3_2, CK_INTERFACE, CK_RV,
    CK_ULONG, CK_UTF8CHAR, CK_VERSION,
};

use super::{entry, guard, ptr};
use crate::ck::*;
use crate::error::Error;

/// The Cryptoki 2.40 function table.
pub static FUNCTIONS_2_40: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(entry::C_Initialize),
    C_Finalize: Some(entry::C_Finalize),
    C_GetInfo: Some(entry::C_GetInfo_2_40),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(entry::C_GetSlotList),
    C_GetSlotInfo: Some(entry::C_GetSlotInfo),
    C_GetTokenInfo: Some(entry::C_GetTokenInfo),
    C_GetMechanismList: Some(entry::C_GetMechanismList),
    C_GetMechanismInfo: Some(entry::C_GetMechanismInfo),
    C_InitToken: Some(entry::C_InitToken),
    C_InitPIN: Some(entry::C_InitPIN),
    C_SetPIN: Some(entry::C_SetPIN),
    C_OpenSession: Some(entry::C_OpenSession),
    C_CloseSession: Some(entry::C_CloseSession),
    C_CloseAllSessions: Some(entry::C_CloseAllSessions),
    C_GetSessionInfo: Some(entry::C_GetSessionInfo),
    C_GetOperationState: Some(entry::C_GetOperationState),
    C_SetOperationState: Some(entry::C_SetOperationState),
    C_Login: Some(entry::C_Login),
    C_Logout: Some(entry::C_Logout),
    C_CreateObject: Some(entry::C_CreateObject),
    C_CopyObject: Some(entry::C_CopyObject),
    C_DestroyObject: Some(entry::C_DestroyObject),
    C_GetObjectSize: Some(entry::C_GetObjectSize),
    C_GetAttributeValue: Some(entry::C_GetAttributeValue),
    C_SetAttributeValue: Some(entry::C_SetAttributeValue),
    C_FindObjectsInit: Some(entry::C_FindObjectsInit),
    C_FindObjects: Some(entry::C_FindObjects),
    C_FindObjectsFinal: Some(entry::C_FindObjectsFinal),
    C_EncryptInit: Some(entry::C_EncryptInit),
    C_Encrypt: Some(entry::C_Encrypt),
    C_EncryptUpdate: Some(entry::C_EncryptUpdate),
    C_EncryptFinal: Some(entry::C_EncryptFinal),
    C_DecryptInit: Some(entry::C_DecryptInit),
    C_Decrypt: Some(entry::C_Decrypt),
    C_DecryptUpdate: Some(entry::C_DecryptUpdate),
    C_DecryptFinal: Some(entry::C_DecryptFinal),
    C_DigestInit: Some(entry::C_DigestInit),
    C_Digest: Some(entry::C_Digest),
    C_DigestUpdate: Some(entry::C_DigestUpdate),
    C_DigestKey: Some(entry::C_DigestKey),
    C_DigestFinal: Some(entry::C_DigestFinal),
    C_SignInit: Some(entry::C_SignInit),
    C_Sign: Some(entry::C_Sign),
    C_SignUpdate: Some(entry::C_SignUpdate),
    C_SignFinal: Some(entry::C_SignFinal),
    C_SignRecoverInit: Some(entry::C_SignRecoverInit),
    C_SignRecover: Some(entry::C_SignRecover),
    C_VerifyInit: Some(entry::C_VerifyInit),
    C_Verify: Some(entry::C_Verify),
    C_VerifyUpdate: Some(entry::C_VerifyUpdate),
    C_VerifyFinal: Some(entry::C_VerifyFinal),
    C_VerifyRecoverInit: Some(entry::C_VerifyRecoverInit),
    C_VerifyRecover: Some(entry::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(entry::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(entry::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(entry::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(entry::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(entry::C_GenerateKey),
    C_GenerateKeyPair: Some(entry::C_GenerateKeyPair),
    C_WrapKey: Some(entry::C_WrapKey),
    C_UnwrapKey: Some(entry::C_UnwrapKey),
    C_DeriveKey: Some(entry::C_DeriveKey),
    C_SeedRandom: Some(entry::C_SeedRandom),
    C_GenerateRandom: Some(entry::C_GenerateRandom),
    C_GetFunctionStatus: Some(entry::C_GetFunctionStatus),
    C_CancelFunction: Some(entry::C_CancelFunction),
    C_WaitForSlotEvent: Some(entry::C_WaitForSlotEvent),
};

/// The Cryptoki 3.0 function table.
pub static FUNCTIONS_3_0: CK_FUNCTION_LIST_3_0 = CK_FUNCTION_LIST_3_0 {
    version: CK_VERSION { major: 3, minor: 0 },
    C_Initialize: Some(entry::C_Initialize),
    C_Finalize: Some(entry::C_Finalize),
    C_GetInfo: Some(entry::C_GetInfo_3_0),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(entry::C_GetSlotList),
    C_GetSlotInfo: Some(entry::C_GetSlotInfo),
    C_GetTokenInfo: Some(entry::C_GetTokenInfo),
    C_GetMechanismList: Some(entry::C_GetMechanismList),
    C_GetMechanismInfo: Some(entry::C_GetMechanismInfo),
    C_InitToken: Some(entry::C_InitToken),
    C_InitPIN: Some(entry::C_InitPIN),
    C_SetPIN: Some(entry::C_SetPIN),
    C_OpenSession: Some(entry::C_OpenSession),
    C_CloseSession: Some(entry::C_CloseSession),
    C_CloseAllSessions: Some(entry::C_CloseAllSessions),
    C_GetSessionInfo: Some(entry::C_GetSessionInfo),
    C_GetOperationState: Some(entry::C_GetOperationState),
    C_SetOperationState: Some(entry::C_SetOperationState),
    C_Login: Some(entry::C_Login),
    C_Logout: Some(entry::C_Logout),
    C_CreateObject: Some(entry::C_CreateObject),
    C_CopyObject: Some(entry::C_CopyObject),
    C_DestroyObject: Some(entry::C_DestroyObject),
    C_GetObjectSize: Some(entry::C_GetObjectSize),
    C_GetAttributeValue: Some(entry::C_GetAttributeValue),
    C_SetAttributeValue: Some(entry::C_SetAttributeValue),
    C_FindObjectsInit: Some(entry::C_FindObjectsInit),
    C_FindObjects: Some(entry::C_FindObjects),
    C_FindObjectsFinal: Some(entry::C_FindObjectsFinal),
    C_EncryptInit: Some(entry::C_EncryptInit),
    C_Encrypt: Some(entry::C_Encrypt),
    C_EncryptUpdate: Some(entry::C_EncryptUpdate),
    C_EncryptFinal: Some(entry::C_EncryptFinal),
    C_DecryptInit: Some(entry::C_DecryptInit),
    C_Decrypt: Some(entry::C_Decrypt),
    C_DecryptUpdate: Some(entry::C_DecryptUpdate),
    C_DecryptFinal: Some(entry::C_DecryptFinal),
    C_DigestInit: Some(entry::C_DigestInit),
    C_Digest: Some(entry::C_Digest),
    C_DigestUpdate: Some(entry::C_DigestUpdate),
    C_DigestKey: Some(entry::C_DigestKey),
    C_DigestFinal: Some(entry::C_DigestFinal),
    C_SignInit: Some(entry::C_SignInit),
    C_Sign: Some(entry::C_Sign),
    C_SignUpdate: Some(entry::C_SignUpdate),
    C_SignFinal: Some(entry::C_SignFinal),
    C_SignRecoverInit: Some(entry::C_SignRecoverInit),
    C_SignRecover: Some(entry::C_SignRecover),
    C_VerifyInit: Some(entry::C_VerifyInit),
    C_Verify: Some(entry::C_Verify),
    C_VerifyUpdate: Some(entry::C_VerifyUpdate),
    C_VerifyFinal: Some(entry::C_VerifyFinal),
    C_VerifyRecoverInit: Some(entry::C_VerifyRecoverInit),
    C_VerifyRecover: Some(entry::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(entry::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(entry::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(entry::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(entry::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(entry::C_GenerateKey),
    C_GenerateKeyPair: Some(entry::C_GenerateKeyPair),
    C_WrapKey: Some(entry::C_WrapKey),
    C_UnwrapKey: Some(entry::C_UnwrapKey),
    C_DeriveKey: Some(entry::C_DeriveKey),
    C_SeedRandom: Some(entry::C_SeedRandom),
    C_GenerateRandom: Some(entry::C_GenerateRandom),
    C_GetFunctionStatus: Some(entry::C_GetFunctionStatus),
    C_CancelFunction: Some(entry::C_CancelFunction),
    C_WaitForSlotEvent: Some(entry::C_WaitForSlotEvent),
    C_GetInterfaceList: Some(C_GetInterfaceList),
    C_GetInterface: Some(C_GetInterface),
    C_LoginUser: Some(entry::C_LoginUser),
    C_SessionCancel: Some(entry::C_SessionCancel),
    C_MessageEncryptInit: Some(entry::C_MessageEncryptInit),
    C_EncryptMessage: Some(entry::C_EncryptMessage),
    C_EncryptMessageBegin: Some(entry::C_EncryptMessageBegin),
    C_EncryptMessageNext: Some(entry::C_EncryptMessageNext),
    C_MessageEncryptFinal: Some(entry::C_MessageEncryptFinal),
    C_MessageDecryptInit: Some(entry::C_MessageDecryptInit),
    C_DecryptMessage: Some(entry::C_DecryptMessage),
    C_DecryptMessageBegin: Some(entry::C_DecryptMessageBegin),
    C_DecryptMessageNext: Some(entry::C_DecryptMessageNext),
    C_MessageDecryptFinal: Some(entry::C_MessageDecryptFinal),
    C_MessageSignInit: Some(entry::C_MessageSignInit),
    C_SignMessage: Some(entry::C_SignMessage),
    C_SignMessageBegin: Some(entry::C_SignMessageBegin),
    C_SignMessageNext: Some(entry::C_SignMessageNext),
    C_MessageSignFinal: Some(entry::C_MessageSignFinal),
    C_MessageVerifyInit: Some(entry::C_MessageVerifyInit),
    C_VerifyMessage: Some(entry::C_VerifyMessage),
    C_VerifyMessageBegin: Some(entry::C_VerifyMessageBegin),
    C_VerifyMessageNext: Some(entry::C_VerifyMessageNext),
    C_MessageVerifyFinal: Some(entry::C_MessageVerifyFinal),
};

/// The Cryptoki 3.2 function table.
pub static FUNCTIONS_3_2: CK_FUNCTION_LIST_3_2 = CK_FUNCTION_LIST_3_2 {
    version: CK_VERSION { major: 3, minor: 2 },
    C_Initialize: Some(entry::C_Initialize),
    C_Finalize: Some(entry::C_Finalize),
    C_GetInfo: Some(entry::C_GetInfo_3_2),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(entry::C_GetSlotList),
    C_GetSlotInfo: Some(entry::C_GetSlotInfo),
    C_GetTokenInfo: Some(entry::C_GetTokenInfo),
    C_GetMechanismList: Some(entry::C_GetMechanismList),
    C_GetMechanismInfo: Some(entry::C_GetMechanismInfo),
    C_InitToken: Some(entry::C_InitToken),
    C_InitPIN: Some(entry::C_InitPIN),
    C_SetPIN: Some(entry::C_SetPIN),
    C_OpenSession: Some(entry::C_OpenSession),
    C_CloseSession: Some(entry::C_CloseSession),
    C_CloseAllSessions: Some(entry::C_CloseAllSessions),
    C_GetSessionInfo: Some(entry::C_GetSessionInfo),
    C_GetOperationState: Some(entry::C_GetOperationState),
    C_SetOperationState: Some(entry::C_SetOperationState),
    C_Login: Some(entry::C_Login),
    C_Logout: Some(entry::C_Logout),
    C_CreateObject: Some(entry::C_CreateObject),
    C_CopyObject: Some(entry::C_CopyObject),
    C_DestroyObject: Some(entry::C_DestroyObject),
    C_GetObjectSize: Some(entry::C_GetObjectSize),
    C_GetAttributeValue: Some(entry::C_GetAttributeValue),
    C_SetAttributeValue: Some(entry::C_SetAttributeValue),
    C_FindObjectsInit: Some(entry::C_FindObjectsInit),
    C_FindObjects: Some(entry::C_FindObjects),
    C_FindObjectsFinal: Some(entry::C_FindObjectsFinal),
    C_EncryptInit: Some(entry::C_EncryptInit),
    C_Encrypt: Some(entry::C_Encrypt),
    C_EncryptUpdate: Some(entry::C_EncryptUpdate),
    C_EncryptFinal: Some(entry::C_EncryptFinal),
    C_DecryptInit: Some(entry::C_DecryptInit),
    C_Decrypt: Some(entry::C_Decrypt),
    C_DecryptUpdate: Some(entry::C_DecryptUpdate),
    C_DecryptFinal: Some(entry::C_DecryptFinal),
    C_DigestInit: Some(entry::C_DigestInit),
    C_Digest: Some(entry::C_Digest),
    C_DigestUpdate: Some(entry::C_DigestUpdate),
    C_DigestKey: Some(entry::C_DigestKey),
    C_DigestFinal: Some(entry::C_DigestFinal),
    C_SignInit: Some(entry::C_SignInit),
    C_Sign: Some(entry::C_Sign),
    C_SignUpdate: Some(entry::C_SignUpdate),
    C_SignFinal: Some(entry::C_SignFinal),
    C_SignRecoverInit: Some(entry::C_SignRecoverInit),
    C_SignRecover: Some(entry::C_SignRecover),
    C_VerifyInit: Some(entry::C_VerifyInit),
    C_Verify: Some(entry::C_Verify),
    C_VerifyUpdate: Some(entry::C_VerifyUpdate),
    C_VerifyFinal: Some(entry::C_VerifyFinal),
    C_VerifyRecoverInit: Some(entry::C_VerifyRecoverInit),
    C_VerifyRecover: Some(entry::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(entry::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(entry::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(entry::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(entry::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(entry::C_GenerateKey),
    C_GenerateKeyPair: Some(entry::C_GenerateKeyPair),
    C_WrapKey: Some(entry::C_WrapKey),
    C_UnwrapKey: Some(entry::C_UnwrapKey),
    C_DeriveKey: Some(entry::C_DeriveKey),
    C_SeedRandom: Some(entry::C_SeedRandom),
    C_GenerateRandom: Some(entry::C_GenerateRandom),
    C_GetFunctionStatus: Some(entry::C_GetFunctionStatus),
    C_CancelFunction: Some(entry::C_CancelFunction),
    C_WaitForSlotEvent: Some(entry::C_WaitForSlotEvent),
    C_GetInterfaceList: Some(C_GetInterfaceList),
    C_GetInterface: Some(C_GetInterface),
    C_LoginUser: Some(entry::C_LoginUser),
    C_SessionCancel: Some(entry::C_SessionCancel),
    C_MessageEncryptInit: Some(entry::C_MessageEncryptInit),
    C_EncryptMessage: Some(entry::C_EncryptMessage),
    C_EncryptMessageBegin: Some(entry::C_EncryptMessageBegin),
    C_EncryptMessageNext: Some(entry::C_EncryptMessageNext),
    C_MessageEncryptFinal: Some(entry::C_MessageEncryptFinal),
    C_MessageDecryptInit: Some(entry::C_MessageDecryptInit),
    C_DecryptMessage: Some(entry::C_DecryptMessage),
    C_DecryptMessageBegin: Some(entry::C_DecryptMessageBegin),
    C_DecryptMessageNext: Some(entry::C_DecryptMessageNext),
    C_MessageDecryptFinal: Some(entry::C_MessageDecryptFinal),
    C_MessageSignInit: Some(entry::C_MessageSignInit),
    C_SignMessage: Some(entry::C_SignMessage),
    C_SignMessageBegin: Some(entry::C_SignMessageBegin),
    C_SignMessageNext: Some(entry::C_SignMessageNext),
    C_MessageSignFinal: Some(entry::C_MessageSignFinal),
    C_MessageVerifyInit: Some(entry::C_MessageVerifyInit),
    C_VerifyMessage: Some(entry::C_VerifyMessage),
    C_VerifyMessageBegin: Some(entry::C_VerifyMessageBegin),
    C_VerifyMessageNext: Some(entry::C_VerifyMessageNext),
    C_MessageVerifyFinal: Some(entry::C_MessageVerifyFinal),
    C_EncapsulateKey: Some(entry::C_EncapsulateKey),
    C_DecapsulateKey: Some(entry::C_DecapsulateKey),
    C_VerifySignatureInit: Some(entry::C_VerifySignatureInit),
    C_VerifySignature: Some(entry::C_VerifySignature),
    C_VerifySignatureUpdate: Some(entry::C_VerifySignatureUpdate),
    C_VerifySignatureFinal: Some(entry::C_VerifySignatureFinal),
    C_GetSessionValidationFlags: Some(entry::C_GetSessionValidationFlags),
    C_AsyncComplete: Some(entry::C_AsyncComplete),
    C_AsyncGetID: Some(entry::C_AsyncGetID),
    C_AsyncJoin: Some(entry::C_AsyncJoin),
    C_WrapKeyAuthenticated: Some(entry::C_WrapKeyAuthenticated),
    C_UnwrapKeyAuthenticated: Some(entry::C_UnwrapKeyAuthenticated),
};

/// The interface name of the standard tables, NUL-terminated.
static PKCS11_NAME: &[u8; 8] = b"PKCS 11\0";

/// The interfaces, newest first (the first is the default of `C_GetInterface`).
struct Interfaces([CK_INTERFACE; 3]);

// SAFETY: the pointers inside point to immutable statics (the name and the function tables);
// nobody writes through them.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: PKCS11_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_3_2 as *const CK_FUNCTION_LIST_3_2 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: PKCS11_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: PKCS11_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as *mut c_void,
        flags: 0,
    },
]);

const VERSIONS: [CK_VERSION; 3] = [
    CK_VERSION { major: 3, minor: 2 },
    CK_VERSION { major: 3, minor: 0 },
    CK_VERSION {
        major: 2,
        minor: 40,
    },
];

/// `C_GetFunctionList`: the 2.40 table (PKCS#11 2.40 §5.4).
///
/// # Safety
/// `ppFunctionList` must be NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard("C_GetFunctionList", || {
        // SAFETY: the caller's pointer, checked for NULL by `put`.
        unsafe {
            ptr::put(
                ppFunctionList,
                &FUNCTIONS_2_40 as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST,
            )
        }
    })
}

/// `C_GetInterfaceList` (PKCS#11 3.0 §5.4): the 3.2, 3.0 and 2.40 interfaces.
///
/// # Safety
/// `pulCount` must be valid; `pInterfacesList` NULL or valid for `*pulCount` entries.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetInterfaceList", || {
        if pulCount.is_null() {
            return Err(Error::args("NULL count pointer"));
        }
        let n = INTERFACES.0.len();
        // SAFETY: `pulCount` is non-NULL and valid per the contract; `pInterfacesList`
        // holds `*pulCount` entries when not NULL.
        unsafe {
            if pInterfacesList.is_null() {
                *pulCount = n as CK_ULONG;
                return Ok(());
            }
            if (*pulCount as usize) < n {
                *pulCount = n as CK_ULONG;
                return Err(Error::new(CKR_BUFFER_TOO_SMALL, "3 interfaces"));
            }
            std::ptr::copy_nonoverlapping(INTERFACES.0.as_ptr(), pInterfacesList, n);
            *pulCount = n as CK_ULONG;
        }
        Ok(())
    })
}

/// `C_GetInterface` (PKCS#11 3.0 §5.4): by name (`"PKCS 11"` or NULL), version (or NULL
/// for the newest) and flags.
///
/// # Safety
/// `pInterfaceName` NULL or NUL-terminated; `pVersion` NULL or valid; `ppInterface` valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        if ppInterface.is_null() {
            return Err(Error::args("NULL interface pointer"));
        }
        // SAFETY: NUL-terminated when not NULL, per the contract.
        let name_ok = pInterfaceName.is_null()
            || unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::os::raw::c_char) }
                .to_bytes()
                == &PKCS11_NAME[..7];
        // SAFETY: valid when not NULL.
        let version = unsafe { pVersion.as_ref() }.copied();
        let found = INTERFACES
            .0
            .iter()
            .zip(VERSIONS.iter())
            .find(|(i, v)| {
                name_ok
                    && version.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                    && (i.flags & flags) == flags
            })
            .map(|(i, _)| i);
        match found {
            Some(i) => {
                // SAFETY: `ppInterface` is non-NULL; the interface is an immutable static.
                unsafe { *ppInterface = i as *const CK_INTERFACE as *mut CK_INTERFACE };
                Ok(())
            }
            None => Err(Error::args("no such interface")),
        }
    })
}
