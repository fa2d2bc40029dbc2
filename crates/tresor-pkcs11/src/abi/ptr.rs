//! Raw pointers in, safe values out, and back. Every function here is `unsafe` with one
//! precondition: the pointers are those the application passed to a PKCS#11 function, which
//! the standard requires to be valid for the lengths given with them (or NULL where the
//! standard allows it; NULL is checked here, never dereferenced).

use std::os::raw::c_void;

use cryptoki_sys::{CK_ATTRIBUTE, CK_ULONG};
use zeroize::Zeroizing;

use crate::attrs::RawAttr;
use crate::ck::*;
use crate::error::{Error, Result};
use crate::session::Out;

/// Largest template accepted (attributes), against garbage counts.
const MAX_TEMPLATE: CK_ULONG = 4096;

/// `len` bytes at `p` (NULL allowed only with length 0).
///
/// # Safety
/// `p` must be valid for reads of `len` bytes when it is not NULL.
pub unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if p.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::args("NULL buffer with a non-zero length"));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|l| isize::try_from(*l).is_ok())
        .ok_or_else(|| Error::args("length out of range"))?;
    // SAFETY: non-NULL and, per the caller's contract, valid for `len` bytes (≤ isize::MAX).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The capacity of an output buffer: `None` for a length query (NULL buffer).
///
/// # Safety
/// `len` must be valid for reads when not NULL.
pub unsafe fn capacity(out: *const u8, len: *const CK_ULONG) -> Result<Option<usize>> {
    if len.is_null() {
        return Err(Error::args("NULL length pointer"));
    }
    if out.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid per the caller's contract.
    let n = unsafe { *len };
    Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))
}

/// Delivers an [`Out`]: writes the length and, for data, the bytes; a short buffer is
/// `CKR_BUFFER_TOO_SMALL` with the needed length written.
///
/// # Safety
/// `out` must be valid for writes of `*len` bytes when not NULL; `len` valid for writes.
pub unsafe fn deliver(out: *mut u8, len: *mut CK_ULONG, o: Out) -> Result<()> {
    if len.is_null() {
        return Err(Error::args("NULL length pointer"));
    }
    match o {
        Out::Len(n) => {
            // SAFETY: `len` is non-NULL and writable.
            unsafe { *len = n as CK_ULONG };
            Ok(())
        }
        Out::TooSmall(n) => {
            // SAFETY: as above.
            unsafe { *len = n as CK_ULONG };
            Err(Error::new(
                CKR_BUFFER_TOO_SMALL,
                format!("{n} bytes needed"),
            ))
        }
        Out::Data(d) => {
            if !d.is_empty() {
                if out.is_null() {
                    return Err(Error::args("NULL output buffer"));
                }
                // SAFETY: `out` holds at least `*len` ≥ `d.len()` bytes (the safe layer
                // only returns data that fits the capacity read from `*len`).
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), out, d.len()) };
            }
            // SAFETY: as above.
            unsafe { *len = d.len() as CK_ULONG };
            Ok(())
        }
    }
}

/// Writes one value through an output pointer (NULL is `CKR_ARGUMENTS_BAD`).
///
/// # Safety
/// `p` must be valid for writes when not NULL.
pub unsafe fn put<T>(p: *mut T, v: T) -> Result<()> {
    if p.is_null() {
        return Err(Error::args("NULL output pointer"));
    }
    // SAFETY: non-NULL and writable per the caller's contract.
    unsafe { p.write(v) };
    Ok(())
}

/// The attributes of a template, values copied (NULL template allowed only with count 0).
///
/// # Safety
/// `p` must be valid for `n` attributes whose `pValue` are valid for `ulValueLen` bytes.
pub unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Vec<RawAttr>> {
    if n > MAX_TEMPLATE {
        return Err(Error::args("template too large"));
    }
    // SAFETY: forwarded contract (CK_ATTRIBUTE has the alignment C gives it).
    let attrs = unsafe { slice(p, n)? };
    attrs
        .iter()
        .map(|a| {
            // SAFETY: `pValue` is valid for `ulValueLen` bytes per the contract.
            let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen)? };
            Ok((a.type_ as u64, Zeroizing::new(v.to_vec())))
        })
        .collect()
}

/// `n` elements at `p` (NULL allowed only with count 0).
///
/// # Safety
/// `p` must be valid for reads of `n` elements when not NULL.
pub unsafe fn slice<'a, T>(p: *const T, n: CK_ULONG) -> Result<&'a [T]> {
    if p.is_null() {
        if n == 0 {
            return Ok(&[]);
        }
        return Err(Error::args("NULL array with a non-zero count"));
    }
    let n = usize::try_from(n)
        .ok()
        .filter(|n| {
            n.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| isize::try_from(b).is_ok())
        })
        .ok_or_else(|| Error::args("count out of range"))?;
    // SAFETY: non-NULL and valid for `n` elements per the caller's contract (their total
    // size fits `isize`).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// A copy of a `T` at `p` if `len` is exactly its size (`None` otherwise or if NULL).
///
/// # Safety
/// `p` must be valid for reads of `len` bytes when not NULL.
pub unsafe fn read_struct<T: Copy>(p: *const c_void, len: CK_ULONG) -> Option<T> {
    if p.is_null() || usize::try_from(len).ok() != Some(std::mem::size_of::<T>()) {
        return None;
    }
    // SAFETY: `len` bytes are readable and equal `size_of::<T>()`; `T` is plain C data
    // (integers and pointers) for which every bit pattern is valid; no alignment assumed.
    Some(unsafe { std::ptr::read_unaligned(p as *const T) })
}
