//! The audit chain.
//!
//! Every state change and every key use appends an entry to its partition's chain (partition 0
//! is the cluster's own chain: partition creation and deletion). Each entry's hash covers its
//! fields and the previous entry's hash, so removing, reordering or editing an entry breaks the
//! chain at that point. Every [`CHECKPOINT_EVERY`] entries, and whenever the engine flushes, a
//! checkpoint — the head's seq and hash — is signed by the node key, whose certificate chains to
//! the cluster root made at `tresor init`; truncating the chain below a checkpoint, or rewriting
//! it wholesale, is then detected offline by [`verify_chain`].
//!
//! Entry hash (SHA-256) input, all integers big-endian:
//! `"tresor-audit-v1" ‖ partition i64 ‖ seq i64 ‖ time_ns i64 ‖ len‖actor ‖ len‖action ‖
//! has_object u8 ‖ object_id i64 ‖ len‖detail ‖ prev_hash[32]` with `len` as u32.

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use tresor_store::{AuditRow, CheckpointRow};

use crate::error::{Error, Result, Rv};

/// A checkpoint is written at least every this many entries.
pub const CHECKPOINT_EVERY: i64 = 1024;

/// The hash of "no previous entry".
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The content of an entry before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent {
    pub time_ns: i64,
    pub actor: String,
    pub action: String,
    pub object_id: Option<i64>,
    /// JSON text (no secrets).
    pub detail: String,
}

impl EntryContent {
    /// An entry stamped now.
    pub fn now(
        actor: impl Into<String>,
        action: impl Into<String>,
        object_id: Option<i64>,
        detail: String,
    ) -> Self {
        EntryContent {
            time_ns: now_ns(),
            actor: actor.into(),
            action: action.into(),
            object_id,
            detail,
        }
    }
}

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    buf.extend_from_slice(b);
}

/// The hash of an entry.
pub fn entry_hash(partition_id: i64, seq: i64, c: &EntryContent, prev: &[u8]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(96 + c.actor.len() + c.action.len() + c.detail.len());
    buf.extend_from_slice(b"tresor-audit-v1");
    buf.extend_from_slice(&partition_id.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&c.time_ns.to_be_bytes());
    put_bytes(&mut buf, c.actor.as_bytes());
    put_bytes(&mut buf, c.action.as_bytes());
    buf.push(u8::from(c.object_id.is_some()));
    buf.extend_from_slice(&c.object_id.unwrap_or(0).to_be_bytes());
    put_bytes(&mut buf, c.detail.as_bytes());
    buf.extend_from_slice(prev);
    Ok(hash(MessageDigest::sha256(), &buf)?.to_vec())
}

/// Place entries after `(head_seq, head_hash)`; returns the rows and the new head.
pub fn chain_rows(
    partition_id: i64,
    head_seq: i64,
    head_hash: &[u8],
    entries: &[EntryContent],
) -> Result<(Vec<AuditRow>, i64, Vec<u8>)> {
    let mut rows = Vec::with_capacity(entries.len());
    let mut seq = head_seq;
    let mut prev = head_hash.to_vec();
    for c in entries {
        seq += 1;
        let h = entry_hash(partition_id, seq, c, &prev)?;
        rows.push(AuditRow {
            partition_id,
            seq,
            time_ns: c.time_ns,
            actor: c.actor.clone(),
            action: c.action.clone(),
            object_id: c.object_id,
            detail: c.detail.clone(),
            prev_hash: prev,
            hash: h.clone(),
        });
        prev = h;
    }
    Ok((rows, seq, prev))
}

/// The bytes a checkpoint signature covers.
pub fn checkpoint_bytes(partition_id: i64, seq: i64, hash: &[u8], time_ns: i64) -> Vec<u8> {
    let mut b = b"tresor-checkpoint-v1".to_vec();
    b.extend_from_slice(&partition_id.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(hash);
    b.extend_from_slice(&time_ns.to_be_bytes());
    b
}

/// Sign a checkpoint with the node key.
pub fn sign_checkpoint(
    key: &PKey<Private>,
    cert_der: &[u8],
    partition_id: i64,
    seq: i64,
    hash: &[u8],
) -> Result<CheckpointRow> {
    let time_ns = now_ns();
    let mut s = Signer::new(MessageDigest::sha256(), key)?;
    let signature = s.sign_oneshot_to_vec(&checkpoint_bytes(partition_id, seq, hash, time_ns))?;
    Ok(CheckpointRow {
        partition_id,
        seq,
        hash: hash.to_vec(),
        time_ns,
        signer_cert: cert_der.to_vec(),
        signature,
    })
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub partition_id: i64,
    pub entries: i64,
    pub checkpoints: usize,
    /// The seq of the last signed checkpoint (0 if none).
    pub last_checkpoint: i64,
}

/// The first problem in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFault {
    pub partition_id: i64,
    /// The first bad entry (or the checkpoint's seq for checkpoint faults).
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "partition {}: entry {}: {}",
            self.partition_id, self.seq, self.reason
        )
    }
}

/// Verify one partition's chain offline: every link and hash, every checkpoint's signature and
/// certificate (chained to `root`), that every checkpoint matches the entry it covers, and that
/// the chain is not shorter than its last checkpoint. `rows` must be the whole chain ascending.
pub fn verify_chain(
    partition_id: i64,
    rows: impl IntoIterator<Item = AuditRow>,
    checkpoints: &[CheckpointRow],
    root: &X509,
) -> std::result::Result<ChainReport, ChainFault> {
    let fault = |seq: i64, reason: String| ChainFault {
        partition_id,
        seq,
        reason,
    };
    let mut cps = std::collections::BTreeMap::new();
    for cp in checkpoints {
        verify_checkpoint_signature(cp, root)
            .map_err(|e| fault(cp.seq, format!("checkpoint signature: {}", e.detail())))?;
        cps.insert(cp.seq, cp);
    }
    let mut expect_seq = 1i64;
    let mut prev = GENESIS.to_vec();
    for r in rows {
        if r.seq != expect_seq {
            return Err(fault(
                expect_seq,
                format!("missing (next stored entry is {})", r.seq),
            ));
        }
        if r.prev_hash != prev {
            return Err(fault(
                r.seq,
                "previous-hash link does not match the entry before it".into(),
            ));
        }
        let c = EntryContent {
            time_ns: r.time_ns,
            actor: r.actor.clone(),
            action: r.action.clone(),
            object_id: r.object_id,
            detail: r.detail.clone(),
        };
        let h =
            entry_hash(partition_id, r.seq, &c, &prev).map_err(|e| fault(r.seq, e.to_string()))?;
        if h != r.hash {
            return Err(fault(
                r.seq,
                "content does not match its hash (edited entry)".into(),
            ));
        }
        if let Some(cp) = cps.get(&r.seq) {
            if cp.hash != h {
                return Err(fault(
                    r.seq,
                    "differs from the signed checkpoint at this entry".into(),
                ));
            }
        }
        prev = h;
        expect_seq += 1;
    }
    let entries = expect_seq - 1;
    let last_checkpoint = cps.keys().next_back().copied().unwrap_or(0);
    if last_checkpoint > entries {
        return Err(fault(entries + 1, format!("chain ends at {entries} but a signed checkpoint covers entry {last_checkpoint} (truncated)")));
    }
    Ok(ChainReport {
        partition_id,
        entries,
        checkpoints: cps.len(),
        last_checkpoint,
    })
}

fn verify_checkpoint_signature(cp: &CheckpointRow, root: &X509) -> Result<()> {
    let cert = X509::from_der(&cp.signer_cert)
        .map_err(|_| Error::new(Rv::SignatureInvalid, "signer certificate is not DER"))?;
    crate::attest::verify_issued_by(&cert, root)?;
    let key = cert.public_key()?;
    let mut v = Verifier::new(MessageDigest::sha256(), &key)?;
    let ok = v.verify_oneshot(
        &cp.signature,
        &checkpoint_bytes(cp.partition_id, cp.seq, &cp.hash, cp.time_ns),
    )?;
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Rv::SignatureInvalid,
            "does not verify under the node certificate",
        ))
    }
}
