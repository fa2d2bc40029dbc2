//! Known answers for the post-quantum key generation: the IETF LAMPS example keys (fixed
//! seeds) must give exactly the published public keys, and those keys must work end to end.

#![allow(clippy::unwrap_used)]

use tresor_core::crypto::{KeyAlg, LoadedKey, Mechanism, MlDsaParam, MlKemParam};

/// PKCS#8 in the seed-only form: `SEQUENCE { 0, AlgorithmIdentifier { oid }, OCTET STRING {
/// [0] IMPLICIT seed } }`.
fn seed_pkcs8(oid_last: u8, arc: u8, seed: &[u8]) -> Vec<u8> {
    let oid = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, arc, oid_last,
    ];
    let alg = [&[0x30, oid.len() as u8][..], &oid].concat();
    let inner = [&[0x80, seed.len() as u8][..], seed].concat();
    let octet = [&[0x04, inner.len() as u8][..], &inner].concat();
    let body = [&[0x02, 0x01, 0x00][..], &alg, &octet].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

fn expected_spki(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/vectors/lamps/{name}.pub",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read(&path).unwrap();
    openssl::pkey::PKey::public_key_from_pem(&pem)
        .unwrap()
        .public_key_to_der()
        .unwrap()
}

#[test]
fn ml_dsa_keygen_from_seed_matches_the_published_keys() {
    let seed: Vec<u8> = (0u8..32).collect();
    for (name, last, p) in [
        ("ML-DSA-44", 0x11, MlDsaParam::MlDsa44),
        ("ML-DSA-65", 0x12, MlDsaParam::MlDsa65),
        ("ML-DSA-87", 0x13, MlDsaParam::MlDsa87),
    ] {
        let alg = KeyAlg::MlDsa(p);
        let k = LoadedKey::private(alg, &seed_pkcs8(last, 0x03, &seed)).unwrap();
        let spki = k.public_info().unwrap().spki.clone();
        assert_eq!(
            spki,
            expected_spki(name),
            "{name}: public key from the seed"
        );
        // The key signs, and the published public key verifies (and rejects a changed message).
        let m = Mechanism::MlDsa { context: vec![] };
        let sig = k.sign(&m, b"known answer").unwrap();
        let public = LoadedKey::public(alg, &expected_spki(name)).unwrap();
        public.verify(&m, b"known answer", &sig).unwrap();
        assert!(public.verify(&m, b"known answer?", &sig).is_err());
    }
}

#[test]
fn ml_kem_keygen_from_seed_matches_the_published_keys() {
    let seed: Vec<u8> = (0u8..64).collect();
    for (name, last, p) in [
        ("ML-KEM-512", 0x01, MlKemParam::MlKem512),
        ("ML-KEM-768", 0x02, MlKemParam::MlKem768),
        ("ML-KEM-1024", 0x03, MlKemParam::MlKem1024),
    ] {
        let alg = KeyAlg::MlKem(p);
        let k = LoadedKey::private(alg, &seed_pkcs8(last, 0x04, &seed)).unwrap();
        assert_eq!(
            k.public_info().unwrap().spki,
            expected_spki(name),
            "{name}: public key from the seed"
        );
        // Encapsulating to the published key gives a secret the seed key recovers.
        let public = LoadedKey::public(alg, &expected_spki(name)).unwrap();
        let (ct, ss) = public.encapsulate(&Mechanism::MlKem).unwrap();
        assert_eq!(
            k.decapsulate(&Mechanism::MlKem, &ct).unwrap().as_slice(),
            ss.as_slice()
        );
    }
}
