//! Session and login functions (§5.6).

use super::*;

// ---- sessions (§5.6) -------------------------------------------------------------------------

/// `C_OpenSession` (§5.6.1). Notification callbacks are accepted and never called.
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: *mut c_void,
    _Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        let m = module()?;
        if phSession.is_null() {
            return Err(Error::args("NULL session pointer"));
        }
        let h = m.open_session(u(slotID), u(flags))?;
        // SAFETY: the caller's handle pointer.
        unsafe { put(phSession, h as CK_SESSION_HANDLE) }
    })
}

/// `C_CloseSession` (§5.6.2).
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || module()?.close_session(u(hSession)))
}

/// `C_CloseAllSessions` (§5.6.3).
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || {
        module()?.close_all_sessions(u(slotID))
    })
}

/// `C_GetSessionInfo` (§5.6.4).
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard("C_GetSessionInfo", || {
        let m = module()?;
        let s = m.session(u(hSession))?;
        let i = CK_SESSION_INFO {
            slotID: s.slot.id as CK_SLOT_ID,
            state: m.session_state(&s) as CK_STATE,
            flags: CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        // SAFETY: the caller's CK_SESSION_INFO.
        unsafe { put(pInfo, i) }
    })
}

/// `C_SessionCancel` (3.0, §5.6.5).
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard("C_SessionCancel", || {
        module()?.session(u(hSession))?.cancel(u(flags))
    })
}

/// `C_GetSessionValidationFlags` (3.2): no validation regime is claimed (flags 0).
pub unsafe extern "C" fn C_GetSessionValidationFlags(
    hSession: CK_SESSION_HANDLE,
    _type: CK_SESSION_VALIDATION_FLAGS_TYPE,
    pFlags: *mut CK_FLAGS,
) -> CK_RV {
    guard("C_GetSessionValidationFlags", || {
        module()?.session(u(hSession))?;
        // SAFETY: the caller's flags pointer.
        unsafe { put(pFlags, 0) }
    })
}

/// `C_GetOperationState` (§5.6.6): operations run in the HSM and are not exported.
pub unsafe extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    _pOperationState: *mut CK_BYTE,
    _pulOperationStateLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetOperationState", || {
        module()?.session(u(hSession))?;
        not_supported("C_GetOperationState")
    })
}

/// `C_SetOperationState` (§5.6.7).
pub unsafe extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    _pOperationState: *mut CK_BYTE,
    _ulOperationStateLen: CK_ULONG,
    _hEncryptionKey: CK_OBJECT_HANDLE,
    _hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SetOperationState", || {
        module()?.session(u(hSession))?;
        not_supported("C_SetOperationState")
    })
}

/// `C_Login` (§5.6.8).
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || {
        let m = module()?;
        // SAFETY: the PIN buffer of §5.6.8.
        let pin = Zeroizing::new(unsafe { bytes(pPin, ulPinLen)? }.to_vec());
        m.login(u(hSession), u(userType), &pin)
    })
}

/// `C_LoginUser` (3.0, §5.6.9): the user name must be the partition's (or empty).
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pUsername: *mut CK_UTF8CHAR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    guard("C_LoginUser", || {
        let m = module()?;
        // SAFETY: the buffers of §5.6.9.
        let (pin, name) = unsafe {
            (
                Zeroizing::new(bytes(pPin, ulPinLen)?.to_vec()),
                bytes(pUsername, ulUsernameLen)?.to_vec(),
            )
        };
        let s = m.session(u(hSession))?;
        if !name.is_empty() && name != s.slot.partition.as_bytes() {
            return Err(Error::new(
                ck::CKR_PIN_INCORRECT,
                "the user name is not this token's partition",
            ));
        }
        m.login(u(hSession), u(userType), &pin)
    })
}

/// `C_Logout` (§5.6.10).
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || module()?.logout(u(hSession)))
}
