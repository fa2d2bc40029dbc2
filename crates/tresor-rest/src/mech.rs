//! Securosys algorithm names → `tresor-proto` mechanisms, and the signature encodings the
//! REST API uses (ECDSA DER ↔ the raw `r ‖ s` of PKCS#11).

use tresor_proto::{GcmParams, HashAlg, Mechanism, OaepParams, PssParams};

use crate::dto::{CipherAlgorithm, SignatureAlgorithm, WrapMethod};
use crate::error::{code, ApiError, ApiResult};
use crate::tenant::KeyKind;

fn hash_len(h: HashAlg) -> usize {
    match h {
        HashAlg::Sha1 => 20,
        HashAlg::Sha224 | HashAlg::Sha3_224 | HashAlg::Keccak224 => 28,
        HashAlg::Sha256 | HashAlg::Sha3_256 | HashAlg::Keccak256 => 32,
        HashAlg::Sha384 | HashAlg::Sha3_384 | HashAlg::Keccak384 => 48,
        HashAlg::Sha512 | HashAlg::Sha3_512 | HashAlg::Keccak512 => 64,
    }
}

fn pss(hash: HashAlg) -> PssParams {
    PssParams {
        hash,
        mgf: hash,
        salt_len: hash_len(hash) as u64,
    }
}

/// The DER `DigestInfo` prefix of a hash (PKCS#1 v1.5 over a caller-computed digest).
fn digest_info_prefix(h: HashAlg) -> ApiResult<&'static [u8]> {
    Ok(match h {
        HashAlg::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlg::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => return Err(ApiError::unsupported("no DigestInfo for this hash")),
    })
}

fn hash_by_len(len: usize) -> ApiResult<HashAlg> {
    Ok(match len {
        20 => HashAlg::Sha1,
        28 => HashAlg::Sha224,
        32 => HashAlg::Sha256,
        48 => HashAlg::Sha384,
        64 => HashAlg::Sha512,
        n => {
            return Err(ApiError::new(
                code::INVALID_PAYLOAD,
                format!("a {n}-byte payload is not a SHA-1/SHA-2 digest"),
            ))
        }
    })
}

fn need_digest(h: HashAlg, payload: &[u8]) -> ApiResult<()> {
    if payload.len() == hash_len(h) {
        Ok(())
    } else {
        Err(ApiError::new(
            code::INVALID_PAYLOAD,
            format!(
                "the payload must be a {}-byte digest, not {} bytes",
                hash_len(h),
                payload.len()
            ),
        ))
    }
}

fn not_for_key(alg: SignatureAlgorithm) -> ApiError {
    ApiError::new(
        code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
        format!("{} cannot be used with this key", alg.as_str()),
    )
}

/// The mechanism for `alg` on a key of `kind`, and the data to hand the engine (the payload,
/// or a `DigestInfo` around it for `NONESHAxxx_WITH_RSA`).
pub fn sign_mechanism(
    alg: SignatureAlgorithm,
    kind: KeyKind,
    payload: &[u8],
) -> ApiResult<(Mechanism, Vec<u8>)> {
    use SignatureAlgorithm as S;
    let rsa = matches!(kind, KeyKind::Rsa(_));
    let ec = matches!(kind, KeyKind::Ec(_));
    let data = payload.to_vec();
    let m = match alg {
        S::Sha1Rsa | S::Sha224Rsa | S::Sha256Rsa | S::Sha384Rsa | S::Sha512Rsa if rsa => {
            Mechanism::RsaPkcsHash {
                hash: match alg {
                    S::Sha1Rsa => HashAlg::Sha1,
                    S::Sha224Rsa => HashAlg::Sha224,
                    S::Sha256Rsa => HashAlg::Sha256,
                    S::Sha384Rsa => HashAlg::Sha384,
                    _ => HashAlg::Sha512,
                },
            }
        }
        S::NoneRsa if rsa => Mechanism::RsaPkcs {},
        S::NoneSha1Rsa
        | S::NoneSha224Rsa
        | S::NoneSha256Rsa
        | S::NoneSha384Rsa
        | S::NoneSha512Rsa
            if rsa =>
        {
            let h = match alg {
                S::NoneSha1Rsa => HashAlg::Sha1,
                S::NoneSha224Rsa => HashAlg::Sha224,
                S::NoneSha256Rsa => HashAlg::Sha256,
                S::NoneSha384Rsa => HashAlg::Sha384,
                _ => HashAlg::Sha512,
            };
            need_digest(h, payload)?;
            let mut di = digest_info_prefix(h)?.to_vec();
            di.extend_from_slice(payload);
            return Ok((Mechanism::RsaPkcs {}, di));
        }
        S::Sha1RsaPss | S::Sha224RsaPss | S::Sha256RsaPss | S::Sha384RsaPss | S::Sha512RsaPss
            if rsa =>
        {
            let hash = match alg {
                S::Sha1RsaPss => HashAlg::Sha1,
                S::Sha224RsaPss => HashAlg::Sha224,
                S::Sha256RsaPss => HashAlg::Sha256,
                S::Sha384RsaPss => HashAlg::Sha384,
                _ => HashAlg::Sha512,
            };
            Mechanism::RsaPssHash {
                hash,
                params: pss(hash),
            }
        }
        S::NoneRsaPss if rsa => Mechanism::RsaPss {
            params: pss(hash_by_len(payload.len())?),
        },
        S::NoneSha224RsaPss | S::NoneSha256RsaPss | S::NoneSha384RsaPss | S::NoneSha512RsaPss
            if rsa =>
        {
            let h = match alg {
                S::NoneSha224RsaPss => HashAlg::Sha224,
                S::NoneSha256RsaPss => HashAlg::Sha256,
                S::NoneSha384RsaPss => HashAlg::Sha384,
                _ => HashAlg::Sha512,
            };
            need_digest(h, payload)?;
            Mechanism::RsaPss { params: pss(h) }
        }
        S::NoneEcdsa if ec => Mechanism::Ecdsa {},
        S::DoubleSha256Ecdsa if ec => Mechanism::EcdsaDoubleSha256 {},
        S::Sha256EcdsaDeterministic if ec => Mechanism::EcdsaDeterministic {
            hash: HashAlg::Sha256,
        },
        S::Sha1Ecdsa
        | S::Sha224Ecdsa
        | S::Sha256Ecdsa
        | S::Sha384Ecdsa
        | S::Sha512Ecdsa
        | S::Sha3_224Ecdsa
        | S::Sha3_256Ecdsa
        | S::Sha3_384Ecdsa
        | S::Sha3_512Ecdsa
        | S::Keccak224Ecdsa
        | S::Keccak256Ecdsa
        | S::Keccak384Ecdsa
        | S::Keccak512Ecdsa
            if ec =>
        {
            Mechanism::EcdsaHash {
                hash: match alg {
                    S::Sha1Ecdsa => HashAlg::Sha1,
                    S::Sha224Ecdsa => HashAlg::Sha224,
                    S::Sha256Ecdsa => HashAlg::Sha256,
                    S::Sha384Ecdsa => HashAlg::Sha384,
                    S::Sha512Ecdsa => HashAlg::Sha512,
                    S::Sha3_224Ecdsa => HashAlg::Sha3_224,
                    S::Sha3_256Ecdsa => HashAlg::Sha3_256,
                    S::Sha3_384Ecdsa => HashAlg::Sha3_384,
                    S::Sha3_512Ecdsa => HashAlg::Sha3_512,
                    S::Keccak224Ecdsa => HashAlg::Keccak224,
                    S::Keccak256Ecdsa => HashAlg::Keccak256,
                    S::Keccak384Ecdsa => HashAlg::Keccak384,
                    _ => HashAlg::Keccak512,
                },
            }
        }
        S::EdDsa if kind == KeyKind::Ed => Mechanism::Eddsa {},
        S::MlDsa | S::Dilithium if kind == KeyKind::MlDsa => Mechanism::MlDsa {
            context: Vec::new(),
        },
        S::SlhDsa | S::SphincsPlus if kind == KeyKind::SlhDsa => Mechanism::SlhDsa {
            context: Vec::new(),
        },
        S::NoneDsa
        | S::Sha1Dsa
        | S::Sha224Dsa
        | S::Sha256Dsa
        | S::Sha384Dsa
        | S::Sha512Dsa
        | S::Bls
        | S::Lms
        | S::Xmss => {
            return Err(ApiError::unsupported(format!(
                "{} is not offered by this HSM",
                alg.as_str()
            )))
        }
        _ => return Err(not_for_key(alg)),
    };
    Ok((m, data))
}

/// What [`cipher`] chose: the mechanism, the IV it generated (to return), and for AEAD
/// ciphers the tag length in bytes.
#[derive(Debug)]
pub struct CipherChoice {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The IV or nonce (returned to the client).
    pub iv: Option<Vec<u8>>,
    /// AEAD tag length in bytes.
    pub tag_len: Option<usize>,
}

/// GCM tag length in bits from `tagLength` (0 or absent = 128).
pub fn tag_bits(tag_length: Option<i64>) -> ApiResult<u32> {
    match tag_length.unwrap_or(128) {
        0 | 128 => Ok(128),
        t @ (64 | 96 | 104 | 112 | 120) => Ok(t as u32),
        t => Err(ApiError::new(
            code::KEY_INVALID_TAG_LENGTH,
            format!("tagLength {t} is not one of 64, 96, 104, 112, 120, 128"),
        )),
    }
}

fn random(n: usize) -> ApiResult<Vec<u8>> {
    let mut v = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut v).map_err(ApiError::internal)?;
    Ok(v)
}

fn oaep(hash: HashAlg) -> Mechanism {
    Mechanism::RsaOaep {
        params: OaepParams {
            hash,
            mgf: hash,
            label: Vec::new(),
        },
    }
}

/// The mechanism for a cipher on a key of `kind`. `iv` is the client's IV (decrypt) or `None`
/// (encrypt: a fresh one is generated where the cipher needs one).
pub fn cipher(
    alg: CipherAlgorithm,
    kind: KeyKind,
    iv: Option<Vec<u8>>,
    tag_length: Option<i64>,
    aad: Vec<u8>,
) -> ApiResult<CipherChoice> {
    use CipherAlgorithm as C;
    let rsa = matches!(kind, KeyKind::Rsa(_));
    let wrong = || {
        ApiError::new(
            code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
            format!("{} cannot be used with this key", alg.as_str()),
        )
    };
    let need_iv = |n: usize, iv: Option<Vec<u8>>| -> ApiResult<Vec<u8>> {
        match iv {
            Some(v) if v.len() == n => Ok(v),
            Some(v) => Err(ApiError::invalid(format!(
                "initializationVector must be {n} bytes, not {}",
                v.len()
            ))),
            None => random(n),
        }
    };
    if tag_length.is_some() && alg != C::AesGcm {
        // Accepted and ignored, as clients send their default everywhere.
    }
    let choice = match alg {
        C::Rsa | C::RsaPkcs if rsa => CipherChoice {
            mechanism: Mechanism::RsaPkcs {},
            iv: None,
            tag_len: None,
        },
        C::RsaNoPadding if rsa => CipherChoice {
            mechanism: Mechanism::RsaX509 {},
            iv: None,
            tag_len: None,
        },
        C::RsaOaep | C::RsaOaepSha1 if rsa => CipherChoice {
            mechanism: oaep(HashAlg::Sha1),
            iv: None,
            tag_len: None,
        },
        C::RsaOaepSha224 if rsa => CipherChoice {
            mechanism: oaep(HashAlg::Sha224),
            iv: None,
            tag_len: None,
        },
        C::RsaOaepSha256 if rsa => CipherChoice {
            mechanism: oaep(HashAlg::Sha256),
            iv: None,
            tag_len: None,
        },
        C::RsaOaepSha384 if rsa => CipherChoice {
            mechanism: oaep(HashAlg::Sha384),
            iv: None,
            tag_len: None,
        },
        C::RsaOaepSha512 if rsa => CipherChoice {
            mechanism: oaep(HashAlg::Sha512),
            iv: None,
            tag_len: None,
        },
        C::AesGcm if kind == KeyKind::Aes => {
            let bits = tag_bits(tag_length)?;
            let iv = need_iv(12, iv)?;
            CipherChoice {
                mechanism: Mechanism::AesGcm {
                    params: GcmParams {
                        iv: iv.clone(),
                        aad,
                        tag_bits: bits,
                    },
                },
                iv: Some(iv),
                tag_len: Some(bits as usize / 8),
            }
        }
        C::Aes if kind == KeyKind::Aes => {
            let iv = need_iv(16, iv)?;
            CipherChoice {
                mechanism: Mechanism::AesCbcPad { iv: iv.clone() },
                iv: Some(iv),
                tag_len: None,
            }
        }
        C::AesCbcNoPadding if kind == KeyKind::Aes => {
            let iv = need_iv(16, iv)?;
            CipherChoice {
                mechanism: Mechanism::AesCbc { iv: iv.clone() },
                iv: Some(iv),
                tag_len: None,
            }
        }
        C::AesCtr if kind == KeyKind::Aes => {
            let iv = need_iv(16, iv)?;
            CipherChoice {
                mechanism: Mechanism::AesCtr {
                    iv: iv.clone(),
                    counter_bits: 128,
                },
                iv: Some(iv),
                tag_len: None,
            }
        }
        C::AesEcb if kind == KeyKind::Aes => CipherChoice {
            mechanism: Mechanism::AesEcb {},
            iv: None,
            tag_len: None,
        },
        C::ChaCha20Aead if kind == KeyKind::ChaCha20 => {
            let iv = need_iv(12, iv)?;
            CipherChoice {
                mechanism: Mechanism::ChaCha20Poly1305 {
                    nonce: iv.clone(),
                    aad,
                },
                iv: Some(iv),
                tag_len: Some(16),
            }
        }
        C::ChaCha20
        | C::Camellia
        | C::CamelliaCbcNoPadding
        | C::CamelliaEcb
        | C::TdeaCbc
        | C::TdeaEcb
        | C::TdeaCbcNoPadding => {
            return Err(ApiError::new(
                code::UNSUPPORTED_CIPHER,
                format!("{} is not offered by this HSM", alg.as_str()),
            ))
        }
        _ => return Err(wrong()),
    };
    Ok(choice)
}

/// The wrapped key's class and key type for an unwrap by `method` (`None`: not offered).
pub fn unwrapped_kind(method: WrapMethod) -> ApiResult<(u64, u64)> {
    use crate::tenant::ck::*;
    use WrapMethod as W;
    Ok(match method {
        W::AesWrap
        | W::AesWrapPad
        | W::RsaWrapPad
        | W::RsaWrapOaep
        | W::MlKem512
        | W::MlKem768
        | W::MlKem1024 => (CKO_SECRET_KEY, CKK_AES),
        W::AesWrapRsa | W::AesWrapPadRsa => (CKO_PRIVATE_KEY, CKK_RSA),
        W::AesWrapEc | W::AesWrapPadEc => (CKO_PRIVATE_KEY, CKK_EC),
        W::AesWrapEd | W::AesWrapPadEd => (CKO_PRIVATE_KEY, CKK_EC_EDWARDS),
        W::AesWrapDsa | W::AesWrapBls | W::AesWrapPadDsa | W::AesWrapPadBls => {
            return Err(ApiError::unsupported(format!(
                "{} is not offered by this HSM",
                method.as_str()
            )))
        }
    })
}

/// The mechanism of a wrap method on a wrapping key of `kind`.
pub fn wrap_mechanism(method: WrapMethod, kind: KeyKind) -> ApiResult<Mechanism> {
    use WrapMethod as W;
    unwrapped_kind(method)?;
    let m = match method {
        W::AesWrap | W::AesWrapRsa | W::AesWrapEc | W::AesWrapEd if kind == KeyKind::Aes => {
            Mechanism::AesKeyWrap {}
        }
        W::AesWrapPad | W::AesWrapPadRsa | W::AesWrapPadEc | W::AesWrapPadEd
            if kind == KeyKind::Aes =>
        {
            Mechanism::AesKeyWrapPad {}
        }
        W::RsaWrapPad => {
            return Err(ApiError::unsupported(
                "RSA_WRAP_PAD (PKCS#1 v1.5 key transport) is not offered; use RSA_WRAP_OAEP",
            ))
        }
        W::RsaWrapOaep if matches!(kind, KeyKind::Rsa(_)) => oaep(HashAlg::Sha256),
        W::MlKem512 | W::MlKem768 | W::MlKem1024 if kind == KeyKind::MlKem => Mechanism::MlKem {},
        _ => {
            return Err(ApiError::new(
                code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                format!("{} cannot be used with this key", method.as_str()),
            ))
        }
    };
    Ok(m)
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn der_uint(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    let pad = b.first().is_some_and(|x| x & 0x80 != 0);
    out.push(0x02);
    der_len(out, b.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(b);
}

/// `r ‖ s` → DER `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_uint(&mut body, r);
    der_uint(&mut body, s);
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn read_len(b: &[u8], i: &mut usize) -> Option<usize> {
    let first = *b.get(*i)?;
    *i += 1;
    if first < 0x80 {
        return Some(first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 2 {
        return None;
    }
    let mut len = 0usize;
    for _ in 0..n {
        len = (len << 8) | *b.get(*i)? as usize;
        *i += 1;
    }
    Some(len)
}

fn read_uint<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    if *b.get(*i)? != 0x02 {
        return None;
    }
    *i += 1;
    let len = read_len(b, i)?;
    let v = b.get(*i..*i + len)?;
    *i += len;
    let mut v = v;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    Some(v)
}

/// DER ECDSA signature → `r ‖ s` with `n`-byte halves (`None` if it is not one).
pub fn ecdsa_der_to_raw(der: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut i = 0;
    if *der.first()? != 0x30 {
        return None;
    }
    i += 1;
    let len = read_len(der, &mut i)?;
    if i + len != der.len() {
        return None;
    }
    let r = read_uint(der, &mut i)?;
    let s = read_uint(der, &mut i)?;
    if i != der.len() || r.len() > n || s.len() > n {
        return None;
    }
    let mut out = vec![0u8; 2 * n];
    out[n - r.len()..n].copy_from_slice(r);
    out[2 * n - s.len()..].copy_from_slice(s);
    Some(out)
}

/// DER of a dotted OID (for `CKA_EC_PARAMS`).
pub fn oid_der(dotted: &str) -> ApiResult<Vec<u8>> {
    let bad = || ApiError::invalid(format!("{dotted:?} is not an OID"));
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse::<u64>().map_err(|_| bad()))
        .collect::<ApiResult<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || arcs[1] >= 40 && arcs[0] < 2 {
        return Err(bad());
    }
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend_from_slice(&tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    if body.len() > 127 {
        return Err(bad());
    }
    let mut out = vec![0x06, body.len() as u8];
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_round_trip() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[40] = 0x01;
        let der = ecdsa_raw_to_der(&raw);
        assert_eq!(ecdsa_der_to_raw(&der, 32), Some(raw));
        assert_eq!(ecdsa_der_to_raw(&[0x30, 0x00, 0x01], 32), None);
    }

    #[test]
    fn p256_oid() {
        assert_eq!(
            oid_der("1.2.840.10045.3.1.7").ok(),
            Some(vec![
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
            ])
        );
        assert!(oid_der("x.1").is_err());
    }
}
