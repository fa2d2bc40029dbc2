//! Symmetric keys of the sealing layer, AES-256-GCM sealing and the AAD builders.

use std::fmt;

use openssl::md::Md;
use openssl::pkey::{Id, PKey};
use openssl::pkey_ctx::PkeyCtx;
use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result, Rv};

/// Length of every key of the sealing layer, in bytes.
pub const KEY_LEN: usize = 32;
/// The version byte that starts every sealed blob.
pub const BLOB_VERSION: u8 = 0x01;
/// Length of the random AES-GCM nonce stored in a sealed blob.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag that ends a sealed blob.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext (version, nonce and tag).
pub const BLOB_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// HKDF `info` for the master key derived from the shared secret scalar.
pub(crate) const INFO_MASTER: &[u8] = b"tresor master key v1";
/// HKDF `info` for the AES key the master key seals with.
pub(crate) const INFO_MASTER_SEAL: &[u8] = b"tresor master seal key v1";
/// HMAC message of the key check value.
pub(crate) const KCV_MESSAGE: &[u8] = b"tresor kcv v1";
/// HKDF `info` for the key of a partition's version digest.
pub(crate) const INFO_VERSION_DIGEST: &[u8] = b"tresor version digest v1";

/// HKDF-SHA256 (RFC 5869) with an empty salt, 32 bytes of output.
pub(crate) fn hkdf_sha256(ikm: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut ctx = PkeyCtx::new_id(Id::HKDF)?;
    ctx.derive_init()?;
    ctx.set_hkdf_md(Md::sha256())?;
    ctx.set_hkdf_key(ikm)?;
    ctx.add_hkdf_info(info)?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let n = ctx.derive(Some(&mut out[..]))?;
    if n != KEY_LEN {
        return Err(Error::new(
            Rv::FunctionFailed,
            "HKDF-SHA256 returned a short output",
        ));
    }
    Ok(out)
}

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<[u8; 32]> {
    let pkey = PKey::hmac(key)?;
    hmac_with(&pkey, message)
}

/// HMAC-SHA256 of `message` under an already built HMAC key.
pub(crate) fn hmac_with(pkey: &PKey<openssl::pkey::Private>, message: &[u8]) -> Result<[u8; 32]> {
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), pkey)?;
    signer.update(message)?;
    let mut out = [0u8; 32];
    let n = signer.sign(&mut out)?;
    if n != out.len() {
        return Err(Error::new(
            Rv::FunctionFailed,
            "HMAC-SHA256 returned a short output",
        ));
    }
    Ok(out)
}

/// A 256-bit AES-GCM key that seals blobs (a partition key, or the key derived from the master
/// key).
///
/// The bytes are wiped on drop and never printed: `Debug` shows `SealKey(..)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealKey([u8; KEY_LEN]);

impl SealKey {
    /// A new random key from OpenSSL's private DRBG.
    pub fn random() -> Result<SealKey> {
        let mut key = SealKey([0u8; KEY_LEN]);
        openssl::rand::rand_priv_bytes(&mut key.0)?;
        Ok(key)
    }

    /// A key from its 32 raw bytes; any other length is `CKR_KEY_SIZE_RANGE`.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealKey> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::new(
                Rv::KeySizeRange,
                format!("a seal key is {KEY_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        Ok(SealKey(arr))
    }

    /// The raw key bytes. They are secret: never log or store them unsealed.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext` under this key, bound to `aad`; see [`seal`].
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        seal(self, aad, plaintext)
    }

    /// Opens a blob sealed under this key with the same `aad`; see [`open`].
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open(self, aad, blob)
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// The cluster's master key: 32 bytes derived from the secret that the shares reconstruct.
///
/// It exists only in memory, between `tresor unseal` (or [`init`](super::init)) and shutdown;
/// it is never stored whole. It seals partition keys and cluster secrets through the AES key
/// [`MasterKey::seal_key`] derived from it. The bytes are wiped on drop; `Debug` shows
/// `MasterKey(..)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    seal: SealKey,
}

impl MasterKey {
    /// Derives the master key from the big-endian bytes of the shared secret scalar.
    pub(crate) fn from_secret(secret: &[u8]) -> Result<MasterKey> {
        let key = hkdf_sha256(secret, INFO_MASTER)?;
        let seal = hkdf_sha256(&key[..], INFO_MASTER_SEAL)?;
        Ok(MasterKey {
            key: *key,
            seal: SealKey(*seal),
        })
    }

    /// The key check value: HMAC-SHA256(master key, `"tresor kcv v1"`). Public.
    pub(crate) fn kcv(&self) -> Result<[u8; 32]> {
        hmac_sha256(&self.key, KCV_MESSAGE)
    }

    /// The AES-256-GCM key derived from the master key (HKDF-SHA256, info
    /// `"tresor master seal key v1"`). It seals partition keys ([`aad_partition_key`]) and
    /// cluster secrets ([`aad_cluster`]).
    pub fn seal_key(&self) -> &SealKey {
        &self.seal
    }

    /// Seals (wraps) a partition key under the master key, bound to `partition_id`.
    pub fn wrap_partition_key(&self, partition_id: i64, key: &SealKey) -> Result<Vec<u8>> {
        seal(
            &self.seal,
            &aad_partition_key(partition_id),
            key.expose_bytes(),
        )
    }

    /// Opens a partition key wrapped by [`MasterKey::wrap_partition_key`] for the same
    /// `partition_id`; any failure is an integrity error.
    pub fn unwrap_partition_key(&self, partition_id: i64, blob: &[u8]) -> Result<SealKey> {
        let bytes = open(&self.seal, &aad_partition_key(partition_id), blob)?;
        SealKey::from_bytes(&bytes).map_err(|_| {
            Error::integrity(format!(
                "partition {partition_id}: wrapped partition key has the wrong length"
            ))
        })
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Seals `plaintext` with AES-256-GCM under `key`, authenticating `aad` (which is not stored).
///
/// Output: `0x01 || nonce (12 random bytes) || ciphertext || tag (16 bytes)`; the ciphertext
/// has the plaintext's length.
pub fn seal(key: &SealKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    let mut tag = [0u8; TAG_LEN];
    let ciphertext = openssl::symm::encrypt_aead(
        Cipher::aes_256_gcm(),
        key.expose_bytes(),
        Some(&nonce),
        aad,
        plaintext,
        &mut tag,
    )?;
    let mut blob = Vec::with_capacity(BLOB_OVERHEAD + plaintext.len());
    blob.push(BLOB_VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    blob.extend_from_slice(&tag);
    Ok(blob)
}

/// Opens a blob made by [`seal`] under `key` with the same `aad`.
///
/// Every failure is [`Error::integrity`] and names its cause: an unknown version byte, a blob
/// too short to hold nonce and tag, or a tag mismatch (tampered blob, wrong key or wrong AAD:
/// the blob was moved, swapped or rolled back). The plaintext is wiped when dropped.
pub fn open(key: &SealKey, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (&version, rest) = blob
        .split_first()
        .ok_or_else(|| Error::integrity("sealed blob is empty"))?;
    if version != BLOB_VERSION {
        return Err(Error::integrity(format!(
            "sealed blob has unknown version byte 0x{version:02x} (expected 0x{BLOB_VERSION:02x})"
        )));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::integrity(format!(
            "sealed blob is too short ({} bytes, at least {BLOB_OVERHEAD} expected)",
            blob.len()
        )));
    }
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);

    let cipher = Cipher::aes_256_gcm();
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key.expose_bytes(), Some(nonce))?;
    crypter.aad_update(aad)?;
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len() + cipher.block_size()]);
    let mut n = crypter.update(ciphertext, &mut out)?;
    crypter.set_tag(tag)?;
    match crypter.finalize(&mut out[n..]) {
        Ok(m) => n += m,
        Err(_) => {
            return Err(Error::integrity(
                "sealed blob failed authentication (tag mismatch: tampered, wrong key, or moved/rolled back)",
            ))
        }
    }
    out.truncate(n);
    Ok(out)
}

fn aad_with_label(label: &[u8], fields: &[i64]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 1 + 8 * fields.len());
    aad.extend_from_slice(label);
    aad.push(0);
    for f in fields {
        aad.extend_from_slice(&f.to_be_bytes());
    }
    aad
}

/// AAD of a partition key wrapped under the master key:
/// `"tresor/partition-key/v1" 0x00 || partition_id (i64 BE)`.
pub fn aad_partition_key(partition_id: i64) -> Vec<u8> {
    aad_with_label(b"tresor/partition-key/v1", &[partition_id])
}

/// AAD of a partition's own record (users, settings, version digest) sealed under the partition
/// key: `"tresor/partition-record/v1" 0x00 || partition_id (i64 BE) || version (i64 BE)`.
pub fn aad_partition_record(partition_id: i64, version: i64) -> Vec<u8> {
    aad_with_label(b"tresor/partition-record/v1", &[partition_id, version])
}

/// AAD of an object blob sealed under its partition key:
/// `"tresor/object/v1" 0x00 || partition_id || object_id || version` (each i64 BE).
pub fn aad_object(partition_id: i64, object_id: i64, version: i64) -> Vec<u8> {
    aad_with_label(b"tresor/object/v1", &[partition_id, object_id, version])
}

/// AAD of a sealed copy of a session object, kept by the application's client library:
/// `"tresor/session-object/v1" 0x00 || partition_id (i64) || token generation (u64) ||
/// len(fingerprint) (u32) || fingerprint (UTF-8) || len(token) (u32) || token ||
/// object_id (i64) || version (i64)`, all big-endian. The fingerprint is the client key's, the
/// token the application's (`AttachSession`): the copy opens only for that application, on
/// that partition, before the token is re-initialised, as that object at that version.
pub fn aad_session_object(
    partition_id: i64,
    generation: u64,
    fingerprint: &str,
    token: &[u8],
    object_id: i64,
    version: i64,
) -> Vec<u8> {
    let label = b"tresor/session-object/v1";
    let mut aad =
        Vec::with_capacity(label.len() + 1 + 16 + 8 + fingerprint.len() + token.len() + 16);
    aad.extend_from_slice(label);
    aad.push(0);
    aad.extend_from_slice(&partition_id.to_be_bytes());
    aad.extend_from_slice(&generation.to_be_bytes());
    for field in [fingerprint.as_bytes(), token] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad.extend_from_slice(&object_id.to_be_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// AAD of a cluster secret (e.g. the root or node private key) sealed under the master key's
/// seal key: `"tresor/cluster/v1" 0x00 || len(name) (u32 BE) || name (UTF-8)`.
pub fn aad_cluster(name: &str) -> Vec<u8> {
    let label = b"tresor/cluster/v1";
    let mut aad = Vec::with_capacity(label.len() + 5 + name.len());
    aad.extend_from_slice(label);
    aad.push(0);
    // A name longer than u32::MAX bytes cannot exist in practice; saturate rather than panic.
    let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    aad.extend_from_slice(&len.to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::vendor;
    use proptest::prelude::*;

    fn is_integrity(e: &Error) -> bool {
        e.rv() == Rv::Vendor(vendor::INTEGRITY)
    }

    #[test]
    fn round_trip_and_layout() {
        let key = SealKey::random().unwrap();
        let aad = aad_object(1, 2, 3);
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let blob = seal(&key, &aad, &pt).unwrap();
            assert_eq!(blob.len(), pt.len() + BLOB_OVERHEAD);
            assert_eq!(blob[0], BLOB_VERSION);
            assert_eq!(&*open(&key, &aad, &blob).unwrap(), &pt);
            assert_eq!(
                &*key.open(&aad, &key.seal(&aad, &pt).unwrap()).unwrap(),
                &pt
            );
        }
    }

    #[test]
    fn session_object_aads_bind_every_field() {
        let base = aad_session_object(1, 2, "fp", b"tok", -3, 4);
        assert!(base.starts_with(b"tresor/session-object/v1\0"));
        for other in [
            aad_session_object(9, 2, "fp", b"tok", -3, 4),
            aad_session_object(1, 3, "fp", b"tok", -3, 4),
            aad_session_object(1, 2, "fq", b"tok", -3, 4),
            aad_session_object(1, 2, "fp", b"tox", -3, 4),
            aad_session_object(1, 2, "f", b"ptok", -3, 4),
            aad_session_object(1, 2, "fp", b"tok", -4, 4),
            aad_session_object(1, 2, "fp", b"tok", -3, 5),
        ] {
            assert_ne!(base, other);
        }
        let key = SealKey::random().unwrap();
        let blob = seal(&key, &base, b"payload").unwrap();
        assert!(open(&key, &aad_session_object(1, 2, "fp", b"tox", -3, 4), &blob).is_err());
    }

    #[test]
    fn nonces_differ() {
        let key = SealKey::random().unwrap();
        let a = seal(&key, b"x", b"same").unwrap();
        let b = seal(&key, b"x", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn any_tampered_byte_is_an_integrity_error() {
        let key = SealKey::random().unwrap();
        let aad = aad_object(7, 8, 9);
        let blob = seal(&key, &aad, b"attack at dawn").unwrap();
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = blob.clone();
                t[i] ^= bit;
                let e = open(&key, &aad, &t).unwrap_err();
                assert!(is_integrity(&e), "byte {i}: {e}");
                if i == 0 {
                    assert!(e.detail().contains("unknown version byte"), "{e}");
                } else {
                    assert!(e.detail().contains("tag mismatch"), "{e}");
                }
            }
        }
    }

    #[test]
    fn short_and_empty_blobs() {
        let key = SealKey::random().unwrap();
        let e = open(&key, b"", &[]).unwrap_err();
        assert!(is_integrity(&e) && e.detail().contains("empty"), "{e}");
        let blob = seal(&key, b"", b"").unwrap();
        for cut in 1..blob.len() {
            let e = open(&key, b"", &blob[..cut]).unwrap_err();
            assert!(
                is_integrity(&e) && e.detail().contains("too short"),
                "{cut}: {e}"
            );
        }
        // Truncating a longer blob keeps it long enough but breaks the tag.
        let blob = seal(&key, b"", &[5u8; 40]).unwrap();
        let e = open(&key, b"", &blob[..blob.len() - 1]).unwrap_err();
        assert!(e.detail().contains("tag mismatch"), "{e}");
    }

    #[test]
    fn wrong_key_or_aad_is_an_integrity_error() {
        let key = SealKey::random().unwrap();
        let other = SealKey::random().unwrap();
        let blob = seal(&key, &aad_object(1, 10, 5), b"secret").unwrap();
        // Right place opens.
        assert!(open(&key, &aad_object(1, 10, 5), &blob).is_ok());
        // Swapped object id, other partition, rolled-back or advanced version, wrong key.
        for (k, aad) in [
            (&key, aad_object(1, 11, 5)),
            (&key, aad_object(2, 10, 5)),
            (&key, aad_object(1, 10, 4)),
            (&key, aad_object(1, 10, 6)),
            (&key, aad_partition_record(1, 10)),
            (&other, aad_object(1, 10, 5)),
        ] {
            let e = open(k, &aad, &blob).unwrap_err();
            assert!(is_integrity(&e), "{e}");
        }
    }

    #[test]
    fn aad_layouts_are_exact_and_distinct() {
        let mut expect = b"tresor/object/v1\0".to_vec();
        expect.extend_from_slice(&1i64.to_be_bytes());
        expect.extend_from_slice(&2i64.to_be_bytes());
        expect.extend_from_slice(&(-3i64).to_be_bytes());
        assert_eq!(aad_object(1, 2, -3), expect);
        let mut expect = b"tresor/cluster/v1\0".to_vec();
        expect.extend_from_slice(&[0, 0, 0, 4]);
        expect.extend_from_slice(b"root");
        assert_eq!(aad_cluster("root"), expect);
        let all = [
            aad_partition_key(1),
            aad_partition_record(1, 1),
            aad_object(1, 1, 1),
            aad_cluster(""),
            aad_cluster("root"),
            aad_cluster("node"),
        ];
        for i in 0..all.len() {
            for j in 0..all.len() {
                assert_eq!(i == j, all[i] == all[j]);
            }
        }
    }

    #[test]
    fn seal_key_from_bytes() {
        assert!(SealKey::from_bytes(&[1u8; 32]).is_ok());
        let e = SealKey::from_bytes(&[1u8; 31]).unwrap_err();
        assert_eq!(e.rv(), Rv::KeySizeRange);
        let k = SealKey::from_bytes(&[0xabu8; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "SealKey(..)");
    }

    #[test]
    fn partition_key_wrap_is_bound_to_partition() {
        let master = MasterKey::from_secret(&[9u8; 32]).unwrap();
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        let pk = SealKey::random().unwrap();
        let wrapped = master.wrap_partition_key(4, &pk).unwrap();
        let back = master.unwrap_partition_key(4, &wrapped).unwrap();
        assert_eq!(back.expose_bytes(), pk.expose_bytes());
        let e = master.unwrap_partition_key(5, &wrapped).unwrap_err();
        assert!(is_integrity(&e), "{e}");
        // A blob of the wrong length sealed at the right place is still refused.
        let bad = seal(master.seal_key(), &aad_partition_key(4), &[1u8; 16]).unwrap();
        let e = master.unwrap_partition_key(4, &bad).unwrap_err();
        assert!(
            is_integrity(&e) && e.detail().contains("wrong length"),
            "{e}"
        );
    }

    #[test]
    fn kdf_known_answers() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 5869 test case 3 (empty salt, empty info), first 32 bytes.
        let okm = hkdf_sha256(&[0x0b; 22], b"").unwrap();
        assert_eq!(
            hex::encode(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    proptest! {
        #[test]
        fn prop_seal_open(pt in proptest::collection::vec(any::<u8>(), 0..512),
                          aad in proptest::collection::vec(any::<u8>(), 0..64),
                          flip in any::<prop::sample::Index>()) {
            let key = SealKey::random().unwrap();
            let blob = seal(&key, &aad, &pt).unwrap();
            prop_assert_eq!(&*open(&key, &aad, &blob).unwrap(), &pt);
            let mut t = blob.clone();
            let i = flip.index(t.len());
            t[i] ^= 0x10;
            prop_assert!(is_integrity(&open(&key, &aad, &t).unwrap_err()));
        }

        #[test]
        fn prop_open_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..128)) {
            let key = SealKey::from_bytes(&[3u8; 32]).unwrap();
            prop_assert!(open(&key, b"", &blob).is_err());
        }
    }
}
