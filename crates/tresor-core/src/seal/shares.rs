//! The master secret, its Feldman-verifiable shares (vsss-rs over P-256), their text form, and
//! the public [`SealConfig`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use p256::elliptic_curve::ff::{Field, PrimeField};
use p256::elliptic_curve::rand_core::{TryCryptoRng, TryRng};
use p256::{FieldBytes, ProjectivePoint, Scalar};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet, Share as _,
    ShareElement, ShareVerifierGroup,
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::keys::MasterKey;
use crate::error::{vendor, Error, Result, Rv};

/// The only [`SealConfig::version`] this code writes and reads.
pub const SEAL_CONFIG_VERSION: u32 = 1;
/// The prefix of every share text of format version 1.
pub const SHARE_PREFIX: &str = "tresor-share-v1-";

type VShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type VVerifier = ShareVerifierGroup<ProjectivePoint>;

/// Length of a compressed SEC1 P-256 point.
const POINT_LEN: usize = 33;
/// Share body: cluster id (16) || share value (32).
const BODY_LEN: usize = 16 + 32;
/// Base32 characters of the body (ceil(48 * 8 / 5)).
const BODY_CHARS: usize = (BODY_LEN * 8).div_ceil(5);
/// Hex characters of the checksum (4 bytes).
const CHECKSUM_CHARS: usize = 8;

fn bad_share(detail: impl Into<String>) -> Error {
    Error::new(Rv::Vendor(vendor::BAD_SHARE), detail)
}

// ---------------------------------------------------------------------------------------------
// Randomness for vsss-rs: OpenSSL's DRBG behind rand_core 0.10's infallible interface. A failure
// is recorded and checked after use, so that nothing made from a failed draw is ever returned.

struct OsslRng {
    failed: bool,
}

impl OsslRng {
    fn new() -> Self {
        OsslRng { failed: false }
    }

    fn check(&self) -> Result<()> {
        if self.failed {
            Err(Error::new(
                Rv::FunctionFailed,
                "the random number generator failed",
            ))
        } else {
            Ok(())
        }
    }
}

impl TryRng for OsslRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Infallible> {
        if openssl::rand::rand_priv_bytes(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

impl TryCryptoRng for OsslRng {}

// ---------------------------------------------------------------------------------------------
// SealConfig

/// The public sealing parameters of a cluster, stored by the engine in the cluster table.
///
/// It holds no secret: the format version, the threshold `M` and share count `N`, the Feldman
/// commitments that let each share be checked on its own, the key check value of the master key
/// and the random cluster id carried by every share. Serialized as JSON (see
/// `docs/sealing.md`). Since the store is untrusted, [`combine`] and [`check_share`] validate it
/// first ([`SealConfig::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    version: u32,
    cluster_id: Uuid,
    threshold: u8,
    share_count: u8,
    #[serde(with = "hex_list")]
    commitments: Vec<Vec<u8>>,
    #[serde(with = "hex_array")]
    kcv: [u8; 32],
}

impl SealConfig {
    /// The format version ([`SEAL_CONFIG_VERSION`]).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The random id of the cluster; every share carries it.
    pub fn cluster_id(&self) -> Uuid {
        self.cluster_id
    }

    /// `M`: how many shares reconstruct the master key.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// `N`: how many shares were made (indices `1..=N`).
    pub fn share_count(&self) -> u8 {
        self.share_count
    }

    /// The Feldman commitments `C_j = a_j·G` to the coefficients of the sharing polynomial
    /// (`C_0` commits to the secret), as compressed SEC1 P-256 points; `M` of them.
    pub fn commitments(&self) -> &[Vec<u8>] {
        &self.commitments
    }

    /// The key check value: HMAC-SHA256(master key, `"tresor kcv v1"`).
    pub fn kcv(&self) -> &[u8; 32] {
        &self.kcv
    }

    /// Checks that the config is well formed: known version, `1 <= M <= N`, `M` commitments,
    /// each a valid point other than the identity. A failure is an integrity error.
    pub fn validate(&self) -> Result<()> {
        self.verifier_set().map(|_| ())
    }

    /// The vsss-rs verifier set: the generator followed by the commitments.
    fn verifier_set(&self) -> Result<Vec<VVerifier>> {
        if self.version != SEAL_CONFIG_VERSION {
            return Err(Error::integrity(format!(
                "seal config: unsupported version {} (expected {SEAL_CONFIG_VERSION})",
                self.version
            )));
        }
        if self.threshold == 0 || self.threshold > self.share_count {
            return Err(Error::integrity(format!(
                "seal config: bad threshold {} of {} shares",
                self.threshold, self.share_count
            )));
        }
        if self.commitments.len() != usize::from(self.threshold) {
            return Err(Error::integrity(format!(
                "seal config: {} commitments for threshold {}",
                self.commitments.len(),
                self.threshold
            )));
        }
        let mut set = Vec::with_capacity(self.commitments.len() + 1);
        set.push(VVerifier::one());
        for (j, c) in self.commitments.iter().enumerate() {
            let not_a_point =
                || Error::integrity(format!("seal config: commitment {j} is not a P-256 point"));
            if c.len() != POINT_LEN {
                return Err(not_a_point());
            }
            let p = VVerifier::from_slice(c).map_err(|_| not_a_point())?;
            if bool::from(p.is_zero()) {
                return Err(Error::integrity(format!(
                    "seal config: commitment {j} is the identity"
                )));
            }
            set.push(p);
        }
        Ok(set)
    }
}

mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let h = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&h, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Share

/// One share of the master secret, for one key custodian.
///
/// It holds the share index (`1..=N`), the cluster id and the share value (a P-256 scalar). The
/// value is wiped on drop and never printed: `Debug` shows the index only, and there is no
/// `Display`. The text form for people is [`Share::expose_text`], read back with
/// [`Share::parse`] or [`str::parse`]:
///
/// `tresor-share-v1-<index>-<body>-<checksum>`, where `<index>` is decimal, `<body>` is the
/// lowercase RFC 4648 base32 (no padding) of `cluster id (16 bytes) || value (32 bytes, big
/// endian)`, and `<checksum>` is the first 4 bytes, in hex, of SHA-256 of everything before the
/// last `-`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    index: u8,
    cluster_id: [u8; 16],
    value: [u8; 32],
}

impl Share {
    /// The share index (`1..=N`), the x-coordinate of the share.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The id of the cluster this share belongs to.
    pub fn cluster_id(&self) -> Uuid {
        Uuid::from_bytes(self.cluster_id)
    }

    /// The text form of the share, to hand to its custodian. It is secret.
    pub fn expose_text(&self) -> Zeroizing<String> {
        let mut body = Zeroizing::new([0u8; BODY_LEN]);
        body[..16].copy_from_slice(&self.cluster_id);
        body[16..].copy_from_slice(&self.value);
        let mut text = Zeroizing::new(String::with_capacity(
            SHARE_PREFIX.len() + 4 + BODY_CHARS + 1 + CHECKSUM_CHARS,
        ));
        text.push_str(SHARE_PREFIX);
        text.push_str(&self.index.to_string());
        text.push('-');
        base32_encode_into(&body[..], &mut text);
        let sum = checksum(&text);
        text.push('-');
        text.push_str(&sum);
        text
    }

    /// Parses a share text. Case and ASCII whitespace (spaces, line breaks) are ignored.
    ///
    /// Errors (`TRESOR_BAD_SHARE`) name the share by its index when it can be read, e.g.
    /// `share 2: corrupted (checksum mismatch)`.
    pub fn parse(text: &str) -> Result<Share> {
        let norm: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        );
        let rest = match norm.strip_prefix(SHARE_PREFIX) {
            Some(rest) => rest,
            None => {
                if let Some(v) = norm.strip_prefix("tresor-share-") {
                    // Echo the version only if it looks like one: never echo share content.
                    let ver = v.split('-').next().unwrap_or("");
                    let named = ver.len() <= 4
                        && ver.starts_with('v')
                        && ver.len() > 1
                        && ver[1..].bytes().all(|b| b.is_ascii_digit());
                    return Err(bad_share(if named {
                        format!("unsupported share format '{ver}' (this version reads v1)")
                    } else {
                        "unsupported or corrupted share format (expected 'tresor-share-v1-')"
                            .to_string()
                    }));
                }
                return Err(bad_share(format!(
                    "not a Tresor share (expected text starting with '{SHARE_PREFIX}')"
                )));
            }
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let index = parse_index(parts[0]);
        let name = match index {
            Some(i) => format!("share {i}"),
            None => "share (unreadable index)".to_string(),
        };
        if parts.len() < 3 {
            return Err(bad_share(format!(
                "{name}: corrupted (truncated: checksum missing)"
            )));
        }
        if parts.len() > 3 {
            return Err(bad_share(format!(
                "{name}: corrupted (too many '-' separators)"
            )));
        }
        let (body, sum) = (parts[1], parts[2]);
        if sum.len() != CHECKSUM_CHARS || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad_share(format!(
                "{name}: corrupted (checksum missing or truncated)"
            )));
        }
        let covered = &norm[..norm.len() - CHECKSUM_CHARS - 1];
        let expect = checksum(covered);
        if !bool::from(expect.as_bytes().ct_eq(sum.as_bytes())) {
            return Err(bad_share(format!("{name}: corrupted (checksum mismatch)")));
        }
        // The checksum matched, so what follows fails only for texts not made by Tresor.
        let index = index.ok_or_else(|| {
            bad_share(format!(
                "share text: index '{}' is not a number from 1 to 255",
                parts[0]
            ))
        })?;
        if body.len() != BODY_CHARS {
            return Err(bad_share(format!(
                "{name}: malformed body ({} characters, {BODY_CHARS} expected)",
                body.len()
            )));
        }
        let bytes = base32_decode(body)
            .ok_or_else(|| bad_share(format!("{name}: malformed body (not base32)")))?;
        let mut cluster_id = [0u8; 16];
        cluster_id.copy_from_slice(&bytes[..16]);
        let mut value = [0u8; 32];
        value.copy_from_slice(&bytes[16..BODY_LEN]);
        let share = Share {
            index,
            cluster_id,
            value,
        };
        // The value must be a non-zero canonical scalar.
        share
            .scalar()
            .map_err(|_| bad_share(format!("{name}: value out of range")))?;
        Ok(share)
    }

    fn scalar(&self) -> Result<Zeroizing<Scalar>> {
        let repr = FieldBytes::from(self.value);
        let s: Option<Scalar> = Scalar::from_repr(repr).into();
        match s {
            Some(s) if !bool::from(s.is_zero()) => Ok(Zeroizing::new(s)),
            _ => Err(bad_share(format!(
                "share {}: value out of range",
                self.index
            ))),
        }
    }

    fn to_vsss(&self) -> Result<VShare> {
        let value = self.scalar()?;
        Ok(VShare::with_identifier_and_value(
            IdentifierPrimeField(Scalar::from(u64::from(self.index))),
            IdentifierPrimeField(*value),
        ))
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl FromStr for Share {
    type Err = Error;

    fn from_str(s: &str) -> Result<Share> {
        Share::parse(s)
    }
}

/// A share index as written: decimal 1..=255 without leading zeros.
fn parse_index(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok()
}

/// First 4 bytes of SHA-256 of `text`, lowercase hex.
fn checksum(text: &str) -> String {
    let h = openssl::sha::sha256(text.as_bytes());
    hex::encode(&h[..4])
}

const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32_encode_into(data: &[u8], out: &mut String) {
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(B32[((acc << (5 - bits)) & 31) as usize]));
    }
    acc.zeroize();
}

/// Decodes unpadded lowercase base32; `None` on a foreign character or non-zero trailing bits.
fn base32_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() * 5 / 8));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    let leftover_ok = bits < 5 && acc == 0;
    acc.zeroize();
    leftover_ok.then_some(out)
}

// ---------------------------------------------------------------------------------------------
// init, check_share, combine

/// Creates a new cluster secret and splits it into `share_count` shares, `threshold` of which
/// reconstruct it (`1 <= threshold <= share_count <= 255`; `1` of `1` serves `tresor dev`).
///
/// Returns the master key derived from the secret, the public [`SealConfig`] to store, and the
/// shares (indices `1..=share_count`) to hand out. The secret itself is wiped before returning.
pub fn init(threshold: usize, share_count: usize) -> Result<(MasterKey, SealConfig, Vec<Share>)> {
    if threshold == 0 || threshold > share_count || share_count > 255 {
        return Err(Error::new(
            Rv::ArgumentsBad,
            format!(
                "need 1 <= threshold <= shares <= 255, got threshold {threshold} of {share_count} shares"
            ),
        ));
    }
    let mut rng = OsslRng::new();
    let mut cluster_id = [0u8; 16];
    let Ok(()) = rng.try_fill_bytes(&mut cluster_id);
    let cluster_id = uuid::Builder::from_random_bytes(cluster_id).into_uuid();

    let secret = Zeroizing::new(IdentifierPrimeField(Scalar::random(&mut rng)));
    rng.check()?;
    if bool::from(secret.0.is_zero()) {
        return Err(Error::new(Rv::FunctionFailed, "the random secret was zero"));
    }

    let (vshares, verifiers): (Vec<VShare>, Vec<VVerifier>) = if threshold == 1 {
        // vsss-rs wants a threshold of at least 2. With M = 1 the polynomial is the constant
        // secret: every share's value is the secret, and the one commitment is secret·G.
        let shares = (1..=share_count as u64)
            .map(|i| {
                VShare::with_identifier_and_value(
                    IdentifierPrimeField(Scalar::from(i)),
                    IdentifierPrimeField(secret.0),
                )
            })
            .collect();
        (shares, vec![VVerifier::one(), VVerifier::one() * *secret])
    } else {
        vsss_rs::feldman::split_secret::<VShare, VVerifier>(
            threshold,
            share_count,
            &secret,
            None,
            &mut rng,
        )
        .map_err(|e| Error::new(Rv::FunctionFailed, format!("secret sharing failed: {e:?}")))?
    };
    let vshares = Zeroizing::new(vshares);
    rng.check()?;

    let secret_bytes = Zeroizing::new(secret.0.to_repr());
    let master = MasterKey::from_secret(&secret_bytes[..])?;

    let mut commitments = Vec::with_capacity(threshold);
    for c in FeldmanVerifierSet::<VShare, VVerifier>::verifiers(&verifiers) {
        commitments.push(c.to_vec());
    }
    let config = SealConfig {
        version: SEAL_CONFIG_VERSION,
        cluster_id,
        threshold: u8::try_from(threshold).map_err(|_| bad_param())?,
        share_count: u8::try_from(share_count).map_err(|_| bad_param())?,
        commitments,
        kcv: master.kcv()?,
    };

    let mut shares = Vec::with_capacity(share_count);
    for (i, vs) in vshares.iter().enumerate() {
        let mut value = [0u8; 32];
        value.copy_from_slice(&vs.value().0.to_repr());
        shares.push(Share {
            index: u8::try_from(i + 1).map_err(|_| bad_param())?,
            cluster_id: *cluster_id.as_bytes(),
            value,
        });
    }
    drop(vshares);
    // Every share must verify against the config we just made.
    for s in &shares {
        check_share(&config, s)?;
    }
    Ok((master, config, shares))
}

fn bad_param() -> Error {
    Error::new(Rv::ArgumentsBad, "share count out of range")
}

/// Checks one share against the cluster's config, e.g. as a custodian enters it: it must be of
/// this cluster, have an index in `1..=N`, and pass Feldman verification against the
/// commitments. Errors are `TRESOR_BAD_SHARE` naming the share, e.g. `share 3: not a valid
/// share of this cluster`; a malformed config is an integrity error.
pub fn check_share(config: &SealConfig, share: &Share) -> Result<()> {
    let set = config.verifier_set()?;
    check_with_set(config, &set, share)
}

// `verify_share` is implemented for `Vec`, not for slices.
#[allow(clippy::ptr_arg)]
fn check_with_set(config: &SealConfig, set: &Vec<VVerifier>, share: &Share) -> Result<()> {
    let i = share.index;
    if share.cluster_id() != config.cluster_id {
        return Err(bad_share(format!(
            "share {i}: belongs to another cluster ({}), not this one ({})",
            share.cluster_id(),
            config.cluster_id
        )));
    }
    if i == 0 || i > config.share_count {
        return Err(bad_share(format!(
            "share {i}: index out of range (this cluster has shares 1 to {})",
            config.share_count
        )));
    }
    let mut vs = share
        .to_vsss()
        .map_err(|_| bad_share(format!("share {i}: not a valid share of this cluster")))?;
    let ok = FeldmanVerifierSet::<VShare, VVerifier>::verify_share(set, &vs).is_ok();
    vs.zeroize();
    if ok {
        Ok(())
    } else {
        Err(bad_share(format!(
            "share {i}: not a valid share of this cluster"
        )))
    }
}

/// Reconstructs the master key from shares of this cluster.
///
/// Each share is checked as by [`check_share`]; then duplicate indices and too few shares are
/// refused (`need 3 shares, got 2`); finally the key check value of the result must match the
/// config's. Every refusal is `TRESOR_BAD_SHARE` with a detail naming the problem. More than
/// `M` shares may be given; all are used.
pub fn combine(config: &SealConfig, shares: &[Share]) -> Result<MasterKey> {
    let set = config.verifier_set()?;
    let mut seen = BTreeSet::new();
    for s in shares {
        check_with_set(config, &set, s)?;
        if !seen.insert(s.index) {
            return Err(bad_share(format!(
                "share {}: given more than once",
                s.index
            )));
        }
    }
    let need = usize::from(config.threshold);
    if shares.len() < need {
        return Err(bad_share(format!(
            "need {need} shares, got {}",
            shares.len()
        )));
    }

    let mut vshares = Zeroizing::new(Vec::with_capacity(shares.len()));
    for s in shares {
        vshares.push(s.to_vsss()?);
    }
    let secret = if vshares.len() == 1 {
        Ok(*vshares[0].value())
    } else {
        vshares.combine()
    };
    drop(vshares);
    let mut secret =
        secret.map_err(|e| bad_share(format!("the shares could not be combined ({e:?})")))?;
    let secret_bytes = Zeroizing::new(secret.0.to_repr());
    secret.zeroize();
    let master = MasterKey::from_secret(&secret_bytes[..])?;
    if !bool::from(master.kcv()?.ct_eq(&config.kcv)) {
        return Err(bad_share(
            "the combined key does not match this cluster's key check value",
        ));
    }
    Ok(master)
}

/// Parses share texts and combines them as [`combine`] does; a text that does not parse is
/// refused with the error of [`Share::parse`] (e.g. `share 2: corrupted (checksum mismatch)`).
pub fn combine_texts<T: AsRef<str>>(config: &SealConfig, texts: &[T]) -> Result<MasterKey> {
    let shares = texts
        .iter()
        .map(|t| Share::parse(t.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    combine(config, &shares)
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
