//! The object-version digest of a partition: a keyed multiset hash that detects a rolled-back,
//! deleted or resurrected object.

use std::fmt;

use openssl::pkey::{PKey, Private};
use subtle::ConstantTimeEq;

use super::keys::{hkdf_sha256, hmac_with, SealKey, INFO_VERSION_DIGEST};
use crate::error::Result;

/// A digest value: 32 bytes, a number modulo 2^256 in big-endian order.
pub type Digest = [u8; 32];

/// The keyed multiset hash over the live `(object_id, version)` pairs of one partition.
///
/// Each pair maps to the element `HMAC-SHA256(digest_key, object_id (i64 BE) || version (i64
/// BE))`; the digest is the sum of the elements modulo 2^256. Adding an object adds its element,
/// removing it subtracts it, and changing its version is a remove of the old pair plus an add
/// of the new one, so the digest can be kept up to date in O(1) per change and recomputed from
/// scratch with [`VersionDigest::of_all`] to check the stored objects.
///
/// `digest_key = HKDF-SHA256(partition key, info "tresor version digest v1")`, so without the
/// partition key nobody can compute the element of a pair. `Debug` shows no key material.
pub struct VersionDigest {
    key: PKey<Private>,
}

impl VersionDigest {
    /// The digest object of the partition whose seal key is `partition_key`.
    pub fn new(partition_key: &SealKey) -> Result<VersionDigest> {
        let digest_key = hkdf_sha256(partition_key.expose_bytes(), INFO_VERSION_DIGEST)?;
        // OpenSSL copies the key and wipes its copy when the PKey is freed; ours is wiped by
        // `Zeroizing` here.
        let key = PKey::hmac(&digest_key[..])?;
        Ok(VersionDigest { key })
    }

    /// The digest of the empty set (all zero).
    pub fn empty() -> Digest {
        [0u8; 32]
    }

    fn element(&self, object_id: i64, version: i64) -> Result<Digest> {
        let mut msg = [0u8; 16];
        msg[..8].copy_from_slice(&object_id.to_be_bytes());
        msg[8..].copy_from_slice(&version.to_be_bytes());
        hmac_with(&self.key, &msg)
    }

    /// Adds the pair `(object_id, version)` to `acc` (an object was created, or got a version).
    pub fn add(&self, acc: &mut Digest, object_id: i64, version: i64) -> Result<()> {
        let e = self.element(object_id, version)?;
        add_mod(acc, &e);
        Ok(())
    }

    /// Removes the pair `(object_id, version)` from `acc` (an object was destroyed, or left
    /// that version). Removing a pair that was never added yields a digest that matches no set.
    pub fn remove(&self, acc: &mut Digest, object_id: i64, version: i64) -> Result<()> {
        let e = self.element(object_id, version)?;
        sub_mod(acc, &e);
        Ok(())
    }

    /// Replaces `(object_id, old_version)` by `(object_id, new_version)` in `acc`.
    pub fn update(
        &self,
        acc: &mut Digest,
        object_id: i64,
        old_version: i64,
        new_version: i64,
    ) -> Result<()> {
        self.remove(acc, object_id, old_version)?;
        self.add(acc, object_id, new_version)
    }

    /// The digest of a whole set of `(object_id, version)` pairs, in any order.
    pub fn of_all(&self, pairs: impl IntoIterator<Item = (i64, i64)>) -> Result<Digest> {
        let mut acc = Self::empty();
        for (oid, ver) in pairs {
            self.add(&mut acc, oid, ver)?;
        }
        Ok(acc)
    }

    /// Compares two digests in constant time.
    pub fn matches(a: &Digest, b: &Digest) -> bool {
        a.ct_eq(b).into()
    }
}

impl fmt::Debug for VersionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VersionDigest(..)")
    }
}

/// `acc = acc + x mod 2^256`, both big-endian.
fn add_mod(acc: &mut Digest, x: &Digest) {
    let mut carry = 0u16;
    for (a, b) in acc.iter_mut().rev().zip(x.iter().rev()) {
        let s = u16::from(*a) + u16::from(*b) + carry;
        *a = (s & 0xff) as u8;
        carry = s >> 8;
    }
}

/// `acc = acc - x mod 2^256`, both big-endian.
fn sub_mod(acc: &mut Digest, x: &Digest) {
    let mut borrow = 0u16;
    for (a, b) in acc.iter_mut().rev().zip(x.iter().rev()) {
        let sub = u16::from(*b) + borrow;
        let cur = u16::from(*a);
        if cur >= sub {
            *a = (cur - sub) as u8;
            borrow = 0;
        } else {
            *a = (cur + 256 - sub) as u8;
            borrow = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn vd() -> VersionDigest {
        VersionDigest::new(&SealKey::from_bytes(&[7u8; 32]).unwrap()).unwrap()
    }

    #[test]
    fn arithmetic_wraps() {
        let mut a = [0xffu8; 32];
        let mut one = [0u8; 32];
        one[31] = 1;
        add_mod(&mut a, &one);
        assert_eq!(a, [0u8; 32]);
        sub_mod(&mut a, &one);
        assert_eq!(a, [0xffu8; 32]);
        let mut b = [0u8; 32];
        b[30] = 1; // 256
        sub_mod(&mut b, &one);
        let mut expect = [0u8; 32];
        expect[31] = 0xff;
        assert_eq!(b, expect);
    }

    #[test]
    fn order_does_not_matter_and_remove_undoes_add() {
        let d = vd();
        let pairs = [(1, 1), (2, 5), (3, 2), (40, 9)];
        let fwd = d.of_all(pairs).unwrap();
        let rev = d.of_all(pairs.iter().rev().copied()).unwrap();
        assert!(VersionDigest::matches(&fwd, &rev));
        let mut acc = fwd;
        d.remove(&mut acc, 2, 5).unwrap();
        assert_eq!(acc, d.of_all([(1, 1), (3, 2), (40, 9)]).unwrap());
        d.add(&mut acc, 2, 5).unwrap();
        assert_eq!(acc, fwd);
        for (o, v) in pairs {
            d.remove(&mut acc, o, v).unwrap();
        }
        assert_eq!(acc, VersionDigest::empty());
    }

    #[test]
    fn update_and_rollback_detection() {
        let d = vd();
        let mut acc = d.of_all([(1, 1), (2, 1)]).unwrap();
        d.update(&mut acc, 2, 1, 2).unwrap();
        assert_eq!(acc, d.of_all([(1, 1), (2, 2)]).unwrap());
        // The store rolled object 2 back to version 1: the recomputed digest differs.
        let stored = d.of_all([(1, 1), (2, 1)]).unwrap();
        assert!(!VersionDigest::matches(&acc, &stored));
        // A deleted object reappears, or a live one vanishes.
        assert!(!VersionDigest::matches(
            &acc,
            &d.of_all([(1, 1), (2, 2), (3, 1)]).unwrap()
        ));
        assert!(!VersionDigest::matches(&acc, &d.of_all([(1, 1)]).unwrap()));
        // Swapping versions between objects is seen too.
        let a = d.of_all([(1, 1), (2, 2)]).unwrap();
        let b = d.of_all([(1, 2), (2, 1)]).unwrap();
        assert!(!VersionDigest::matches(&a, &b));
    }

    #[test]
    fn key_dependent() {
        let other = VersionDigest::new(&SealKey::from_bytes(&[8u8; 32]).unwrap()).unwrap();
        assert_ne!(
            vd().of_all([(1, 1)]).unwrap(),
            other.of_all([(1, 1)]).unwrap()
        );
        assert_eq!(format!("{other:?}"), "VersionDigest(..)");
    }

    proptest! {
        #[test]
        fn prop_add_sub_inverse(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let mut x = a;
            add_mod(&mut x, &b);
            sub_mod(&mut x, &b);
            prop_assert_eq!(x, a);
            let (mut p, mut q) = (a, b);
            add_mod(&mut p, &b);
            add_mod(&mut q, &a);
            prop_assert_eq!(p, q);
        }
    }
}
