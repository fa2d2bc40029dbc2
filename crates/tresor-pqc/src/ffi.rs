//! The FFI calls, each wrapped in a safe function.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::pkey::{HasPrivate, HasPublic, PKey, PKeyRef, Private};
use openssl_sys as sys;
use zeroize::Zeroizing;

/// An owned `EVP_PKEY_CTX`, freed on drop.
struct Ctx(*mut sys::EVP_PKEY_CTX);

impl Ctx {
    /// Takes ownership of `p`; `Err` with the OpenSSL error stack if `p` is null.
    fn from_raw(p: *mut sys::EVP_PKEY_CTX) -> Result<Ctx, ErrorStack> {
        if p.is_null() {
            Err(ErrorStack::get())
        } else {
            Ok(Ctx(p))
        }
    }

    /// A context for an existing key.
    fn for_key<T>(pkey: &PKeyRef<T>) -> Result<Ctx, ErrorStack> {
        // SAFETY: `pkey.as_ptr()` is a valid EVP_PKEY for the duration of the call; the new
        // context takes its own reference on the key (EVP_PKEY_CTX_new up-refs it), so the
        // context stays valid even if `pkey` is dropped first. A null engine is allowed.
        Ctx::from_raw(unsafe { sys::EVP_PKEY_CTX_new(pkey.as_ptr(), ptr::null_mut()) })
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a non-null context we own and free exactly once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

/// `1` means success for every call used here.
fn check(rc: std::os::raw::c_int) -> Result<(), ErrorStack> {
    if rc == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// Generates a key pair of the algorithm `name` (an OpenSSL key type name such as
/// `c"ML-DSA-65"`, `c"ML-KEM-768"` or `c"SLH-DSA-SHA2-128s"`), from the default library context.
pub fn generate(name: &CStr) -> Result<PKey<Private>, ErrorStack> {
    openssl::init();
    // SAFETY: `name` is a valid NUL-terminated string; null library context and property
    // query select the defaults. The result is checked for null by `from_raw`.
    let ctx = Ctx::from_raw(unsafe {
        sys::EVP_PKEY_CTX_new_from_name(ptr::null_mut(), name.as_ptr(), ptr::null())
    })?;
    // SAFETY: `ctx.0` is a valid, owned context.
    check(unsafe { sys::EVP_PKEY_keygen_init(ctx.0) })?;
    let mut key: *mut sys::EVP_PKEY = ptr::null_mut();
    // SAFETY: `ctx.0` is a keygen-initialised context; `key` is a valid out-pointer that
    // receives a new key we own on success.
    let rc = unsafe { sys::EVP_PKEY_generate(ctx.0, &mut key) };
    if rc != 1 || key.is_null() {
        if !key.is_null() {
            // SAFETY: a non-null key returned to us is ours to free.
            unsafe { sys::EVP_PKEY_free(key) };
        }
        return Err(ErrorStack::get());
    }
    // SAFETY: `key` is a non-null EVP_PKEY holding a private key whose ownership we pass to
    // the `PKey`, which frees it on drop.
    Ok(unsafe { PKey::from_ptr(key) })
}

/// KEM encapsulation against the public half of `pkey`: returns (ciphertext, shared secret).
pub fn encapsulate<T: HasPublic>(
    pkey: &PKeyRef<T>,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), ErrorStack> {
    let ctx = Ctx::for_key(pkey)?;
    // SAFETY: valid owned context; null params.
    check(unsafe { sys::EVP_PKEY_encapsulate_init(ctx.0, ptr::null()) })?;
    let (mut ct_len, mut ss_len) = (0usize, 0usize);
    // SAFETY: null output buffers ask for the lengths, written to the two valid out-pointers.
    check(unsafe {
        sys::EVP_PKEY_encapsulate(
            ctx.0,
            ptr::null_mut(),
            &mut ct_len,
            ptr::null_mut(),
            &mut ss_len,
        )
    })?;
    let mut ct = vec![0u8; ct_len];
    let mut ss = Zeroizing::new(vec![0u8; ss_len]);
    // SAFETY: `ct` and `ss` are writable buffers of exactly the lengths OpenSSL reported; the
    // length out-pointers are valid and receive the lengths written.
    check(unsafe {
        sys::EVP_PKEY_encapsulate(
            ctx.0,
            ct.as_mut_ptr(),
            &mut ct_len,
            ss.as_mut_ptr(),
            &mut ss_len,
        )
    })?;
    ct.truncate(ct_len);
    ss.truncate(ss_len);
    Ok((ct, ss))
}

/// KEM decapsulation of `ciphertext` with the private key `pkey`: returns the shared secret.
pub fn decapsulate<T: HasPrivate>(
    pkey: &PKeyRef<T>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    let ctx = Ctx::for_key(pkey)?;
    // SAFETY: valid owned context; null params.
    check(unsafe { sys::EVP_PKEY_decapsulate_init(ctx.0, ptr::null()) })?;
    let mut ss_len = 0usize;
    // SAFETY: null output asks for the length; `ciphertext` is a valid readable slice.
    check(unsafe {
        sys::EVP_PKEY_decapsulate(
            ctx.0,
            ptr::null_mut(),
            &mut ss_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    let mut ss = Zeroizing::new(vec![0u8; ss_len]);
    // SAFETY: `ss` is writable with the reported length; `ciphertext` is readable.
    check(unsafe {
        sys::EVP_PKEY_decapsulate(
            ctx.0,
            ss.as_mut_ptr(),
            &mut ss_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    ss.truncate(ss_len);
    Ok(ss)
}

/// Whether `pkey` is a key of the algorithm named `name` (e.g. `c"SLH-DSA-SHA2-128s"`).
pub fn is_a<T>(pkey: &PKeyRef<T>, name: &CStr) -> bool {
    // SAFETY: `pkey` is a valid key and `name` a valid NUL-terminated string for the call;
    // the function only reads them.
    unsafe { sys::EVP_PKEY_is_a(pkey.as_ptr(), name.as_ptr()) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlkem_round_trip() -> Result<(), ErrorStack> {
        let k = generate(c"ML-KEM-768")?;
        assert!(is_a(&k, c"ML-KEM-768"));
        assert!(!is_a(&k, c"ML-KEM-512"));
        let (ct, ss) = encapsulate(&k)?;
        assert_eq!(ct.len(), 1088);
        assert_eq!(ss.len(), 32);
        assert_eq!(*decapsulate(&k, &ct)?, *ss);
        assert!(decapsulate(&k, &ct[..100]).is_err());
        Ok(())
    }

    #[test]
    fn unknown_name_fails() {
        assert!(generate(c"NO-SUCH-ALG").is_err());
    }

    #[test]
    fn slh_dsa_generates() -> Result<(), ErrorStack> {
        let k = generate(c"SLH-DSA-SHA2-128f")?;
        assert!(is_a(&k, c"SLH-DSA-SHA2-128f"));
        Ok(())
    }
}
