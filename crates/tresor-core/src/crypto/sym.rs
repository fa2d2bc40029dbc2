//! AES (ECB, CBC, CBC-PAD, CTR, GCM, KW, KWP) and ChaCha20-Poly1305.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::{CipherCtx, CipherCtxFlags};
use zeroize::Zeroizing;

use super::keys::mismatch;
use super::types::{GcmParams, KeyAlg, Mechanism};
use crate::bail;
use crate::error::{Error, Result, Rv};

/// OpenSSL's GCM takes IVs up to 128 bytes; longer ones go to `gcm.rs`.
const OPENSSL_MAX_IV: usize = 128;

#[derive(Clone, Copy)]
enum Mode {
    Ecb,
    Cbc,
    Ctr,
    Gcm,
    Wrap,
    WrapPad,
}

fn aes(mode: Mode, key_len: usize) -> Result<&'static CipherRef> {
    Ok(match (mode, key_len) {
        (Mode::Ecb, 16) => Cipher::aes_128_ecb(),
        (Mode::Ecb, 24) => Cipher::aes_192_ecb(),
        (Mode::Ecb, 32) => Cipher::aes_256_ecb(),
        (Mode::Cbc, 16) => Cipher::aes_128_cbc(),
        (Mode::Cbc, 24) => Cipher::aes_192_cbc(),
        (Mode::Cbc, 32) => Cipher::aes_256_cbc(),
        (Mode::Ctr, 16) => Cipher::aes_128_ctr(),
        (Mode::Ctr, 24) => Cipher::aes_192_ctr(),
        (Mode::Ctr, 32) => Cipher::aes_256_ctr(),
        (Mode::Gcm, 16) => Cipher::aes_128_gcm(),
        (Mode::Gcm, 24) => Cipher::aes_192_gcm(),
        (Mode::Gcm, 32) => Cipher::aes_256_gcm(),
        (Mode::Wrap, 16) => Cipher::aes_128_wrap(),
        (Mode::Wrap, 24) => Cipher::aes_192_wrap(),
        (Mode::Wrap, 32) => Cipher::aes_256_wrap(),
        (Mode::WrapPad, 16) => Cipher::aes_128_wrap_pad(),
        (Mode::WrapPad, 24) => Cipher::aes_192_wrap_pad(),
        (Mode::WrapPad, 32) => Cipher::aes_256_wrap_pad(),
        _ => bail!(Rv::KeySizeRange, "AES key must be 16, 24 or 32 bytes"),
    })
}

fn param(msg: &str) -> Error {
    Error::new(Rv::MechanismParamInvalid, msg)
}

fn iv16(iv: &[u8]) -> Result<&[u8]> {
    if iv.len() == 16 {
        Ok(iv)
    } else {
        Err(param("IV must be 16 bytes"))
    }
}

/// Checks that `blocks` 16-byte blocks fit the counter space of `counter_bits` low bits.
fn check_ctr(iv: &[u8], counter_bits: usize, len: usize, decrypt: bool) -> Result<()> {
    if !(1..=128).contains(&counter_bits) {
        return Err(param("counter bits must be 1..=128"));
    }
    let ctr = u128::from_be_bytes(
        iv.try_into()
            .map_err(|_| param("counter block must be 16 bytes"))?,
    );
    let blocks = len.div_ceil(16) as u128;
    let fits = if counter_bits == 128 {
        blocks <= u128::MAX - ctr || blocks == 0
    } else {
        let low = ctr & ((1u128 << counter_bits) - 1);
        blocks <= (1u128 << counter_bits) - low
    };
    if fits {
        Ok(())
    } else if decrypt {
        bail!(Rv::EncryptedDataLenRange, "data exceeds the counter space")
    } else {
        bail!(Rv::DataLenRange, "data exceeds the counter space")
    }
}

fn check_tag_bits(bits: usize) -> Result<usize> {
    if (32..=128).contains(&bits) && bits % 8 == 0 {
        Ok(bits / 8)
    } else {
        Err(param("GCM tag length must be 32..=128 bits in steps of 8"))
    }
}

/// Runs `data` through an initialised context into `out` (replacing its content).
fn run(
    ctx: &mut CipherCtx,
    data: &[u8],
    out: &mut Vec<u8>,
) -> std::result::Result<(), openssl::error::ErrorStack> {
    out.clear();
    out.resize(data.len() + 32, 0);
    let n = ctx.cipher_update(data, Some(out))?;
    let m = ctx.cipher_final(&mut out[n..])?;
    out.truncate(n + m);
    Ok(())
}

fn init(enc: bool, cipher: &CipherRef, key: &[u8], iv: Option<&[u8]>) -> Result<CipherCtx> {
    let mut ctx = CipherCtx::new()?;
    if enc {
        ctx.encrypt_init(Some(cipher), Some(key), iv)?;
    } else {
        ctx.decrypt_init(Some(cipher), Some(key), iv)?;
    }
    Ok(ctx)
}

/// An AEAD context (GCM with any IV length, or ChaCha20-Poly1305) with the AAD fed in.
fn aead_ctx(enc: bool, cipher: &CipherRef, key: &[u8], iv: &[u8], aad: &[u8]) -> Result<CipherCtx> {
    let mut ctx = CipherCtx::new()?;
    if enc {
        ctx.encrypt_init(Some(cipher), None, None)?;
        ctx.set_iv_length(iv.len())?;
        ctx.encrypt_init(None, Some(key), Some(iv))?;
    } else {
        ctx.decrypt_init(Some(cipher), None, None)?;
        ctx.set_iv_length(iv.len())?;
        ctx.decrypt_init(None, Some(key), Some(iv))?;
    }
    if !aad.is_empty() {
        ctx.cipher_update(aad, None)?;
    }
    Ok(ctx)
}

fn aead_params<'a>(
    alg: KeyAlg,
    key: &[u8],
    m: &'a Mechanism,
) -> Result<(&'static CipherRef, &'a [u8], &'a [u8], usize)> {
    match (alg, m) {
        (KeyAlg::Aes, Mechanism::AesGcm(GcmParams { iv, aad, tag_bits })) => {
            if iv.is_empty() || iv.len() > 256 {
                return Err(param("GCM IV must be 1..=256 bytes"));
            }
            Ok((
                aes(Mode::Gcm, key.len())?,
                iv,
                aad,
                check_tag_bits(*tag_bits)?,
            ))
        }
        (KeyAlg::ChaCha20, Mechanism::ChaCha20Poly1305 { nonce, aad }) => {
            if nonce.len() != 12 {
                return Err(param("ChaCha20-Poly1305 nonce must be 12 bytes"));
            }
            Ok((Cipher::chacha20_poly1305(), nonce, aad, 16))
        }
        _ => Err(mismatch(m)),
    }
}

/// Encrypts with an AES or ChaCha20 key.
pub(crate) fn encrypt(alg: KeyAlg, key: &[u8], m: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match (alg, m) {
        (KeyAlg::Aes, Mechanism::AesEcb | Mechanism::AesCbc { .. }) => {
            if data.len() % 16 != 0 {
                bail!(Rv::DataLenRange, "data must be a multiple of 16 bytes");
            }
            let mut ctx = match m {
                Mechanism::AesCbc { iv } => {
                    init(true, aes(Mode::Cbc, key.len())?, key, Some(iv16(iv)?))?
                }
                _ => init(true, aes(Mode::Ecb, key.len())?, key, None)?,
            };
            ctx.set_padding(false);
            run(&mut ctx, data, &mut out)?;
        }
        (KeyAlg::Aes, Mechanism::AesCbcPad { iv }) => {
            let mut ctx = init(true, aes(Mode::Cbc, key.len())?, key, Some(iv16(iv)?))?;
            run(&mut ctx, data, &mut out)?;
        }
        (KeyAlg::Aes, Mechanism::AesCtr { iv, counter_bits }) => {
            check_ctr(iv, *counter_bits, data.len(), false)?;
            let mut ctx = init(true, aes(Mode::Ctr, key.len())?, key, Some(iv))?;
            run(&mut ctx, data, &mut out)?;
        }
        (KeyAlg::Aes, Mechanism::AesGcm(_))
        | (KeyAlg::ChaCha20, Mechanism::ChaCha20Poly1305 { .. }) => {
            let (cipher, iv, aad, tag_len) = aead_params(alg, key, m)?;
            if iv.len() > OPENSSL_MAX_IV {
                return super::gcm::seal(aes(Mode::Ecb, key.len())?, key, iv, aad, data, tag_len);
            }
            let mut ctx = aead_ctx(true, cipher, key, iv, aad)?;
            run(&mut ctx, data, &mut out)?;
            let n = out.len();
            out.resize(n + tag_len, 0);
            ctx.tag(&mut out[n..])?;
        }
        _ => return Err(mismatch(m)),
    }
    Ok(out)
}

/// Decrypts with an AES or ChaCha20 key.
pub(crate) fn decrypt(
    alg: KeyAlg,
    key: &[u8],
    m: &Mechanism,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    let bad = |_| {
        Error::new(
            Rv::EncryptedDataInvalid,
            "decryption failed (tag or padding)",
        )
    };
    match (alg, m) {
        (
            KeyAlg::Aes,
            Mechanism::AesEcb | Mechanism::AesCbc { .. } | Mechanism::AesCbcPad { .. },
        ) => {
            if data.len() % 16 != 0 || (data.is_empty() && matches!(m, Mechanism::AesCbcPad { .. }))
            {
                bail!(
                    Rv::EncryptedDataLenRange,
                    "ciphertext must be a non-empty multiple of 16 bytes"
                );
            }
            let mut ctx = match m {
                Mechanism::AesCbc { iv } | Mechanism::AesCbcPad { iv } => {
                    init(false, aes(Mode::Cbc, key.len())?, key, Some(iv16(iv)?))?
                }
                _ => init(false, aes(Mode::Ecb, key.len())?, key, None)?,
            };
            ctx.set_padding(matches!(m, Mechanism::AesCbcPad { .. }));
            run(&mut ctx, data, &mut out).map_err(bad)?;
        }
        (KeyAlg::Aes, Mechanism::AesCtr { iv, counter_bits }) => {
            check_ctr(iv, *counter_bits, data.len(), true)?;
            let mut ctx = init(false, aes(Mode::Ctr, key.len())?, key, Some(iv))?;
            run(&mut ctx, data, &mut out)?;
        }
        (KeyAlg::Aes, Mechanism::AesGcm(_))
        | (KeyAlg::ChaCha20, Mechanism::ChaCha20Poly1305 { .. }) => {
            let (cipher, iv, aad, tag_len) = aead_params(alg, key, m)?;
            if data.len() < tag_len {
                bail!(Rv::EncryptedDataLenRange, "ciphertext shorter than the tag");
            }
            if iv.len() > OPENSSL_MAX_IV {
                return super::gcm::open(aes(Mode::Ecb, key.len())?, key, iv, aad, data, tag_len);
            }
            let (ct, tag) = data.split_at(data.len() - tag_len);
            let mut ctx = aead_ctx(false, cipher, key, iv, aad)?;
            ctx.set_tag(tag)?;
            run(&mut ctx, ct, &mut out).map_err(bad)?;
        }
        _ => return Err(mismatch(m)),
    }
    Ok(out)
}

/// AES key wrap (RFC 3394, `pad = false`) or with padding (RFC 5649).
pub(crate) fn wrap(kek: &[u8], pad: bool, target: &[u8]) -> Result<Vec<u8>> {
    if pad {
        if target.is_empty() {
            bail!(Rv::KeyNotWrappable, "nothing to wrap");
        }
    } else if target.len() < 16 || target.len() % 8 != 0 {
        bail!(
            Rv::KeyNotWrappable,
            "AES-KW needs a multiple of 8 bytes, at least 16"
        );
    }
    let mode = if pad { Mode::WrapPad } else { Mode::Wrap };
    let mut ctx = CipherCtx::new()?;
    ctx.set_flags(CipherCtxFlags::FLAG_WRAP_ALLOW);
    ctx.encrypt_init(Some(aes(mode, kek.len())?), Some(kek), None)?;
    let mut out = Vec::new();
    run(&mut ctx, target, &mut out)?;
    Ok(out)
}

/// AES key unwrap (RFC 3394 / RFC 5649).
pub(crate) fn unwrap(kek: &[u8], pad: bool, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let min = if pad { 16 } else { 24 };
    if wrapped.len() < min || wrapped.len() % 8 != 0 {
        bail!(
            Rv::WrappedKeyLenRange,
            "wrapped key must be a multiple of 8 bytes, at least {min}"
        );
    }
    let mode = if pad { Mode::WrapPad } else { Mode::Wrap };
    let mut ctx = CipherCtx::new()?;
    ctx.set_flags(CipherCtxFlags::FLAG_WRAP_ALLOW);
    ctx.decrypt_init(Some(aes(mode, kek.len())?), Some(kek), None)?;
    let mut out = Zeroizing::new(Vec::new());
    run(&mut ctx, wrapped, &mut out)
        .map_err(|_| Error::new(Rv::WrappedKeyInvalid, "key unwrap integrity check failed"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The software GCM (used for IVs over 128 bytes) agrees with OpenSSL where both work.
    #[test]
    fn soft_gcm_matches_openssl() -> Result<()> {
        for key_len in [16, 24, 32] {
            let key: Vec<u8> = (0..key_len as u8).collect();
            for (iv_len, aad_len, pt_len, tag_len) in [
                (1, 0, 0, 16),
                (12, 20, 60, 16),
                (16, 3, 33, 12),
                (60, 0, 64, 4),
                (128, 17, 100, 16),
            ] {
                let iv = vec![0xa5u8; iv_len];
                let aad = vec![0x3cu8; aad_len];
                let pt: Vec<u8> = (0..pt_len as u8).collect();
                let m = Mechanism::AesGcm(GcmParams {
                    iv: iv.clone(),
                    aad: aad.clone(),
                    tag_bits: tag_len * 8,
                });
                let want = encrypt(KeyAlg::Aes, &key, &m, &pt)?;
                let ecb = aes(Mode::Ecb, key_len)?;
                assert_eq!(
                    super::super::gcm::seal(ecb, &key, &iv, &aad, &pt, tag_len)?,
                    want
                );
                assert_eq!(
                    *super::super::gcm::open(ecb, &key, &iv, &aad, &want, tag_len)?,
                    pt
                );
            }
        }
        // A 256-byte IV round-trips, and a wrong tag is refused.
        let key = [7u8; 32];
        let m = Mechanism::AesGcm(GcmParams {
            iv: vec![1; 256],
            aad: b"aad".to_vec(),
            tag_bits: 128,
        });
        let ct = encrypt(KeyAlg::Aes, &key, &m, b"long iv")?;
        assert_eq!(&decrypt(KeyAlg::Aes, &key, &m, &ct)?[..], b"long iv");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            decrypt(KeyAlg::Aes, &key, &m, &bad).map_err(|e| e.rv()),
            Err(Rv::EncryptedDataInvalid)
        );
        Ok(())
    }
}
