//! Key management (§5.15), random numbers (§5.16) and the legacy parallel functions (§5.17).

use super::*;

// ---- keys (§5.15) ----------------------------------------------------------------------------

/// `C_GenerateKey` (§5.15.1).
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_GenerateKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of §5.15.1.
        let (mech, t) = unsafe {
            (
                params::mechanism(pMechanism)?,
                template(pTemplate, ulCount)?,
            )
        };
        if phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let h = s.generate_key(&mech, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { put(phKey, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_GenerateKeyPair` (§5.15.2).
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_GenerateKeyPair", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of §5.15.2.
        let (mech, pt, st) = unsafe {
            (
                params::mechanism(pMechanism)?,
                template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(Error::args("NULL key pointers"));
        }
        let (public, private) = s.generate_key_pair(&mech, &pt, &st)?;
        // SAFETY: checked non-NULL.
        unsafe {
            put(phPublicKey, public as CK_OBJECT_HANDLE)?;
            put(phPrivateKey, private as CK_OBJECT_HANDLE)
        }
    })
}

/// `C_WrapKey` (§5.15.3).
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_WrapKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of §5.15.3.
        let (mech, cap) = unsafe {
            (
                params::mechanism(pMechanism)?,
                capacity(pWrappedKey, pulWrappedKeyLen)?,
            )
        };
        let out = s.wrap_key(&mech, u(hWrappingKey), u(hKey), cap)?;
        // SAFETY: as above.
        unsafe { deliver(pWrappedKey, pulWrappedKeyLen, out) }
    })
}

/// `C_UnwrapKey` (§5.15.4).
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_UnwrapKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of §5.15.4.
        let (mech, wrapped, t) = unsafe {
            (
                params::mechanism(pMechanism)?,
                bytes(pWrappedKey, ulWrappedKeyLen)?,
                template(pTemplate, ulAttributeCount)?,
            )
        };
        if phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let h = s.unwrap_key(&mech, u(hUnwrappingKey), wrapped, &t)?;
        // SAFETY: checked non-NULL.
        unsafe { put(phKey, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_WrapKeyAuthenticated` (3.2): `C_WrapKey` with an AEAD mechanism and associated data
/// that the unwrapping must present again.
pub unsafe extern "C" fn C_WrapKeyAuthenticated(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_WrapKeyAuthenticated", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of the 3.2 function: as for C_WrapKey, plus the associated
        // data (NULL allowed when its length is 0).
        let (mech, ad, cap) = unsafe {
            (
                params::mechanism(pMechanism)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
                capacity(pWrappedKey, pulWrappedKeyLen)?,
            )
        };
        let out = s.wrap_key_authenticated(&mech, u(hWrappingKey), u(hKey), ad, cap)?;
        // SAFETY: as above.
        unsafe { deliver(pWrappedKey, pulWrappedKeyLen, out) }
    })
}

/// `C_UnwrapKeyAuthenticated` (3.2).
pub unsafe extern "C" fn C_UnwrapKeyAuthenticated(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    pAssociatedData: *mut CK_BYTE,
    ulAssociatedDataLen: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_UnwrapKeyAuthenticated", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of the 3.2 function: as for C_UnwrapKey, plus the associated
        // data (NULL allowed when its length is 0).
        let (mech, wrapped, t, ad) = unsafe {
            (
                params::mechanism(pMechanism)?,
                bytes(pWrappedKey, ulWrappedKeyLen)?,
                template(pTemplate, ulAttributeCount)?,
                bytes(pAssociatedData, ulAssociatedDataLen)?,
            )
        };
        if phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let h = s.unwrap_key_authenticated(&mech, u(hUnwrappingKey), wrapped, &t, ad)?;
        // SAFETY: checked non-NULL.
        unsafe { put(phKey, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_DeriveKey` (§5.15.5).
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DeriveKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of §5.15.5.
        let (mech, t) = unsafe {
            (
                params::mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
            )
        };
        if phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let h = s.derive_key(&mech, u(hBaseKey), &t)?;
        // SAFETY: checked non-NULL.
        unsafe { put(phKey, h as CK_OBJECT_HANDLE) }
    })
}

/// `C_EncapsulateKey` (3.2).
pub unsafe extern "C" fn C_EncapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hPublicKey: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    pCiphertext: *mut CK_BYTE,
    pulCiphertextLen: *mut CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_EncapsulateKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of the 3.2 function.
        let (mech, t, cap) = unsafe {
            (
                params::mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
                capacity(pCiphertext, pulCiphertextLen)?,
            )
        };
        if cap.is_some() && phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let (out, h) = s.encapsulate(&mech, u(hPublicKey), &t, cap)?;
        let created = matches!(out, Out::Data(_));
        // SAFETY: as above; the key handle only when a key was created.
        unsafe {
            deliver(pCiphertext, pulCiphertextLen, out)?;
            if created {
                put(phKey, h as CK_OBJECT_HANDLE)?;
            }
        }
        Ok(())
    })
}

/// `C_DecapsulateKey` (3.2).
pub unsafe extern "C" fn C_DecapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hPrivateKey: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    pCiphertext: *mut CK_BYTE,
    ulCiphertextLen: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DecapsulateKey", || {
        let s = module()?.session(u(hSession))?;
        // SAFETY: the arguments of the 3.2 function.
        let (mech, t, ct) = unsafe {
            (
                params::mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
                bytes(pCiphertext, ulCiphertextLen)?,
            )
        };
        if phKey.is_null() {
            return Err(Error::args("NULL key pointer"));
        }
        let h = s.decapsulate(&mech, u(hPrivateKey), &t, ct)?;
        // SAFETY: checked non-NULL.
        unsafe { put(phKey, h as CK_OBJECT_HANDLE) }
    })
}

// ---- random (§5.16) --------------------------------------------------------------------------

/// `C_SeedRandom` (§5.16.1): the HSM's generator takes no seed.
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    _pSeed: *mut CK_BYTE,
    _ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard("C_SeedRandom", || {
        module()?.session(u(hSession))?;
        Err(Error::new(
            ck::CKR_RANDOM_SEED_NOT_SUPPORTED,
            "the HSM takes no seed",
        ))
    })
}

/// `C_GenerateRandom` (§5.16.2).
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard("C_GenerateRandom", || {
        let s = module()?.session(u(hSession))?;
        if ulRandomLen == 0 {
            return Ok(());
        }
        if RandomData.is_null() {
            return Err(Error::args("NULL buffer"));
        }
        let r = s.random(ulRandomLen as usize)?;
        // SAFETY: `RandomData` holds `ulRandomLen` = `r.len()` bytes (§5.16.2).
        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), RandomData, r.len()) };
        Ok(())
    })
}

// ---- legacy parallel functions (§5.17) --------------------------------------------------------

/// `C_GetFunctionStatus` (§5.17.1).
pub unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || {
        module()?.session(u(hSession))?;
        Err(Error::new(ck::CKR_FUNCTION_NOT_PARALLEL, "legacy function"))
    })
}

/// `C_CancelFunction` (§5.17.2).
pub unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || {
        module()?.session(u(hSession))?;
        Err(Error::new(ck::CKR_FUNCTION_NOT_PARALLEL, "legacy function"))
    })
}
