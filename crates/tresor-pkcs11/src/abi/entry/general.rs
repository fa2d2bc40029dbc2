//! General-purpose (§5.4) and slot / token (§5.5) functions.

use super::*;

// ---- general (§5.4) ------------------------------------------------------------------------

/// `C_Initialize` (§5.4.1).
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    guard("C_Initialize", || {
        if !pInitArgs.is_null() {
            // SAFETY: a non-NULL argument points to a CK_C_INITIALIZE_ARGS (§5.4.1).
            let a = unsafe { &*(pInitArgs as *const CK_C_INITIALIZE_ARGS) };
            if !a.pReserved.is_null() {
                return Err(Error::args("pReserved must be NULL"));
            }
            let given = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            let all = given.iter().all(|g| *g);
            if !all && given.iter().any(|g| *g) {
                return Err(Error::args("give all four mutex functions or none"));
            }
            if all && a.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(Error::new(
                    ck::CKR_CANT_LOCK,
                    "this library locks with the operating system's primitives only",
                ));
            }
        }
        let h = holder_or_create();
        let mut m = h.module.write();
        if m.is_some() {
            return Err(Error::new(
                ck::CKR_CRYPTOKI_ALREADY_INITIALIZED,
                "already initialised",
            ));
        }
        let module = std::sync::Arc::new(Module::from_environment()?);
        super::super::start_logging(h, &module);
        super::super::log_line(
            crate::log::INFO,
            "C_Initialize",
            &format_args!(
                "initialised from {} with {} slot(s)",
                module.config_path().display(),
                module.slots().len()
            ),
        );
        *m = Some(module);
        Ok(())
    })
}

/// `C_Finalize` (§5.4.2): closes every session, even with sessions open.
pub unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || {
        if !pReserved.is_null() {
            return Err(Error::args("pReserved must be NULL"));
        }
        let m = super::super::holder()
            .and_then(|h| h.module.write().take())
            .ok_or_else(|| Error::new(ck::CKR_CRYPTOKI_NOT_INITIALIZED, "not initialised"))?;
        m.close_everything();
        super::super::log_line(crate::log::INFO, "C_Finalize", &"finalised");
        if let Some(h) = super::super::holder() {
            super::super::stop_logging(h);
        }
        Ok(())
    })
}

fn get_info(p: *mut CK_INFO, major: u8, minor: u8) -> CK_RV {
    guard("C_GetInfo", || {
        module()?;
        // SAFETY: `put` checks NULL; the pointer is the caller's CK_INFO.
        unsafe { put(p, info::info(major, minor)) }
    })
}

/// `C_GetInfo` of the 2.40 table (§5.4.3).
pub unsafe extern "C" fn C_GetInfo_2_40(pInfo: *mut CK_INFO) -> CK_RV {
    get_info(pInfo, 2, 40)
}

/// `C_GetInfo` of the 3.0 table.
pub unsafe extern "C" fn C_GetInfo_3_0(pInfo: *mut CK_INFO) -> CK_RV {
    get_info(pInfo, 3, 0)
}

/// `C_GetInfo` of the 3.2 table.
pub unsafe extern "C" fn C_GetInfo_3_2(pInfo: *mut CK_INFO) -> CK_RV {
    get_info(pInfo, 3, 2)
}

/// Writes a list with the size-query / buffer-too-small convention.
///
/// # Safety
/// `out` NULL or valid for `*count` elements; `count` valid.
unsafe fn list_out<T: Copy>(out: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    if count.is_null() {
        return Err(Error::args("NULL count pointer"));
    }
    // SAFETY: per the contract above.
    unsafe {
        if out.is_null() {
            *count = items.len() as CK_ULONG;
            return Ok(());
        }
        if (*count as usize) < items.len() {
            *count = items.len() as CK_ULONG;
            return Err(Error::new(
                ck::CKR_BUFFER_TOO_SMALL,
                "list longer than the buffer",
            ));
        }
        std::ptr::copy_nonoverlapping(items.as_ptr(), out, items.len());
        *count = items.len() as CK_ULONG;
    }
    Ok(())
}

// ---- slots and tokens (§5.5) ---------------------------------------------------------------

/// `C_GetSlotList` (§5.5.1).
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetSlotList", || {
        let m = module()?;
        let ids: Vec<CK_SLOT_ID> = m
            .slots()
            .iter()
            .filter(|s| tokenPresent == 0 || s.configured())
            .map(|s| s.id as CK_SLOT_ID)
            .collect();
        // SAFETY: the caller's list and count (§5.5.1).
        unsafe { list_out(pSlotList, pulCount, &ids) }
    })
}

/// `C_GetSlotInfo` (§5.5.2).
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        let m = module()?;
        let i = info::slot_info(m.slot(u(slotID))?);
        // SAFETY: the caller's CK_SLOT_INFO.
        unsafe { put(pInfo, i) }
    })
}

/// `C_GetTokenInfo` (§5.5.3).
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        let m = module()?;
        if pInfo.is_null() {
            return Err(Error::args("NULL info pointer"));
        }
        let i = info::token_info(&m, m.slot(u(slotID))?)?;
        // SAFETY: the caller's CK_TOKEN_INFO.
        unsafe { put(pInfo, i) }
    })
}

/// `C_WaitForSlotEvent` (§5.5.4): slots never change while the library runs.
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    _pSlot: *mut CK_SLOT_ID,
    _pReserved: *mut c_void,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        module()?;
        if flags & CKF_DONT_BLOCK != 0 {
            return Err(Error::new(ck::CKR_NO_EVENT, "no slot event"));
        }
        not_supported("blocking C_WaitForSlotEvent")
    })
}

/// `C_GetMechanismList` (§5.5.5).
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        let m = module()?;
        if pulCount.is_null() {
            return Err(Error::args("NULL count pointer"));
        }
        let list: Vec<CK_MECHANISM_TYPE> = info::mechanism_list(m.slot(u(slotID))?)?
            .into_iter()
            .map(|x| x as CK_MECHANISM_TYPE)
            .collect();
        // SAFETY: the caller's list and count.
        unsafe { list_out(pMechanismList, pulCount, &list) }
    })
}

/// `C_GetMechanismInfo` (§5.5.6).
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        let m = module()?;
        if pInfo.is_null() {
            return Err(Error::args("NULL info pointer"));
        }
        let i = info::mechanism_info(m.slot(u(slotID))?, u(type_))?;
        // SAFETY: the caller's CK_MECHANISM_INFO.
        unsafe { put(pInfo, i) }
    })
}

/// `C_InitToken` (§5.5.7): re-initialises the slot's partition as its security officer (every
/// object destroyed, the user PIN cleared). The label must be the partition's name: partitions
/// are named by the operator (`tresor admin`).
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard("C_InitToken", || {
        let m = module()?;
        m.slot(u(slotID))?;
        if pPin.is_null() {
            return Err(Error::args(
                "NULL PIN: this token has no protected authentication path",
            ));
        }
        if pLabel.is_null() {
            return Err(Error::args("NULL label"));
        }
        // SAFETY: the SO PIN of §5.5.7 and its 32-byte label.
        let (pin, label) = unsafe {
            (
                Zeroizing::new(bytes(pPin, ulPinLen)?.to_vec()),
                bytes(pLabel, 32)?.to_vec(),
            )
        };
        m.init_token(u(slotID), &pin, &label)
    })
}

/// `C_InitPIN` (§5.5.8).
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        let m = module()?;
        // SAFETY: the PIN buffer of §5.5.8.
        let pin = Zeroizing::new(unsafe { bytes(pPin, ulPinLen)? }.to_vec());
        m.init_pin(u(hSession), &pin)
    })
}

/// `C_SetPIN` (§5.5.9).
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    guard("C_SetPIN", || {
        let m = module()?;
        // SAFETY: the PIN buffers of §5.5.9.
        let (old, new) = unsafe {
            (
                Zeroizing::new(bytes(pOldPin, ulOldLen)?.to_vec()),
                Zeroizing::new(bytes(pNewPin, ulNewLen)?.to_vec()),
            )
        };
        m.set_pin(u(hSession), &old, &new)
    })
}
