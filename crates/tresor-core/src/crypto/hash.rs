//! Digests, HMAC and the ANSI X9.63 KDF.

use std::sync::OnceLock;

use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;
use openssl::pkey::{PKey, Private};
use zeroize::Zeroizing;

use super::types::HashAlg;
use crate::bail;
use crate::error::{Error, Result, Rv};

/// Output length in bytes of `h`.
pub fn hash_len(h: HashAlg) -> usize {
    match h {
        HashAlg::Sha1 => 20,
        HashAlg::Sha224 | HashAlg::Sha3_224 | HashAlg::Keccak224 => 28,
        HashAlg::Sha256 | HashAlg::Sha3_256 | HashAlg::Keccak256 => 32,
        HashAlg::Sha384 | HashAlg::Sha3_384 | HashAlg::Keccak384 => 48,
        HashAlg::Sha512 | HashAlg::Sha3_512 | HashAlg::Keccak512 => 64,
    }
}

/// Whether `h` is one of the original-padding Keccak functions (not usable in DigestInfo,
/// PSS or OAEP).
pub fn is_keccak(h: HashAlg) -> bool {
    matches!(
        h,
        HashAlg::Keccak224 | HashAlg::Keccak256 | HashAlg::Keccak384 | HashAlg::Keccak512
    )
}

/// Keccak digests are provider-only (no static `EVP_MD`), fetched once and cached.
fn keccak(idx: usize) -> Result<&'static MdRef> {
    static CACHE: [OnceLock<Md>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    const NAMES: [&str; 4] = ["KECCAK-224", "KECCAK-256", "KECCAK-384", "KECCAK-512"];
    let slot = &CACHE[idx];
    if let Some(md) = slot.get() {
        return Ok(md);
    }
    let md = Md::fetch(None, NAMES[idx], None)?;
    Ok(slot.get_or_init(|| md))
}

/// The OpenSSL message digest for `h`.
pub fn md(h: HashAlg) -> Result<&'static MdRef> {
    Ok(match h {
        HashAlg::Sha1 => Md::sha1(),
        HashAlg::Sha224 => Md::sha224(),
        HashAlg::Sha256 => Md::sha256(),
        HashAlg::Sha384 => Md::sha384(),
        HashAlg::Sha512 => Md::sha512(),
        HashAlg::Sha3_224 => Md::sha3_224(),
        HashAlg::Sha3_256 => Md::sha3_256(),
        HashAlg::Sha3_384 => Md::sha3_384(),
        HashAlg::Sha3_512 => Md::sha3_512(),
        HashAlg::Keccak224 => keccak(0)?,
        HashAlg::Keccak256 => keccak(1)?,
        HashAlg::Keccak384 => keccak(2)?,
        HashAlg::Keccak512 => keccak(3)?,
    })
}

/// `md(h)` but refusing Keccak (for RSA DigestInfo / PSS / OAEP / MGF1): `MechanismParamInvalid`.
pub fn md_no_keccak(h: HashAlg) -> Result<&'static MdRef> {
    if is_keccak(h) {
        return Err(Error::new(
            Rv::MechanismParamInvalid,
            "Keccak is not defined for this mechanism",
        ));
    }
    md(h)
}

/// Hashes `data` with `h` into a stack buffer; returns the buffer and the length.
pub fn digest_into(h: HashAlg, data: &[u8]) -> Result<([u8; 64], usize)> {
    let mut ctx = MdCtx::new()?;
    ctx.digest_init(md(h)?)?;
    ctx.digest_update(data)?;
    let mut out = [0u8; 64];
    let n = ctx.digest_final(&mut out)?;
    Ok((out, n))
}

/// The digest of `data` with `h` (`CKM_SHA256` etc.).
pub fn digest(h: HashAlg, data: &[u8]) -> Result<Vec<u8>> {
    let (buf, n) = digest_into(h, data)?;
    Ok(buf[..n].to_vec())
}

/// HMAC of `data` under the prepared HMAC key `key` with hash `h`.
pub fn hmac(key: &PKey<Private>, h: HashAlg, data: &[u8]) -> Result<Vec<u8>> {
    let mut ctx = MdCtx::new()?;
    ctx.digest_sign_init(Some(md(h)?), key)?;
    let mut out = Vec::with_capacity(hash_len(h));
    ctx.digest_sign_to_vec(data, &mut out)?;
    Ok(out)
}

/// ANSI X9.63 KDF: `K = H(Z‖1‖S) ‖ H(Z‖2‖S) ‖ …`, truncated to `out_len` bytes.
pub fn x963_kdf(h: HashAlg, z: &[u8], shared: &[u8], out_len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if out_len == 0 {
        bail!(Rv::MechanismParamInvalid, "X9.63 KDF needs a key length");
    }
    let m = md(h)?;
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + 64));
    let mut counter: u32 = 1;
    let mut ctx = MdCtx::new()?;
    let mut block = Zeroizing::new([0u8; 64]);
    while out.len() < out_len {
        ctx.digest_init(m)?;
        ctx.digest_update(z)?;
        ctx.digest_update(&counter.to_be_bytes())?;
        ctx.digest_update(shared)?;
        let n = ctx.digest_final(&mut block[..])?;
        out.extend_from_slice(&block[..n]);
        counter = counter
            .checked_add(1)
            .ok_or_else(|| Error::new(Rv::KeySizeRange, "X9.63 KDF output too long"))?;
    }
    out.truncate(out_len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abc_vectors() -> Result<()> {
        assert_eq!(
            hex::encode(digest(HashAlg::Sha256, b"abc")?),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(digest(HashAlg::Keccak256, b"")?),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        for h in [
            HashAlg::Sha1,
            HashAlg::Sha3_512,
            HashAlg::Keccak384,
            HashAlg::Sha224,
        ] {
            assert_eq!(digest(h, b"x")?.len(), hash_len(h));
        }
        Ok(())
    }

    #[test]
    fn kdf_lengths() -> Result<()> {
        let k = x963_kdf(HashAlg::Sha256, b"z", b"", 45)?;
        assert_eq!(k.len(), 45);
        let k2 = x963_kdf(HashAlg::Sha256, b"z", b"", 32)?;
        assert_eq!(k[..32], k2[..]);
        Ok(())
    }
}
