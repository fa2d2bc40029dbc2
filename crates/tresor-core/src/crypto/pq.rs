//! ML-DSA (FIPS 204), SLH-DSA (FIPS 205) and ML-KEM (FIPS 203).

use openssl::md_ctx::MdCtx;
use openssl::pkey::{PKey, Private, Public};
use zeroize::Zeroizing;

use super::keys::mismatch;
use super::types::{KeyAlg, Mechanism, MlDsaParam, MlKemParam, SlhDsaParam};
use crate::bail;
use crate::error::{Error, Result, Rv};

/// ML-DSA signature length.
pub(crate) fn mldsa_sig_len(p: MlDsaParam) -> usize {
    match p {
        MlDsaParam::MlDsa44 => 2420,
        MlDsaParam::MlDsa65 => 3309,
        MlDsaParam::MlDsa87 => 4627,
    }
}

/// SLH-DSA signature length.
pub(crate) fn slhdsa_sig_len(p: SlhDsaParam) -> usize {
    use SlhDsaParam::*;
    match p {
        Sha2_128s | Shake128s => 7856,
        Sha2_128f | Shake128f => 17088,
        Sha2_192s | Shake192s => 16224,
        Sha2_192f | Shake192f => 35664,
        Sha2_256s | Shake256s => 29792,
        Sha2_256f | Shake256f => 49856,
    }
}

/// ML-KEM ciphertext length.
pub(crate) fn mlkem_ct_len(p: MlKemParam) -> usize {
    match p {
        MlKemParam::MlKem512 => 768,
        MlKemParam::MlKem768 => 1088,
        MlKemParam::MlKem1024 => 1568,
    }
}

/// The context string of a mechanism fitting `alg`, and the exact signature length.
fn context(alg: KeyAlg, m: &Mechanism) -> Result<(&[u8], usize)> {
    let (ctx, len) = match (alg, m) {
        (KeyAlg::MlDsa(p), Mechanism::MlDsa { context }) => (context, mldsa_sig_len(p)),
        (KeyAlg::SlhDsa(p), Mechanism::SlhDsa { context }) => (context, slhdsa_sig_len(p)),
        _ => return Err(mismatch(m)),
    };
    if ctx.len() > 255 {
        bail!(
            Rv::MechanismParamInvalid,
            "context string longer than 255 bytes"
        );
    }
    Ok((ctx, len))
}

/// The aws-lc-rs ML-DSA key for the fast signing path (pure mode, empty context), if aws-lc-rs
/// accepts the PKCS#8 encoding; `Fast::None` otherwise (OpenSSL then signs).
pub(crate) fn fast_mldsa(p: MlDsaParam, pkcs8_der: &[u8]) -> super::keys::Fast {
    use aws_lc_rs::signature as sig;
    let alg = match p {
        MlDsaParam::MlDsa44 => &sig::ML_DSA_44_SIGNING,
        MlDsaParam::MlDsa65 => &sig::ML_DSA_65_SIGNING,
        MlDsaParam::MlDsa87 => &sig::ML_DSA_87_SIGNING,
    };
    match sig::PqdsaKeyPair::from_pkcs8(alg, pkcs8_der) {
        Ok(k) => super::keys::Fast::MlDsa(k),
        Err(_) => super::keys::Fast::None,
    }
}

/// Signs with aws-lc-rs (pure ML-DSA, empty context; FIPS 204 hedged signing).
pub(crate) fn sign_fast_mldsa(
    k: &aws_lc_rs::signature::PqdsaKeyPair,
    data: &[u8],
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; k.algorithm().signature_len()];
    let n = k
        .sign(data, &mut out)
        .map_err(|_| Error::new(Rv::FunctionFailed, "ML-DSA signing failed"))?;
    out.truncate(n);
    Ok(out)
}

/// Signs `data` (pure mode, with the mechanism's context string).
pub(crate) fn sign(
    alg: KeyAlg,
    key: &PKey<Private>,
    m: &Mechanism,
    data: &[u8],
) -> Result<Vec<u8>> {
    let (ctx_str, len) = context(alg, m)?;
    let mut ctx = MdCtx::new()?;
    let pctx = ctx.digest_sign_init(None, key)?;
    if !ctx_str.is_empty() {
        pctx.set_context_string(ctx_str)?;
    }
    let mut out = Vec::with_capacity(len);
    ctx.digest_sign_to_vec(data, &mut out)?;
    Ok(out)
}

/// Verifies a signature made by [`sign`].
pub(crate) fn verify(
    alg: KeyAlg,
    key: &PKey<Public>,
    m: &Mechanism,
    data: &[u8],
    sig: &[u8],
) -> Result<()> {
    let (ctx_str, len) = context(alg, m)?;
    if sig.len() != len {
        bail!(Rv::SignatureLenRange, "signature must be {len} bytes");
    }
    let mut ctx = MdCtx::new()?;
    let pctx = ctx.digest_verify_init(None, key)?;
    if !ctx_str.is_empty() {
        pctx.set_context_string(ctx_str)?;
    }
    if ctx.digest_verify(data, sig).unwrap_or(false) {
        Ok(())
    } else {
        Err(Error::new(
            Rv::SignatureInvalid,
            "signature does not verify",
        ))
    }
}

/// ML-KEM decapsulation.
pub(crate) fn decapsulate(
    p: MlKemParam,
    key: &PKey<Private>,
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if ct.len() != mlkem_ct_len(p) {
        bail!(
            Rv::EncryptedDataLenRange,
            "ML-KEM ciphertext must be {} bytes",
            mlkem_ct_len(p)
        );
    }
    tresor_pqc::decapsulate(key, ct)
        .map_err(|_| Error::new(Rv::EncryptedDataInvalid, "ML-KEM decapsulation failed"))
}
