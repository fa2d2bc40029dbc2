//! Mechanism tests: known-answer vectors, round trips, bad inputs, and cross-checks against
//! the system `openssl` command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use tresor_core::crypto::*;
use tresor_core::Rv;
use zeroize::Zeroizing;

type R = Result<(), Box<dyn std::error::Error>>;

fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("test vector hex")
}

fn rv<T: std::fmt::Debug>(r: tresor_core::Result<T>) -> Rv {
    r.expect_err("expected an error").rv()
}

fn km(v: &[u8]) -> KeyMaterial {
    KeyMaterial(Zeroizing::new(v.to_vec()))
}

// ---------------------------------------------------------------- digests and HMAC

#[test]
fn digest_vectors() -> R {
    assert_eq!(
        digest(HashAlg::Sha256, b"abc")?,
        h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        digest(HashAlg::Sha3_256, b"abc")?,
        h("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")
    );
    assert_eq!(
        digest(HashAlg::Keccak256, b"abc")?,
        h("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
    );
    Ok(())
}

#[test]
fn hmac_rfc4231() -> R {
    let k1 = LoadedKey::secret(KeyAlg::GenericSecret, &[0x0b; 20])?;
    let m = Mechanism::Hmac(HashAlg::Sha256);
    let t1 = h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_eq!(k1.sign(&m, b"Hi There")?, t1);
    k1.verify(&m, b"Hi There", &t1)?;
    let k2 = LoadedKey::secret(KeyAlg::GenericSecret, b"Jefe")?;
    let t2 = h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(k2.sign(&m, b"what do ya want for nothing?")?, t2);
    assert_eq!(k2.signature_len(&m)?, 32);
    let mut bad = t2.clone();
    bad[0] ^= 1;
    assert_eq!(
        rv(k2.verify(&m, b"what do ya want for nothing?", &bad)),
        Rv::SignatureInvalid
    );
    assert_eq!(rv(k2.verify(&m, b"x", &t2[..31])), Rv::SignatureLenRange);
    // HMAC with an AES key is refused.
    let aes = LoadedKey::secret(KeyAlg::Aes, &[0; 16])?;
    assert_eq!(rv(aes.sign(&m, b"x")), Rv::KeyTypeInconsistent);
    for hh in [
        HashAlg::Sha1,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha3_256,
    ] {
        assert_eq!(k2.sign(&Mechanism::Hmac(hh), b"x")?.len(), hash_len(hh));
    }
    Ok(())
}

// ---------------------------------------------------------------- AES

const SP_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                     30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const K256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";

fn sym_kat(key: &str, m: Mechanism, ct: &str) -> R {
    let k = LoadedKey::secret(KeyAlg::Aes, &h(key))?;
    assert_eq!(k.encrypt(&m, &h(SP_PT))?, h(ct), "{m:?}");
    assert_eq!(*k.decrypt(&m, &h(ct))?, h(SP_PT));
    Ok(())
}

#[test]
fn aes_sp800_38a() -> R {
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let ctr = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    sym_kat(
        K128,
        Mechanism::AesEcb,
        "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
         43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4",
    )?;
    sym_kat(
        K128,
        Mechanism::AesCbc { iv: iv.clone() },
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
         73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
    )?;
    sym_kat(
        K256,
        Mechanism::AesCbc { iv },
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
         39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
    )?;
    sym_kat(
        K128,
        Mechanism::AesCtr {
            iv: ctr.clone(),
            counter_bits: 128,
        },
        "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
         5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee",
    )?;
    sym_kat(
        K256,
        Mechanism::AesCtr {
            iv: ctr,
            counter_bits: 128,
        },
        "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
         2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6",
    )?;
    Ok(())
}

#[test]
fn aes_modes_bad_input() -> R {
    let k = LoadedKey::secret(KeyAlg::Aes, &h(K128))?;
    let m = Mechanism::AesCbc { iv: vec![0; 15] };
    assert_eq!(rv(k.encrypt(&m, &[0; 16])), Rv::MechanismParamInvalid);
    assert_eq!(
        rv(k.encrypt(&Mechanism::AesEcb, &[0; 15])),
        Rv::DataLenRange
    );
    assert_eq!(
        rv(k.decrypt(&Mechanism::AesEcb, &[0; 17])),
        Rv::EncryptedDataLenRange
    );
    // CBC-PAD round trip and padding failure.
    let pad = Mechanism::AesCbcPad { iv: vec![7; 16] };
    let ct = k.encrypt(&pad, b"hello")?;
    assert_eq!(ct.len(), 16);
    assert_eq!(&k.decrypt(&pad, &ct)?[..], b"hello");
    let mut bad = 0;
    for i in 0..=255u8 {
        let mut c = ct.clone();
        c[15] = i;
        if let Err(e) = k.decrypt(&pad, &c) {
            assert_eq!(e.rv(), Rv::EncryptedDataInvalid);
            bad += 1;
        }
    }
    assert!(bad > 200);
    // CTR counter space: 4 counter bits starting at 14 leaves 2 blocks.
    let mut iv = vec![0u8; 16];
    iv[15] = 14;
    let ctr = Mechanism::AesCtr {
        iv: iv.clone(),
        counter_bits: 4,
    };
    assert_eq!(k.encrypt(&ctr, &[0; 32])?.len(), 32);
    assert_eq!(rv(k.encrypt(&ctr, &[0; 33])), Rv::DataLenRange);
    assert_eq!(
        rv(k.encrypt(
            &Mechanism::AesCtr {
                iv,
                counter_bits: 0
            },
            &[0; 1]
        )),
        Rv::MechanismParamInvalid
    );
    // Wrong key type for the mechanism.
    let ch = LoadedKey::secret(KeyAlg::ChaCha20, &[1; 32])?;
    assert_eq!(
        rv(ch.encrypt(&Mechanism::AesEcb, &[0; 16])),
        Rv::KeyTypeInconsistent
    );
    assert_eq!(
        rv(LoadedKey::secret(KeyAlg::Aes, &[0; 17])),
        Rv::KeySizeRange
    );
    Ok(())
}

const GCM_K: &str = "feffe9928665731c6d6a8f9467308308";
const GCM_IV: &str = "cafebabefacedbaddecaf888";
const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                     1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

fn gcm_kat(key: &str, aad: &str, plen: usize, ct: &str, tag: &str) -> R {
    let k = LoadedKey::secret(KeyAlg::Aes, &h(key))?;
    let m = Mechanism::AesGcm(GcmParams {
        iv: h(GCM_IV),
        aad: h(aad),
        tag_bits: 128,
    });
    let p = &h(GCM_P)[..plen];
    let mut want = h(ct);
    want.extend_from_slice(&h(tag));
    let out = k.encrypt(&m, p)?;
    assert_eq!(hex::encode(&out), hex::encode(&want));
    assert_eq!(&k.decrypt(&m, &out)?[..], p);
    let mut t = out.clone();
    let n = t.len();
    t[n - 1] ^= 1;
    assert_eq!(rv(k.decrypt(&m, &t)), Rv::EncryptedDataInvalid);
    t[n - 1] ^= 1;
    t[0] ^= 1;
    assert_eq!(rv(k.decrypt(&m, &t)), Rv::EncryptedDataInvalid);
    Ok(())
}

#[test]
fn aes_gcm_vectors() -> R {
    let c3 = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
    gcm_kat(GCM_K, "", 64, c3, "4d5c2af327cd64a62cf35abd2ba6fab4")?;
    gcm_kat(
        GCM_K,
        GCM_A,
        60,
        &c3[..c3.len() - 8],
        "5bc94fbc3221a5db94fae95ae7121a47",
    )?;
    let k256 = format!("{GCM_K}{GCM_K}");
    let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
               8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    gcm_kat(&k256, "", 64, c15, "b094dac5d93471bdec1a502270e3cc6c")?;
    gcm_kat(
        &k256,
        GCM_A,
        60,
        &c15[..c15.len() - 8],
        "76fc6ece0f4e1768cddf8853bb2d551b",
    )?;
    Ok(())
}

#[test]
fn aes_gcm_params() -> R {
    let k = LoadedKey::secret(KeyAlg::Aes, &h(GCM_K))?;
    let gcm = |iv: Vec<u8>, tag_bits| {
        Mechanism::AesGcm(GcmParams {
            iv,
            aad: vec![],
            tag_bits,
        })
    };
    assert_eq!(
        rv(k.encrypt(&gcm(vec![], 128), b"x")),
        Rv::MechanismParamInvalid
    );
    assert_eq!(
        rv(k.encrypt(&gcm(vec![0; 257], 128), b"x")),
        Rv::MechanismParamInvalid
    );
    assert_eq!(
        rv(k.encrypt(&gcm(vec![0; 12], 0), b"x")),
        Rv::MechanismParamInvalid
    );
    assert_eq!(
        rv(k.encrypt(&gcm(vec![0; 12], 33), b"x")),
        Rv::MechanismParamInvalid
    );
    for (iv_len, bits) in [
        (1, 32),
        (12, 96),
        (16, 64),
        (60, 120),
        (128, 128),
        (256, 128),
    ] {
        let m = gcm(vec![3; iv_len], bits);
        let ct = k.encrypt(&m, b"secret message")?;
        assert_eq!(ct.len(), 14 + bits / 8);
        assert_eq!(&k.decrypt(&m, &ct)?[..], b"secret message");
        assert_eq!(
            rv(k.decrypt(&m, &ct[..bits / 8 - 1])),
            Rv::EncryptedDataLenRange
        );
    }
    Ok(())
}

#[test]
fn chacha20_poly1305_rfc8439() -> R {
    let key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let k = LoadedKey::secret(KeyAlg::ChaCha20, &key)?;
    let m = Mechanism::ChaCha20Poly1305 {
        nonce: h("070000004041424344454647"),
        aad: h("50515253c0c1c2c3c4c5c6c7"),
    };
    let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let want = h(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
                  3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
                  92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
                  3ff4def08e4b7a9de576d26586cec64b6116
                  1ae10b594f09e26a7e902ecbd0600691",
    );
    let ct = k.encrypt(&m, pt)?;
    assert_eq!(hex::encode(&ct), hex::encode(&want));
    assert_eq!(&k.decrypt(&m, &ct)?[..], &pt[..]);
    let mut t = ct.clone();
    t[5] ^= 0x80;
    assert_eq!(rv(k.decrypt(&m, &t)), Rv::EncryptedDataInvalid);
    let bad = Mechanism::ChaCha20Poly1305 {
        nonce: vec![0; 8],
        aad: vec![],
    };
    assert_eq!(rv(k.encrypt(&bad, b"x")), Rv::MechanismParamInvalid);
    Ok(())
}

#[test]
fn aes_key_wrap_rfc3394_rfc5649() -> R {
    let kek = LoadedKey::secret(KeyAlg::Aes, &h("000102030405060708090A0B0C0D0E0F"))?;
    let target = h("00112233445566778899AABBCCDDEEFF");
    let w = kek.wrap(&Mechanism::AesKeyWrap, &km(&target))?;
    assert_eq!(w, h("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
    assert_eq!(*kek.unwrap(&Mechanism::AesKeyWrap, &w)?, target);

    let kek256 = LoadedKey::secret(
        KeyAlg::Aes,
        &h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"),
    )?;
    let t2 = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
    let w2 = kek256.wrap(&Mechanism::AesKeyWrap, &km(&t2))?;
    assert_eq!(
        w2,
        h("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
    );
    assert_eq!(*kek256.unwrap(&Mechanism::AesKeyWrap, &w2)?, t2);

    let kwp = LoadedKey::secret(
        KeyAlg::Aes,
        &h("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"),
    )?;
    for (t, want) in [
        (
            "c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
        ),
        ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ] {
        let w = kwp.wrap(&Mechanism::AesKeyWrapPad, &km(&h(t)))?;
        assert_eq!(w, h(want));
        assert_eq!(*kwp.unwrap(&Mechanism::AesKeyWrapPad, &w)?, h(t));
    }

    // Bad inputs.
    assert_eq!(
        rv(kek.wrap(&Mechanism::AesKeyWrap, &km(&[1; 15]))),
        Rv::KeyNotWrappable
    );
    assert_eq!(
        rv(kek.wrap(&Mechanism::AesKeyWrap, &km(&[1; 20]))),
        Rv::KeyNotWrappable
    );
    assert_eq!(
        rv(kek.unwrap(&Mechanism::AesKeyWrap, &w[..23])),
        Rv::WrappedKeyLenRange
    );
    let mut t = w.clone();
    t[3] ^= 1;
    assert_eq!(
        rv(kek.unwrap(&Mechanism::AesKeyWrap, &t)),
        Rv::WrappedKeyInvalid
    );
    let hm = LoadedKey::secret(KeyAlg::GenericSecret, &[1; 16])?;
    assert_eq!(
        rv(hm.wrap(&Mechanism::AesKeyWrap, &km(&[1; 16]))),
        Rv::WrappingKeyTypeInconsistent
    );
    Ok(())
}

/// AEAD wrapping (`C_WrapKeyAuthenticated`): the wrapped key is the AEAD ciphertext ‖ tag of
/// the key bytes, so the GCM reference vector (test case 16: AES-256, 60 bytes, with associated
/// data) is its known answer; the associated data is bound, truncated tags are refused.
#[test]
fn aead_key_wrap() -> R {
    let k256 = format!("{GCM_K}{GCM_K}");
    let kek = LoadedKey::secret(KeyAlg::Aes, &h(&k256))?;
    let gcm = |aad: &str, tag_bits| {
        Mechanism::AesGcm(GcmParams {
            iv: h(GCM_IV),
            aad: h(aad),
            tag_bits,
        })
    };
    let target = &h(GCM_P)[..60];
    let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
               8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    let mut want = h(c15);
    want.truncate(60);
    want.extend_from_slice(&h("76fc6ece0f4e1768cddf8853bb2d551b"));
    let w = kek.wrap(&gcm(GCM_A, 128), &km(target))?;
    assert_eq!(hex::encode(&w), hex::encode(&want));
    assert_eq!(&kek.unwrap(&gcm(GCM_A, 128), &w)?[..], target);
    // Other associated data, a changed byte, a cut tag.
    assert_eq!(
        rv(kek.unwrap(&gcm("feedface", 128), &w)),
        Rv::WrappedKeyInvalid
    );
    assert_eq!(rv(kek.unwrap(&gcm("", 128), &w)), Rv::WrappedKeyInvalid);
    let mut t = w.clone();
    t[7] ^= 1;
    assert_eq!(rv(kek.unwrap(&gcm(GCM_A, 128), &t)), Rv::WrappedKeyInvalid);
    assert_eq!(
        rv(kek.unwrap(&gcm(GCM_A, 128), &w[..15])),
        Rv::WrappedKeyLenRange
    );
    // 96 bits is the shortest tag for a wrapped key (C_Encrypt takes down to 32).
    let w96 = kek.wrap(&gcm(GCM_A, 96), &km(target))?;
    assert_eq!(w96.len(), 60 + 12);
    assert_eq!(&kek.unwrap(&gcm(GCM_A, 96), &w96)?[..], target);
    assert_eq!(
        rv(kek.wrap(&gcm(GCM_A, 64), &km(target))),
        Rv::MechanismParamInvalid
    );
    assert_eq!(
        rv(kek.unwrap(&gcm(GCM_A, 64), &w96[..68])),
        Rv::MechanismParamInvalid
    );
    // ChaCha20-Poly1305 with a ChaCha20 key; a mechanism of the other key type is refused.
    let ck = LoadedKey::secret(KeyAlg::ChaCha20, &[7; 32])?;
    let cm = Mechanism::ChaCha20Poly1305 {
        nonce: vec![1; 12],
        aad: b"label".to_vec(),
    };
    let cw = ck.wrap(&cm, &km(&[9; 32]))?;
    assert_eq!(cw.len(), 32 + 16);
    assert_eq!(&ck.unwrap(&cm, &cw)?[..], &[9; 32]);
    let other = Mechanism::ChaCha20Poly1305 {
        nonce: vec![1; 12],
        aad: b"Label".to_vec(),
    };
    assert_eq!(rv(ck.unwrap(&other, &cw)), Rv::WrappedKeyInvalid);
    assert_eq!(
        rv(ck.wrap(&gcm(GCM_A, 128), &km(&[9; 32]))),
        Rv::WrappingKeyTypeInconsistent
    );
    assert_eq!(rv(kek.unwrap(&cm, &cw)), Rv::UnwrappingKeyTypeInconsistent);
    Ok(())
}

// ---------------------------------------------------------------- EdDSA / ECDSA

fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    let mut v = h("302e020100300506032b657004220420");
    v.extend_from_slice(seed);
    v
}

#[test]
fn ed25519_rfc8032() -> R {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (seed, public, msg, sig) in cases {
        let der = ed25519_pkcs8(&h(seed));
        assert_eq!(detect_private(&der)?, KeyAlg::Ed(EdCurve::Ed25519));
        let k = LoadedKey::private(KeyAlg::Ed(EdCurve::Ed25519), &der)?;
        let info = k.public_info().ok_or("no public info")?;
        assert_eq!(
            info.ec_point.as_deref(),
            Some(&octet_string(&h(public))[..])
        );
        assert_eq!(k.sign(&Mechanism::Eddsa, &h(msg))?, h(sig));
        assert_eq!(k.signature_len(&Mechanism::Eddsa)?, 64);
        let p = LoadedKey::public(KeyAlg::Ed(EdCurve::Ed25519), &info.spki)?;
        p.verify(&Mechanism::Eddsa, &h(msg), &h(sig))?;
        assert_eq!(
            rv(p.verify(&Mechanism::Eddsa, b"other", &h(sig))),
            Rv::SignatureInvalid
        );
        assert_eq!(
            rv(p.verify(&Mechanism::Eddsa, &h(msg), &h(sig)[..63])),
            Rv::SignatureLenRange
        );
        assert_eq!(rv(k.sign(&Mechanism::Ecdsa, b"x")), Rv::KeyTypeInconsistent);
    }
    // Ed448 round trip.
    let (sk, info) = generate_key_pair(KeyAlg::Ed(EdCurve::Ed448), &KeyPairParams::default())?;
    let k = LoadedKey::private(KeyAlg::Ed(EdCurve::Ed448), sk.expose())?;
    let s = k.sign(&Mechanism::Eddsa, b"msg")?;
    assert_eq!(s.len(), 114);
    LoadedKey::public(KeyAlg::Ed(EdCurve::Ed448), &info.spki)?.verify(
        &Mechanism::Eddsa,
        b"msg",
        &s,
    )?;
    Ok(())
}

fn p256_from_scalar(d: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    let g = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let d = BigNum::from_slice(d)?;
    let mut ctx = BigNumContext::new()?;
    let mut q = EcPoint::new(&g)?;
    q.mul_generator2(&g, &d, &mut ctx)?;
    let k = EcKey::from_private_components(&g, &d, &q)?;
    Ok(openssl::pkey::PKey::from_ec_key(k)?.private_key_to_pkcs8()?)
}

#[test]
fn ecdsa_rfc6979_p256_sha256() -> R {
    let der = p256_from_scalar(&h(
        "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
    ))?;
    let alg = KeyAlg::Ec(Curve::P256);
    assert_eq!(detect_private(&der)?, alg);
    let k = LoadedKey::private(alg, &der)?;
    let m = Mechanism::EcdsaDeterministic(HashAlg::Sha256);
    let sig = k.sign(&m, b"sample")?;
    assert_eq!(
        hex::encode_upper(&sig),
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
         F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    );
    k.verify(&m, b"sample", &sig)?;
    k.verify(&Mechanism::EcdsaHash(HashAlg::Sha256), b"sample", &sig)?;
    k.verify(
        &Mechanism::Ecdsa,
        &digest(HashAlg::Sha256, b"sample")?,
        &sig,
    )?;
    Ok(())
}

#[test]
fn ecdsa_all_curves_and_hashes() -> R {
    for c in [
        Curve::P256,
        Curve::P384,
        Curve::P521,
        Curve::Secp256k1,
        Curve::BrainpoolP256r1,
        Curve::BrainpoolP384r1,
        Curve::BrainpoolP512r1,
    ] {
        let alg = KeyAlg::Ec(c);
        let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
        assert_eq!(
            curve_from_oid_der(info.ec_params.as_deref().unwrap_or(&[]))?,
            AnyCurve::Weierstrass(c)
        );
        let k = LoadedKey::private(alg, sk.expose())?;
        let p = LoadedKey::public(alg, &info.spki)?;
        let n = 2 * field_len(c);
        for m in [
            Mechanism::Ecdsa,
            Mechanism::EcdsaHash(HashAlg::Sha1),
            Mechanism::EcdsaHash(HashAlg::Sha256),
            Mechanism::EcdsaHash(HashAlg::Sha384),
            Mechanism::EcdsaHash(HashAlg::Sha512),
            Mechanism::EcdsaHash(HashAlg::Sha3_256),
            Mechanism::EcdsaHash(HashAlg::Keccak256),
            Mechanism::EcdsaDeterministic(HashAlg::Sha384),
            Mechanism::EcdsaDoubleSha256,
        ] {
            let data: &[u8] = if m == Mechanism::Ecdsa {
                &[0x5a; 48]
            } else {
                b"message"
            };
            let s = k.sign(&m, data)?;
            assert_eq!(s.len(), n, "{c:?} {m:?}");
            assert_eq!(k.signature_len(&m)?, n);
            p.verify(&m, data, &s)?;
            k.verify(&m, data, &s)?;
            assert_eq!(rv(p.verify(&m, b"other message", &s)), Rv::SignatureInvalid);
            assert_eq!(rv(p.verify(&m, data, &s[1..])), Rv::SignatureLenRange);
            let mut bad = s.clone();
            bad[n - 1] ^= 1;
            assert_eq!(rv(p.verify(&m, data, &bad)), Rv::SignatureInvalid);
        }
        assert_eq!(
            rv(p.sign(&Mechanism::Ecdsa, &[1; 32])),
            Rv::KeyTypeInconsistent
        );
        assert_eq!(
            rv(k.sign(&Mechanism::RsaPkcs, &[1; 32])),
            Rv::KeyTypeInconsistent
        );
    }
    // Pre-hashed ECDSA of every digest length agrees with OpenSSL's own X9.62 handling, both
    // ways (the engine signs some curves with aws-lc-rs).
    for c in [Curve::P256, Curve::P384, Curve::P521, Curve::Secp256k1] {
        let alg = KeyAlg::Ec(c);
        let (sk, _) = generate_key_pair(alg, &KeyPairParams::default())?;
        let k = LoadedKey::private(alg, sk.expose())?;
        let ossl = openssl::pkey::PKey::private_key_from_pkcs8(sk.expose())?;
        for len in [1usize, 20, 32, 48, 64, 66, 100] {
            let d: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let raw = k.sign(&Mechanism::Ecdsa, &d)?;
            let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&ossl)?;
            ctx.verify_init()?;
            assert!(ctx.verify(&d, &ecdsa_raw_to_der(&raw)?)?, "{c:?} {len}");
            let mut der = vec![];
            let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&ossl)?;
            ctx.sign_init()?;
            ctx.sign_to_vec(&d, &mut der)?;
            k.verify(&Mechanism::Ecdsa, &d, &ecdsa_der_to_raw(&der, c)?)?;
        }
    }
    // A P-384 key presented as P-256 is refused.
    let (sk, _) = generate_key_pair(KeyAlg::Ec(Curve::P384), &KeyPairParams::default())?;
    assert_eq!(
        rv(LoadedKey::private(KeyAlg::Ec(Curve::P256), sk.expose())),
        Rv::KeyTypeInconsistent
    );
    assert_eq!(
        rv(LoadedKey::private(KeyAlg::Rsa, sk.expose())),
        Rv::KeyTypeInconsistent
    );
    assert_eq!(
        rv(LoadedKey::private(KeyAlg::Rsa, b"garbage")),
        Rv::AttributeValueInvalid
    );
    Ok(())
}

#[test]
fn ecdh_derive() -> R {
    let alg = KeyAlg::Ec(Curve::P256);
    let (a, ai) = generate_key_pair(alg, &KeyPairParams::default())?;
    let (b, bi) = generate_key_pair(alg, &KeyPairParams::default())?;
    let a = LoadedKey::private(alg, a.expose())?;
    let b = LoadedKey::private(alg, b.expose())?;
    let point = |i: &PublicInfo| i.ec_point.clone().unwrap_or_default();
    let raw_point = |i: &PublicInfo| parse_octet_string(&point(i)).unwrap_or_default().to_vec();
    let p = |pd: Vec<u8>, kdf| {
        Mechanism::Ecdh1Derive(EcdhParams {
            kdf,
            shared_data: vec![],
            public_data: pd,
        })
    };
    let z1 = a.derive(&p(point(&bi), None), 0)?;
    let z2 = b.derive(&p(raw_point(&ai), None), 0)?;
    assert_eq!(z1.len(), 32);
    assert_eq!(*z1, *z2);
    assert_eq!(*a.derive(&p(point(&bi), None), 16)?, z1[..16]);
    assert_eq!(rv(a.derive(&p(point(&bi), None), 33)), Rv::KeySizeRange);
    let k1 = a.derive(&p(point(&bi), Some(HashAlg::Sha256)), 48)?;
    let k2 = b.derive(&p(point(&ai), Some(HashAlg::Sha256)), 48)?;
    assert_eq!(k1.len(), 48);
    assert_eq!(*k1, *k2);
    assert_eq!(
        rv(a.derive(&p(vec![4, 1, 2], None), 0)),
        Rv::MechanismParamInvalid
    );
    Ok(())
}

// ---------------------------------------------------------------- RSA

fn rsa_key() -> Result<(LoadedKey, PublicInfo, KeyMaterial), Box<dyn std::error::Error>> {
    let (sk, info) = generate_key_pair(
        KeyAlg::Rsa,
        &KeyPairParams {
            modulus_bits: Some(2048),
            public_exponent: None,
        },
    )?;
    Ok((LoadedKey::private(KeyAlg::Rsa, sk.expose())?, info, sk))
}

#[test]
fn rsa_keygen_rules() -> R {
    let p = |bits, e: Option<Vec<u8>>| KeyPairParams {
        modulus_bits: Some(bits),
        public_exponent: e,
    };
    assert_eq!(
        rv(generate_key_pair(KeyAlg::Rsa, &p(1024, None))),
        Rv::KeySizeRange
    );
    assert_eq!(
        rv(generate_key_pair(KeyAlg::Rsa, &p(2049, None))),
        Rv::KeySizeRange
    );
    assert_eq!(
        rv(generate_key_pair(KeyAlg::Rsa, &p(8200, None))),
        Rv::KeySizeRange
    );
    assert!(generate_key_pair(KeyAlg::Rsa, &p(2048, Some(vec![2]))).is_err());
    assert!(generate_key_pair(KeyAlg::Rsa, &p(2048, Some(vec![1]))).is_err());
    let (_, info) = generate_key_pair(KeyAlg::Rsa, &p(2056, Some(vec![3])))?;
    assert_eq!(info.modulus_bits, Some(2056));
    assert_eq!(info.public_exponent.as_deref(), Some(&[3u8][..]));
    Ok(())
}

#[test]
fn rsa_mechanisms() -> R {
    let (k, info, _) = rsa_key()?;
    let p = LoadedKey::public(KeyAlg::Rsa, &info.spki)?;
    let d32 = digest(HashAlg::Sha256, b"data")?;
    let pss = |hh, mgf, salt_len| PssParams {
        hash: hh,
        mgf,
        salt_len,
    };
    let mechs = vec![
        (Mechanism::RsaPkcs, b"short DigestInfo-like".to_vec()),
        (Mechanism::RsaX509, vec![0x42; 100]),
        (Mechanism::RsaPkcsHash(HashAlg::Sha256), b"data".to_vec()),
        (Mechanism::RsaPkcsHash(HashAlg::Sha1), b"data".to_vec()),
        (Mechanism::RsaPkcsHash(HashAlg::Sha3_384), b"data".to_vec()),
        (
            Mechanism::RsaPss(pss(HashAlg::Sha256, HashAlg::Sha256, 32)),
            d32.clone(),
        ),
        (
            Mechanism::RsaPss(pss(HashAlg::Sha256, HashAlg::Sha1, 0)),
            d32.clone(),
        ),
        (
            Mechanism::RsaPssHash(HashAlg::Sha512, pss(HashAlg::Sha512, HashAlg::Sha512, 64)),
            b"data".to_vec(),
        ),
        (
            Mechanism::RsaPssHash(
                HashAlg::Sha3_256,
                pss(HashAlg::Sha3_256, HashAlg::Sha256, 20),
            ),
            b"data".to_vec(),
        ),
    ];
    for (m, data) in mechs {
        let s = k.sign(&m, &data)?;
        assert_eq!(s.len(), 256, "{m:?}");
        assert_eq!(k.signature_len(&m)?, 256);
        p.verify(&m, &data, &s)?;
        k.verify(&m, &data, &s)?;
        let mut bad = s.clone();
        bad[200] ^= 1;
        assert_eq!(rv(p.verify(&m, &data, &bad)), Rv::SignatureInvalid, "{m:?}");
        assert_eq!(rv(p.verify(&m, &data, &s[..255])), Rv::SignatureLenRange);
    }
    // Parameter and length errors.
    assert_eq!(
        rv(k.sign(
            &Mechanism::RsaPss(pss(HashAlg::Sha256, HashAlg::Sha256, 32)),
            &[0; 20]
        )),
        Rv::DataLenRange
    );
    let mism = Mechanism::RsaPssHash(HashAlg::Sha256, pss(HashAlg::Sha384, HashAlg::Sha384, 0));
    assert_eq!(rv(k.sign(&mism, b"x")), Rv::MechanismParamInvalid);
    let big_salt = Mechanism::RsaPss(pss(HashAlg::Sha256, HashAlg::Sha256, 256 - 32 - 1));
    assert_eq!(rv(k.sign(&big_salt, &d32)), Rv::MechanismParamInvalid);
    assert_eq!(rv(k.sign(&Mechanism::RsaPkcs, &[0; 246])), Rv::DataLenRange);
    assert_eq!(
        rv(k.sign(&Mechanism::RsaX509, &[0xff; 256])),
        Rv::DataInvalid
    );
    assert_eq!(
        rv(k.sign(&Mechanism::EcdsaHash(HashAlg::Sha256), b"x")),
        Rv::KeyTypeInconsistent
    );
    assert_eq!(
        rv(p.sign(&Mechanism::RsaPkcs, b"x")),
        Rv::KeyTypeInconsistent
    );

    // Encryption.
    for m in [
        Mechanism::RsaPkcs,
        Mechanism::RsaOaep(OaepParams {
            hash: HashAlg::Sha256,
            mgf: HashAlg::Sha256,
            label: vec![],
        }),
        Mechanism::RsaOaep(OaepParams {
            hash: HashAlg::Sha1,
            mgf: HashAlg::Sha1,
            label: b"label".to_vec(),
        }),
        Mechanism::RsaOaep(OaepParams {
            hash: HashAlg::Sha3_512,
            mgf: HashAlg::Sha256,
            label: vec![],
        }),
    ] {
        let ct = p.encrypt(&m, b"a secret")?;
        assert_eq!(&k.decrypt(&m, &ct)?[..], b"a secret");
        assert_eq!(rv(k.decrypt(&m, &ct[1..])), Rv::EncryptedDataLenRange);
    }
    let oaep = Mechanism::RsaOaep(OaepParams {
        hash: HashAlg::Sha256,
        mgf: HashAlg::Sha256,
        label: vec![],
    });
    let mut ct = p.encrypt(&oaep, b"x")?;
    ct[10] ^= 1;
    assert_eq!(rv(k.decrypt(&oaep, &ct)), Rv::EncryptedDataInvalid);
    assert_eq!(rv(p.encrypt(&oaep, &[0; 256 - 64 - 1])), Rv::DataLenRange);
    let raw = p.encrypt(&Mechanism::RsaX509, &[1, 2, 3])?;
    let dec = k.decrypt(&Mechanism::RsaX509, &raw)?;
    assert_eq!(dec.len(), 256);
    assert_eq!(&dec[253..], &[1, 2, 3]);

    // Wrapping an AES key and a private key with RSA-OAEP.
    let w = p.wrap(&oaep, &km(&[9; 32]))?;
    assert_eq!(*k.unwrap(&oaep, &w)?, vec![9; 32]);
    assert_eq!(rv(k.unwrap(&oaep, &w[..100])), Rv::WrappedKeyLenRange);
    let mut wb = w.clone();
    wb[0] ^= 1;
    assert_eq!(rv(k.unwrap(&oaep, &wb)), Rv::WrappedKeyInvalid);
    Ok(())
}

#[test]
fn rsa_pkcs1_import_and_detect() -> R {
    let rsa = openssl::rsa::Rsa::generate(2048)?;
    let pkcs1 = rsa.private_key_to_der()?;
    assert_eq!(detect_private(&pkcs1)?, KeyAlg::Rsa);
    let p8 = normalize_private_der(&pkcs1)?;
    let info = public_info_from_private(KeyAlg::Rsa, p8.expose())?;
    assert_eq!(info.modulus.as_deref(), Some(&rsa.n().to_vec()[..]));
    let (alg, info2) = detect_public(&info.spki)?;
    assert_eq!(alg, KeyAlg::Rsa);
    assert_eq!(info2, info);
    assert_eq!(
        rv(public_info_from_private(
            KeyAlg::Ec(Curve::P256),
            p8.expose()
        )),
        Rv::KeyTypeInconsistent
    );
    Ok(())
}

// ---------------------------------------------------------------- post-quantum

#[test]
fn ml_dsa() -> R {
    for (p, len) in [
        (MlDsaParam::MlDsa44, 2420),
        (MlDsaParam::MlDsa65, 3309),
        (MlDsaParam::MlDsa87, 4627),
    ] {
        let alg = KeyAlg::MlDsa(p);
        let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
        assert_eq!(detect_private(sk.expose())?, alg);
        assert_eq!(detect_public(&info.spki)?.0, alg);
        assert!(info.raw_public.is_some());
        let k = LoadedKey::private(alg, sk.expose())?;
        let pk = LoadedKey::public(alg, &info.spki)?;
        for ctx in [vec![], b"ctx".to_vec(), vec![7; 255]] {
            let m = Mechanism::MlDsa {
                context: ctx.clone(),
            };
            let s = k.sign(&m, b"message")?;
            assert_eq!(s.len(), len);
            assert_eq!(k.signature_len(&m)?, len);
            pk.verify(&m, b"message", &s)?;
            assert_eq!(rv(pk.verify(&m, b"massage", &s)), Rv::SignatureInvalid);
            assert_eq!(
                rv(pk.verify(&m, b"message", &s[1..])),
                Rv::SignatureLenRange
            );
            let other = Mechanism::MlDsa {
                context: b"other".to_vec(),
            };
            assert_eq!(rv(pk.verify(&other, b"message", &s)), Rv::SignatureInvalid);
        }
        let long = Mechanism::MlDsa {
            context: vec![0; 256],
        };
        assert_eq!(rv(k.sign(&long, b"m")), Rv::MechanismParamInvalid);
        assert_eq!(
            rv(k.sign(&Mechanism::SlhDsa { context: vec![] }, b"m")),
            Rv::KeyTypeInconsistent
        );
    }
    // Wrong key.
    let alg = KeyAlg::MlDsa(MlDsaParam::MlDsa65);
    let (a, _) = generate_key_pair(alg, &KeyPairParams::default())?;
    let (_, bi) = generate_key_pair(alg, &KeyPairParams::default())?;
    let m = Mechanism::MlDsa { context: vec![] };
    let s = LoadedKey::private(alg, a.expose())?.sign(&m, b"x")?;
    assert_eq!(
        rv(LoadedKey::public(alg, &bi.spki)?.verify(&m, b"x", &s)),
        Rv::SignatureInvalid
    );
    Ok(())
}

#[test]
fn slh_dsa() -> R {
    for (p, len) in [
        (SlhDsaParam::Sha2_128f, 17088),
        (SlhDsaParam::Sha2_128s, 7856),
        (SlhDsaParam::Shake128f, 17088),
    ] {
        let alg = KeyAlg::SlhDsa(p);
        let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
        assert_eq!(detect_private(sk.expose())?, alg);
        let k = LoadedKey::private(alg, sk.expose())?;
        let pk = LoadedKey::public(alg, &info.spki)?;
        let m = Mechanism::SlhDsa {
            context: b"tresor".to_vec(),
        };
        let s = k.sign(&m, b"message")?;
        assert_eq!(s.len(), len);
        pk.verify(&m, b"message", &s)?;
        assert_eq!(rv(pk.verify(&m, b"massage", &s)), Rv::SignatureInvalid);
        assert_eq!(
            rv(pk.verify(&Mechanism::SlhDsa { context: vec![] }, b"message", &s)),
            Rv::SignatureInvalid
        );
        assert_eq!(
            rv(pk.verify(&m, b"message", &s[..len - 1])),
            Rv::SignatureLenRange
        );
    }
    Ok(())
}

#[test]
fn ml_kem() -> R {
    for (p, ct_len) in [
        (MlKemParam::MlKem512, 768),
        (MlKemParam::MlKem768, 1088),
        (MlKemParam::MlKem1024, 1568),
    ] {
        let alg = KeyAlg::MlKem(p);
        let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
        let k = LoadedKey::private(alg, sk.expose())?;
        let pk = LoadedKey::public(alg, &info.spki)?;
        let (ct, ss) = pk.encapsulate(&Mechanism::MlKem)?;
        assert_eq!(ct.len(), ct_len);
        assert_eq!(ss.len(), 32);
        assert_eq!(*k.decapsulate(&Mechanism::MlKem, &ct)?, *ss);
        let (ct2, ss2) = k.encapsulate(&Mechanism::MlKem)?;
        assert_eq!(*k.decapsulate(&Mechanism::MlKem, &ct2)?, *ss2);
        assert_eq!(
            rv(k.decapsulate(&Mechanism::MlKem, &ct[1..])),
            Rv::EncryptedDataLenRange
        );
        // A tampered ciphertext decapsulates (implicit rejection) to a different secret.
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_ne!(*k.decapsulate(&Mechanism::MlKem, &bad)?, *ss);
        assert_eq!(
            rv(pk.decapsulate(&Mechanism::MlKem, &ct)),
            Rv::KeyTypeInconsistent
        );
        // Wrong key.
        let (other, _) = generate_key_pair(alg, &KeyPairParams::default())?;
        let other = LoadedKey::private(alg, other.expose())?;
        assert_ne!(*other.decapsulate(&Mechanism::MlKem, &ct)?, *ss);
    }
    Ok(())
}

// ---------------------------------------------------------------- misc

#[test]
fn secrets_random_oids() -> R {
    assert_eq!(generate_secret(KeyAlg::Aes, 32)?.expose().len(), 32);
    assert_eq!(rv(generate_secret(KeyAlg::Aes, 20)), Rv::KeySizeRange);
    assert_eq!(rv(generate_secret(KeyAlg::ChaCha20, 16)), Rv::KeySizeRange);
    assert_eq!(
        rv(generate_secret(KeyAlg::GenericSecret, 0)),
        Rv::KeySizeRange
    );
    assert_eq!(
        rv(generate_secret(KeyAlg::GenericSecret, 513)),
        Rv::KeySizeRange
    );
    assert_eq!(random(1_048_576)?.len(), 1_048_576);
    assert_eq!(rv(random(0)), Rv::DataLenRange);
    assert_eq!(rv(random(1_048_577)), Rv::DataLenRange);
    assert_ne!(*random(32)?, *random(32)?);
    let ed = curve_oid_der(AnyCurve::Edwards(EdCurve::Ed25519));
    assert_eq!(curve_from_oid_der(ed)?, AnyCurve::Edwards(EdCurve::Ed25519));
    let k = LoadedKey::secret(KeyAlg::GenericSecret, &[1; 32])?;
    assert!(!format!("{k:?}").contains("0101"));
    assert_eq!(
        rv(k.sign(&Mechanism::Digest(HashAlg::Sha256), b"x")),
        Rv::MechanismInvalid
    );
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedKey>();
    Ok(())
}

// ---------------------------------------------------------------- openssl CLI cross-checks

fn ossl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the `openssl` command ({e}); apt-get install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn write_pem(dir: &Path, name: &str, pkcs8: &[u8], spki: &[u8]) -> R {
    let k = openssl::pkey::PKey::private_key_from_pkcs8(pkcs8)?;
    std::fs::write(
        dir.join(format!("{name}.key")),
        k.private_key_to_pem_pkcs8()?,
    )?;
    let p = openssl::pkey::PKey::public_key_from_der(spki)?;
    std::fs::write(dir.join(format!("{name}.pub")), p.public_key_to_pem()?)?;
    Ok(())
}

#[test]
fn cli_cross_checks() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let data = b"The quick brown fox jumps over the lazy dog";
    std::fs::write(d.join("data"), data)?;

    // RSA PKCS#1 v1.5: deterministic, so the engine must equal `openssl dgst -sign`.
    let (k, info, sk) = rsa_key()?;
    write_pem(d, "rsa", sk.expose(), &info.spki)?;
    let cli = ossl(d, &["dgst", "-sha256", "-sign", "rsa.key", "data"]);
    let ours = k.sign(&Mechanism::RsaPkcsHash(HashAlg::Sha256), data)?;
    assert_eq!(ours, cli);
    std::fs::write(d.join("rsa.sig"), &ours)?;
    ossl(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "rsa.pub",
            "-signature",
            "rsa.sig",
            "data",
        ],
    );

    // RSA-PSS.
    let pss = Mechanism::RsaPssHash(
        HashAlg::Sha256,
        PssParams {
            hash: HashAlg::Sha256,
            mgf: HashAlg::Sha256,
            salt_len: 32,
        },
    );
    std::fs::write(d.join("pss.sig"), k.sign(&pss, data)?)?;
    ossl(
        d,
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-verify",
            "rsa.pub",
            "-signature",
            "pss.sig",
            "data",
        ],
    );

    // RSA-OAEP-SHA256 encrypted by the CLI, decrypted by the engine.
    ossl(
        d,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "rsa.pub",
            "-in",
            "data",
            "-out",
            "oaep.bin",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
    let oaep = Mechanism::RsaOaep(OaepParams {
        hash: HashAlg::Sha256,
        mgf: HashAlg::Sha256,
        label: vec![],
    });
    assert_eq!(
        &k.decrypt(&oaep, &std::fs::read(d.join("oaep.bin"))?)?[..],
        &data[..]
    );

    // ECDSA P-256 (raw r||s converted to DER).
    let alg = KeyAlg::Ec(Curve::P256);
    let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
    write_pem(d, "ec", sk.expose(), &info.spki)?;
    let k = LoadedKey::private(alg, sk.expose())?;
    for m in [
        Mechanism::EcdsaHash(HashAlg::Sha256),
        Mechanism::EcdsaDeterministic(HashAlg::Sha256),
    ] {
        let raw = k.sign(&m, data)?;
        std::fs::write(d.join("ec.sig"), ecdsa_raw_to_der(&raw)?)?;
        ossl(
            d,
            &[
                "dgst",
                "-sha256",
                "-verify",
                "ec.pub",
                "-signature",
                "ec.sig",
                "data",
            ],
        );
    }
    // And a CLI signature verifies in the engine.
    let cli = ossl(d, &["dgst", "-sha256", "-sign", "ec.key", "data"]);
    k.verify(
        &Mechanism::EcdsaHash(HashAlg::Sha256),
        data,
        &ecdsa_der_to_raw(&cli, Curve::P256)?,
    )?;

    // Ed25519.
    let alg = KeyAlg::Ed(EdCurve::Ed25519);
    let (sk, info) = generate_key_pair(alg, &KeyPairParams::default())?;
    write_pem(d, "ed", sk.expose(), &info.spki)?;
    let k = LoadedKey::private(alg, sk.expose())?;
    std::fs::write(d.join("ed.sig"), k.sign(&Mechanism::Eddsa, data)?)?;
    ossl(
        d,
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "ed.pub", "-rawin", "-in", "data",
            "-sigfile", "ed.sig",
        ],
    );

    // AES-256-CBC-PAD by the engine, decrypted by `openssl enc`.
    let key = [0x11u8; 32];
    let iv = [0x22u8; 16];
    let a = LoadedKey::secret(KeyAlg::Aes, &key)?;
    std::fs::write(
        d.join("aes.bin"),
        a.encrypt(&Mechanism::AesCbcPad { iv: iv.to_vec() }, data)?,
    )?;
    let pt = ossl(
        d,
        &[
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            &hex::encode(key),
            "-iv",
            &hex::encode(iv),
            "-in",
            "aes.bin",
        ],
    );
    assert_eq!(pt, data);
    Ok(())
}

// ---------------------------------------------------------------- hot-path timing

/// Times the hot signing paths: the engine (`LoadedKey`) against the raw libraries. Runs a
/// few iterations in every test run (no assertion on speed); set `TRESOR_BENCH_ITERS` and run
/// in release mode for figures.
#[test]
fn bench_hot_paths() -> R {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    use std::time::Instant;
    let iters: u32 = std::env::var("TRESOR_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let msg = [0x61u8; 64];
    let time = |name: &str, f: &mut dyn FnMut() -> R| -> R {
        f()?;
        let t = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        println!(
            "{name:<36} {:>9.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        );
        Ok(())
    };
    for (c, hh, awsalg) in [
        (
            Curve::P256,
            HashAlg::Sha256,
            &ECDSA_P256_SHA256_FIXED_SIGNING,
        ),
        (
            Curve::P384,
            HashAlg::Sha384,
            &ECDSA_P384_SHA384_FIXED_SIGNING,
        ),
    ] {
        let (sk, _) = generate_key_pair(KeyAlg::Ec(c), &KeyPairParams::default())?;
        let k = LoadedKey::private(KeyAlg::Ec(c), sk.expose())?;
        let m = Mechanism::EcdsaHash(hh);
        time(&format!("{c:?} engine EcdsaHash"), &mut || {
            k.sign(&m, &msg)?;
            Ok(())
        })?;
        let awsk = EcdsaKeyPair::from_pkcs8(awsalg, sk.expose()).map_err(|e| format!("{e:?}"))?;
        let rng = SystemRandom::new();
        time(&format!("{c:?} raw aws-lc-rs"), &mut || {
            awsk.sign(&rng, &msg).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })?;
        let pk = openssl::pkey::PKey::private_key_from_pkcs8(sk.expose())?;
        let md = if hh == HashAlg::Sha256 {
            openssl::hash::MessageDigest::sha256()
        } else {
            openssl::hash::MessageDigest::sha384()
        };
        time(&format!("{c:?} raw openssl Signer"), &mut || {
            let mut s = openssl::sign::Signer::new(md, &pk)?;
            s.sign_oneshot_to_vec(&msg)?;
            Ok(())
        })?;
        let sig = k.sign(&m, &msg)?;
        time(&format!("{c:?} engine verify EcdsaHash"), &mut || {
            k.verify(&m, &msg, &sig)?;
            Ok(())
        })?;
        time(&format!("{c:?} engine Ecdsa (prehashed)"), &mut || {
            k.sign(&Mechanism::Ecdsa, &msg[..32])?;
            Ok(())
        })?;
    }
    let (sk, _) = generate_key_pair(KeyAlg::Ed(EdCurve::Ed25519), &KeyPairParams::default())?;
    let k = LoadedKey::private(KeyAlg::Ed(EdCurve::Ed25519), sk.expose())?;
    time("Ed25519 engine", &mut || {
        k.sign(&Mechanism::Eddsa, &msg)?;
        Ok(())
    })?;
    let awsk =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(sk.expose()).map_err(|e| format!("{e:?}"))?;
    time("Ed25519 raw aws-lc-rs", &mut || {
        let _sig = awsk.sign(&msg);
        Ok(())
    })?;
    let pk = openssl::pkey::PKey::private_key_from_pkcs8(sk.expose())?;
    time("Ed25519 raw openssl Signer", &mut || {
        let mut s = openssl::sign::Signer::new_without_digest(&pk)?;
        s.sign_oneshot_to_vec(&msg)?;
        Ok(())
    })?;
    Ok(())
}
