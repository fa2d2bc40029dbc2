//! Object functions (§5.7).

use super::*;

// ---- objects (§5.7) --------------------------------------------------------------------------

/// `C_CreateObject` (§5.7.1).
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CreateObject", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the template of §5.7.1.
        let t = unsafe { template(pTemplate, ulCount)? };
        if phObject.is_null() {
            return Err(Error::args("NULL object pointer"));
        }
        let h = s.create_object(&t)?;
        // SAFETY: checked non-NULL above.
        unsafe { put(phObject, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_CopyObject` (§5.7.2).
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CopyObject", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the template of §5.7.2.
        let t = unsafe { template(pTemplate, ulCount)? };
        if phNewObject.is_null() {
            return Err(Error::args("NULL object pointer"));
        }
        let h = s.copy_object(u(hObject), &t)?;
        // SAFETY: checked non-NULL above.
        unsafe { put(phNewObject, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_DestroyObject` (§5.7.3).
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DestroyObject", || {
        module()?.session(u(hSession))?.destroy_object(u(hObject))
    })
}

/// `C_GetObjectSize` (§5.7.4).
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetObjectSize", || {
        let s = module()?.session(u(hSession))?;
        if pulSize.is_null() {
            return Err(Error::args("NULL size pointer"));
        }
        let n = s.object_size(u(hObject))?;
        // SAFETY: checked non-NULL above.
        unsafe { put(pulSize, n as CK_ULONG) }
    })
}

/// `C_GetAttributeValue` (§5.7.5): per attribute, the value, its length (NULL `pValue`),
/// or `CK_UNAVAILABLE_INFORMATION` with `CKR_ATTRIBUTE_SENSITIVE`,
/// `CKR_ATTRIBUTE_TYPE_INVALID` or `CKR_BUFFER_TOO_SMALL`; every attribute is processed.
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        use tresor_proto::AttrRead;
        let s = module()?.session(u(hSession))?;
        if ulCount > 4096 {
            return Err(Error::args("template too large"));
        }
        // SAFETY: the template of §5.7.5; read here, written below.
        let types: Vec<u64> = unsafe { slice(pTemplate, ulCount)? }
            .iter()
            .map(|a| a.type_ as u64)
            .collect();
        let reads = s.get_attributes(u(hObject), &types)?;
        let mut rv = ck::CKR_OK;
        let unavailable = ck::CK_UNAVAILABLE_INFORMATION as CK_ULONG;
        for (i, r) in reads.into_iter().enumerate() {
            // SAFETY: `i` < `ulCount`; the entry is the caller's, writable per §5.7.5; a
            // value is copied only if `pValue` holds `ulValueLen` ≥ its length bytes.
            unsafe {
                let a = &mut *pTemplate.add(i);
                match r {
                    AttrRead::Value(v) => {
                        let v = v.expose();
                        if a.pValue.is_null() {
                            a.ulValueLen = v.len() as CK_ULONG;
                        } else if (a.ulValueLen as usize) < v.len() {
                            a.ulValueLen = unavailable;
                            rv = ck::CKR_BUFFER_TOO_SMALL;
                        } else {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len());
                            a.ulValueLen = v.len() as CK_ULONG;
                        }
                    }
                    AttrRead::Sensitive => {
                        a.ulValueLen = unavailable;
                        rv = ck::CKR_ATTRIBUTE_SENSITIVE;
                    }
                    AttrRead::Invalid => {
                        a.ulValueLen = unavailable;
                        rv = ck::CKR_ATTRIBUTE_TYPE_INVALID;
                    }
                }
            }
        }
        if rv == ck::CKR_OK {
            Ok(())
        } else {
            Err(Error::new(rv, "some attributes could not be returned"))
        }
    })
}

/// `C_SetAttributeValue` (§5.7.6).
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the template of §5.7.6.
        let t = unsafe { template(pTemplate, ulCount)? };
        s.set_attributes(u(hObject), &t)
    })
}

/// `C_FindObjectsInit` (§5.7.7).
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the template of §5.7.7.
        let t = unsafe { template(pTemplate, ulCount)? };
        s.find_init(&t)
    })
}

/// `C_FindObjects` (§5.7.8).
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        let s = module()?.session(u(hSession))?;
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount > 0) {
            return Err(Error::args("NULL output pointers"));
        }
        let found = s.find(ulMaxObjectCount as usize)?;
        // SAFETY: `phObject` holds `ulMaxObjectCount` ≥ `found.len()` handles.
        unsafe {
            for (i, h) in found.iter().enumerate() {
                *phObject.add(i) = *h as CK_OBJECT_HANDLE;
            }
            put(pulObjectCount, found.len() as CK_ULONG)
        }
    })
}

/// `C_FindObjectsFinal` (§5.7.9).
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || {
        module()?.session(u(hSession))?.find_final()
    })
}
