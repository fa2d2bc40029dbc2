//! AES-GCM for IVs longer than OpenSSL accepts (129..=256 bytes; OpenSSL stops at 128).
//!
//! SP 800-38D with a software GHASH: `J0 = GHASH(IV ‖ pad ‖ [len(IV)]64)`, CTR from
//! `inc32(J0)` (the AES block operations come from OpenSSL's AES-ECB), tag
//! `GHASH(A ‖ pad ‖ C ‖ pad ‖ lens) ⊕ E(K, J0)`. Slow but rare; cross-checked in the tests
//! against OpenSSL for the IV lengths both support.

use openssl::cipher::CipherRef;
use openssl::cipher_ctx::CipherCtx;
use zeroize::Zeroizing;

use crate::bail;
use crate::error::{Error, Result, Rv};

/// Multiplication in GF(2^128) with the GCM bit order (SP 800-38D Algorithm 1).
fn gmul(x: u128, y: u128) -> u128 {
    const R: u128 = 0xe1 << 120;
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ R } else { v >> 1 };
    }
    z
}

/// Absorbs `data` zero-padded to whole blocks into the GHASH state `y`.
fn ghash_update(h: u128, y: &mut u128, data: &[u8]) {
    for chunk in data.chunks(16) {
        let mut b = [0u8; 16];
        b[..chunk.len()].copy_from_slice(chunk);
        *y = gmul(*y ^ u128::from_be_bytes(b), h);
    }
}

/// AES-ECB of whole blocks in place.
fn ecb(ecb: &CipherRef, key: &[u8], blocks: &mut [u8]) -> Result<()> {
    let mut ctx = CipherCtx::new()?;
    ctx.encrypt_init(Some(ecb), Some(key), None)?;
    ctx.set_padding(false);
    let mut out = Zeroizing::new(vec![0u8; blocks.len() + 16]);
    let n = ctx.cipher_update(blocks, Some(&mut out))?;
    if n != blocks.len() {
        bail!(Rv::GeneralError, "AES-ECB produced a short output");
    }
    blocks.copy_from_slice(&out[..n]);
    Ok(())
}

/// Tag over (aad, ciphertext) with `J0`, truncated to `tag_len`.
fn tag(h: u128, ek_j0: u128, aad: &[u8], ct: &[u8], tag_len: usize) -> Vec<u8> {
    let mut y = 0u128;
    ghash_update(h, &mut y, aad);
    ghash_update(h, &mut y, ct);
    let lens = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    y = gmul(y ^ lens, h);
    (y ^ ek_j0).to_be_bytes()[..tag_len].to_vec()
}

/// Encrypts (`enc`) or decrypts `data` (ciphertext without the tag) and returns the output
/// with the computed tag. `ecb_cipher` is the AES-ECB cipher for the key size.
fn ctr_and_tag(
    ecb_cipher: &CipherRef,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    enc: bool,
    tag_len: usize,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let mut hb = [0u8; 16];
    ecb(ecb_cipher, key, &mut hb)?;
    let h = u128::from_be_bytes(hb);
    let j0 = if iv.len() == 12 {
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(iv);
        b[15] = 1;
        u128::from_be_bytes(b)
    } else {
        let mut y = 0u128;
        ghash_update(h, &mut y, iv);
        gmul(y ^ (iv.len() as u128 * 8), h)
    };
    // Counter blocks J0, inc32(J0), inc32^2(J0), … (the first one masks the tag).
    let blocks = data.len().div_ceil(16) + 1;
    let mut ks = Zeroizing::new(vec![0u8; blocks * 16]);
    let hi = j0 & !0xffff_ffffu128;
    let mut ctr = j0 as u32;
    for b in ks.chunks_mut(16) {
        b.copy_from_slice(&(hi | ctr as u128).to_be_bytes());
        ctr = ctr.wrapping_add(1);
    }
    ecb(ecb_cipher, key, &mut ks)?;
    let mut ek_j0 = [0u8; 16];
    ek_j0.copy_from_slice(&ks[..16]);
    let out: Zeroizing<Vec<u8>> =
        Zeroizing::new(data.iter().zip(&ks[16..]).map(|(d, k)| d ^ k).collect());
    let ct: &[u8] = if enc { &out } else { data };
    let t = tag(h, u128::from_be_bytes(ek_j0), aad, ct, tag_len);
    Ok((out, t))
}

/// GCM encryption: ciphertext ‖ tag.
pub(crate) fn seal(
    ecb_cipher: &CipherRef,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    pt: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>> {
    let (ct, t) = ctr_and_tag(ecb_cipher, key, iv, aad, pt, true, tag_len)?;
    let mut out = ct.to_vec();
    out.extend_from_slice(&t);
    Ok(out)
}

/// GCM decryption of ciphertext ‖ tag (`EncryptedDataInvalid` on a tag mismatch).
pub(crate) fn open(
    ecb_cipher: &CipherRef,
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let (ct, want) = data.split_at(data.len() - tag_len);
    let (pt, t) = ctr_and_tag(ecb_cipher, key, iv, aad, ct, false, tag_len)?;
    if !openssl::memcmp::eq(&t, want) {
        return Err(Error::new(Rv::EncryptedDataInvalid, "GCM tag mismatch"));
    }
    Ok(pt)
}
