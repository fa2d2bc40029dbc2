//! Client credentials of a partition: the one-time setup password, the registered client keys
//! (the public halves of the clients' permanent secrets), the operator-set PKCS#11 password,
//! and the node's TLS identities for the end-to-end channel (see `docs/network.md`).
//!
//! Everything lives in the sealed partition record and changes through
//! [`Partition::commit_with`], so each change commits with its audit entry. Secret values
//! (the setup password, PINs) never appear in an audit entry, an error message or debug output.

use std::sync::Arc;

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tresor_store::Mutation;
use zeroize::Zeroizing;

use super::partition::{Partition, PartitionRecord};
use super::{store_err, Engine};
use crate::audit::{self, EntryContent};
use crate::error::{vendor, Error, Result, Rv};

/// The unambiguous alphabet of setup passwords (no 0/O, 1/I).
const SETUP_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters of a setup password (without the dashes).
const SETUP_CHARS: usize = 25;
/// Characters per dash-separated group.
const SETUP_GROUP: usize = 5;

/// A TLS identity: the certificate chain (DER, leaf first) and the leaf key (PKCS#8 DER).
pub type TlsIdentity = (Vec<Vec<u8>>, Zeroizing<Vec<u8>>);

/// How long a setup password lives and how many wrong guesses lock it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupPolicy {
    /// Lifetime in seconds (0 = expired at once; for tests).
    pub lifetime_secs: i64,
    /// Count the lifetime from the first use (CloudHSM) instead of from issue (ECO-CC).
    pub from_first_use: bool,
    /// Wrong guesses after which the setup password is locked.
    pub max_failures: u32,
}

impl Default for SetupPolicy {
    /// 7 days from first use, locked after 5 wrong guesses.
    fn default() -> Self {
        SetupPolicy {
            lifetime_secs: 7 * 24 * 3600,
            from_first_use: true,
            max_failures: 5,
        }
    }
}

/// A registered client key, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredential {
    /// Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo DER.
    pub fingerprint: String,
    /// Free text given at registration (e.g. the client's host name).
    pub label: String,
    /// Unix seconds of the registration.
    pub created: i64,
}

/// The setup password state in the sealed partition record.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SetupState {
    /// Argon2id PHC string of the normalised password (25 characters, no dashes).
    pub phc: String,
    /// Unix seconds of issue.
    pub issued: i64,
    /// Unix seconds of the first exchange attempt.
    pub first_used: Option<i64>,
    pub lifetime_secs: i64,
    pub from_first_use: bool,
    /// Exchanged for a permanent secret: dead.
    pub used: bool,
    /// Wrong guesses so far.
    pub failures: u32,
    pub max_failures: u32,
}

impl std::fmt::Debug for SetupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupState")
            .field("issued", &self.issued)
            .field("first_used", &self.first_used)
            .field("lifetime_secs", &self.lifetime_secs)
            .field("from_first_use", &self.from_first_use)
            .field("used", &self.used)
            .field("failures", &self.failures)
            .field("max_failures", &self.max_failures)
            .finish_non_exhaustive()
    }
}

impl SetupState {
    /// Unix seconds at which the password expires, given the first use (if counted from it).
    fn expires(&self, first_used: Option<i64>) -> Option<i64> {
        let start = if self.from_first_use {
            first_used?
        } else {
            self.issued
        };
        Some(start.saturating_add(self.lifetime_secs))
    }
}

/// A registered client key in the sealed partition record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientRecord {
    /// Hex of the SubjectPublicKeyInfo DER.
    pub spki: String,
    /// Lowercase hex SHA-256 of the SPKI DER.
    pub fingerprint: String,
    pub label: String,
    pub created: i64,
}

impl ClientRecord {
    fn credential(&self) -> ClientCredential {
        ClientCredential {
            fingerprint: self.fingerprint.clone(),
            label: self.label.clone(),
            created: self.created,
        }
    }
}

fn now_s() -> i64 {
    audit::now_ns() / 1_000_000_000
}

/// A P-256 SubjectPublicKeyInfo, checked and re-encoded canonically, and its fingerprint.
fn p256_spki(spki_der: &[u8]) -> Result<(Vec<u8>, String)> {
    let bad = |why: &str| {
        Error::new(
            Rv::ArgumentsBad,
            format!("the client public key is not a P-256 SubjectPublicKeyInfo: {why}"),
        )
    };
    let key = PKey::public_key_from_der(spki_der).map_err(|_| bad("it does not parse"))?;
    if key.id() != Id::EC {
        return Err(bad("not an EC key"));
    }
    let ec = key.ec_key().map_err(|_| bad("not an EC key"))?;
    if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        return Err(bad("the curve is not P-256"));
    }
    ec.check_key().map_err(|_| bad("the point is not valid"))?;
    let der = key.public_key_to_der()?;
    let fp = hex::encode(openssl::sha::sha256(&der));
    Ok((der, fp))
}

/// The canonical form of an entered setup password: upper case, without dashes and blanks.
fn normalise_setup(pw: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        pw.iter()
            .filter(|c| !matches!(c, b'-' | b' ' | b'\t' | b'\r' | b'\n'))
            .map(u8::to_ascii_uppercase)
            .collect(),
    )
}

/// A fresh setup password `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` from the OS RNG (125 bits).
fn new_setup_password() -> Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new([0u8; SETUP_CHARS]);
    openssl::rand::rand_bytes(raw.as_mut())?;
    let mut s = Zeroizing::new(String::with_capacity(SETUP_CHARS + 4));
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % SETUP_GROUP == 0 {
            s.push('-');
        }
        // 32 symbols: the low 5 bits are uniform.
        s.push(char::from(SETUP_ALPHABET[usize::from(b & 31)]));
    }
    Ok(s)
}

/// What one `register_client` attempt decided (computed again at commit time on the current
/// record, so that concurrent attempts count correctly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Registered,
    SetupWrong,
    SetupLocked,
    PinWrong,
}

impl Engine {
    /// The loaded partition, brought up to date with the store (administration and the rare
    /// credential exchanges: another process may have changed the record).
    async fn fresh_partition(&self, partition: &str) -> Result<Arc<Partition>> {
        let p = self.partition(partition).await?;
        p.sync(self).await?;
        Ok(p)
    }

    /// New setup password for the partition, format `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` (25
    /// characters from an unambiguous upper-case and digit alphabet, from the OS RNG),
    /// replacing any previous one; audited (never the value).
    pub async fn issue_setup_password(
        &self,
        partition: &str,
        policy: SetupPolicy,
    ) -> Result<SecretString> {
        if policy.lifetime_secs < 0 {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a setup password lifetime cannot be negative",
            ));
        }
        let p = self.fresh_partition(partition).await?;
        let pw = new_setup_password()?;
        let phc = self.hash_pin(&normalise_setup(pw.as_bytes())).await?;
        let issued = now_s();
        let state = SetupState {
            phc,
            issued,
            first_used: None,
            lifetime_secs: policy.lifetime_secs,
            from_first_use: policy.from_first_use,
            used: false,
            failures: 0,
            max_failures: policy.max_failures,
        };
        let entry = EntryContent::now(
            "admin",
            "credentials.setup_password.issue",
            None,
            serde_json::json!({
                "lifetime_secs": policy.lifetime_secs,
                "from_first_use": policy.from_first_use,
                "max_failures": policy.max_failures,
            })
            .to_string(),
        );
        p.commit_with(self, Vec::new(), vec![entry], None, |r| {
            r.setup = Some(state);
            Ok(true)
        })
        .await?;
        Ok(SecretString::from(pw.as_str().to_owned()))
    }

    /// Withdraw the partition's setup password (issued, not yet used or not): it can no longer
    /// be exchanged. Returns false if there was none; audited.
    pub async fn revoke_setup_password(&self, partition: &str) -> Result<bool> {
        let p = self.fresh_partition(partition).await?;
        let entry = EntryContent::now(
            "admin",
            "credentials.setup_password.revoke",
            None,
            "{}".to_owned(),
        );
        let had = std::sync::atomic::AtomicBool::new(false);
        p.commit_with(self, Vec::new(), vec![entry], None, |r| {
            had.store(
                r.setup.take().is_some(),
                std::sync::atomic::Ordering::Relaxed,
            );
            Ok(true)
        })
        .await?;
        Ok(had.into_inner())
    }

    /// The exchange behind `ppin -a`: checks the setup password (issued, not used, not locked,
    /// not expired; the first attempt starts the lifetime when it counts from first use; wrong
    /// guesses count towards its lockout), then the PKCS#11 password (the partition's user PIN,
    /// counted towards the user-PIN lockout), then registers the P-256 public key and marks the
    /// setup password used, all in one audited commit. Registering an already registered key
    /// again is accepted (its label is kept).
    pub async fn register_client(
        &self,
        partition: &str,
        setup_password: &[u8],
        pin: &[u8],
        spki_der: &[u8],
        label: &str,
    ) -> Result<ClientCredential> {
        if label.len() > 256 || label.chars().any(char::is_control) {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a client label is at most 256 bytes without control characters",
            ));
        }
        let (spki, fingerprint) = p256_spki(spki_der)?;
        let p = self.fresh_partition(partition).await?;
        let now = now_s();

        // The state the verification runs against (re-checked at commit time).
        let (setup, user_pin) = {
            let w = p.writer.lock().await;
            (w.record.setup.clone(), w.record.user_pin.clone())
        };
        let setup = setup.ok_or_else(|| {
            Error::new(
                Rv::Vendor(vendor::SETUP_PASSWORD_INVALID),
                format!("no setup password has been issued for partition '{partition}'"),
            )
        })?;
        check_setup_usable(partition, &setup, now)?;
        let first_used = setup.first_used.or(if setup.from_first_use {
            Some(now)
        } else {
            None
        });
        if setup.expires(first_used).is_some_and(|e| now >= e) {
            // Record the first use that started (and at once ended) the lifetime.
            if setup.first_used.is_none() && first_used.is_some() {
                let entry = EntryContent::now(
                    "client",
                    "credentials.register.fail",
                    None,
                    serde_json::json!({"reason": "setup password expired"}).to_string(),
                );
                let phc = setup.phc.clone();
                p.commit_with(self, Vec::new(), vec![entry], None, |r| {
                    match r.setup.as_mut() {
                        Some(s) if s.phc == phc && s.first_used.is_none() => {
                            s.first_used = first_used;
                            Ok(true)
                        }
                        _ => Ok(false),
                    }
                })
                .await?;
            }
            return Err(expired(partition));
        }

        let setup_ok = self
            .verify_pin(&setup.phc, &normalise_setup(setup_password))
            .await?;
        // The PIN lockout state (clear counters in the partition row).
        let row = self
            .store
            .partition(p.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                Error::new(
                    Rv::Vendor(vendor::USER_NOT_FOUND),
                    format!("partition '{partition}' was deleted"),
                )
            })?;
        let max_pin = self.config.max_pin_failures;
        let mut pin_ok = false;
        if setup_ok {
            if row.user_failures >= max_pin {
                return Err(Error::new(
                    Rv::PinLocked,
                    format!(
                        "the PKCS#11 password (user PIN) of partition '{partition}' is locked after {} wrong attempts",
                        row.user_failures
                    ),
                ));
            }
            let phc = user_pin.ok_or_else(|| {
                Error::new(
                    Rv::UserPinNotInitialized,
                    format!("the PKCS#11 password (user PIN) of partition '{partition}' has not been set"),
                )
            })?;
            pin_ok =
                super::partition::check_pin_len(pin).is_ok() && self.verify_pin(&phc, pin).await?;
        }
        let outcome = match (setup_ok, pin_ok) {
            (false, _) if setup.failures.saturating_add(1) >= setup.max_failures => {
                Outcome::SetupLocked
            }
            (false, _) => Outcome::SetupWrong,
            (true, false) => Outcome::PinWrong,
            (true, true) => Outcome::Registered,
        };

        let mut mutations = Vec::new();
        let new_user_failures = match outcome {
            Outcome::PinWrong => row.user_failures + 1,
            Outcome::Registered => 0,
            _ => row.user_failures,
        };
        if new_user_failures != row.user_failures {
            mutations.push(Mutation::SetPinFailures {
                partition_id: p.id,
                so_failures: row.so_failures,
                user_failures: new_user_failures,
            });
        }
        let entry = match outcome {
            Outcome::Registered => EntryContent::now(
                "client",
                "credentials.register",
                None,
                serde_json::json!({"fingerprint": fingerprint, "label": label}).to_string(),
            ),
            Outcome::SetupWrong | Outcome::SetupLocked => EntryContent::now(
                "client",
                "credentials.register.fail",
                None,
                serde_json::json!({
                    "reason": "wrong setup password",
                    "failures": setup.failures.saturating_add(1),
                    "locked": outcome == Outcome::SetupLocked,
                })
                .to_string(),
            ),
            Outcome::PinWrong => EntryContent::now(
                "client",
                "credentials.register.fail",
                None,
                serde_json::json!({"reason": "wrong PKCS#11 password", "failures": new_user_failures})
                    .to_string(),
            ),
        };
        let checked_phc = setup.phc.clone();
        let label_owned = label.to_owned();
        let fp = fingerprint.clone();
        let mut result: Option<ClientCredential> = None;
        let result_ref = &mut result;
        p.commit_with(self, mutations, vec![entry], None, move |r: &mut PartitionRecord| {
            let s = match r.setup.as_mut() {
                Some(s) if s.phc == checked_phc => s,
                _ => {
                    return Err(Error::new(
                        Rv::Vendor(vendor::SETUP_PASSWORD_INVALID),
                        format!("the setup password of partition '{partition}' was replaced meanwhile; use the new one"),
                    ))
                }
            };
            // Concurrent attempts may have changed the state since it was read.
            check_setup_usable(partition, s, now)?;
            if s.first_used.is_none() {
                s.first_used = first_used;
            }
            match outcome {
                Outcome::SetupWrong | Outcome::SetupLocked => {
                    s.failures = s.failures.saturating_add(1);
                }
                Outcome::PinWrong => {}
                Outcome::Registered => {
                    s.used = true;
                    let existing = r
                        .clients
                        .iter()
                        .find(|c| bool::from(c.fingerprint.as_bytes().ct_eq(fp.as_bytes())));
                    let cred = match existing {
                        Some(c) => c.credential(),
                        None => {
                            let c = ClientRecord {
                                spki: hex::encode(&spki),
                                fingerprint: fp.clone(),
                                label: label_owned,
                                created: now,
                            };
                            let cred = c.credential();
                            r.clients.push(c);
                            cred
                        }
                    };
                    *result_ref = Some(cred);
                }
            }
            Ok(true)
        })
        .await?;
        match outcome {
            Outcome::Registered => result.ok_or_else(|| {
                Error::new(Rv::GeneralError, "the registration was not recorded")
            }),
            Outcome::SetupWrong => Err(Error::new(
                Rv::Vendor(vendor::SETUP_PASSWORD_INVALID),
                format!("wrong setup password for partition '{partition}'"),
            )),
            Outcome::SetupLocked => Err(Error::new(
                Rv::PinLocked,
                format!("wrong setup password for partition '{partition}'; it is now locked, issue a new one"),
            )),
            Outcome::PinWrong if new_user_failures >= max_pin => Err(Error::new(
                Rv::PinLocked,
                format!("wrong PKCS#11 password (user PIN) for partition '{partition}'; it is now locked"),
            )),
            Outcome::PinWrong => Err(Error::new(
                Rv::PinIncorrect,
                format!("wrong PKCS#11 password (user PIN) for partition '{partition}'"),
            )),
        }
    }

    /// Fast check (no Argon2, no store write) that `spki_der` is registered for the partition.
    /// If it is not in the cached state, the partition is re-read from the store once (another
    /// node may have registered it) before failing with `CLIENT_NOT_REGISTERED`.
    pub async fn authenticate_client(
        &self,
        partition: &str,
        spki_der: &[u8],
    ) -> Result<ClientCredential> {
        let (_, fingerprint) = p256_spki(spki_der).map_err(|e| {
            Error::new(
                Rv::Vendor(vendor::CLIENT_NOT_REGISTERED),
                format!("partition '{partition}': {}", e.detail()),
            )
        })?;
        let p = self.partition(partition).await?;
        let find = |r: &PartitionRecord| {
            r.clients
                .iter()
                .find(|c| bool::from(c.fingerprint.as_bytes().ct_eq(fingerprint.as_bytes())))
                .map(ClientRecord::credential)
        };
        if let Some(c) = find(&p.writer.lock().await.record) {
            return Ok(c);
        }
        p.sync(self).await?;
        if let Some(c) = find(&p.writer.lock().await.record) {
            return Ok(c);
        }
        Err(Error::new(
            Rv::Vendor(vendor::CLIENT_NOT_REGISTERED),
            format!("the client key {fingerprint} is not registered for partition '{partition}'"),
        ))
    }

    /// The registered client keys of a partition.
    pub async fn list_clients(&self, partition: &str) -> Result<Vec<ClientCredential>> {
        let p = self.fresh_partition(partition).await?;
        let w = p.writer.lock().await;
        Ok(w.record
            .clients
            .iter()
            .map(ClientRecord::credential)
            .collect())
    }

    /// Revoke one registered client key by fingerprint (or all when `None`); returns how many
    /// were revoked (0 when the fingerprint is not registered: nothing is written); audited.
    pub async fn revoke_client(&self, partition: &str, fingerprint: Option<&str>) -> Result<usize> {
        let p = self.fresh_partition(partition).await?;
        let wanted = fingerprint.map(str::to_ascii_lowercase);
        let matches = |c: &ClientRecord| match &wanted {
            Some(f) => bool::from(c.fingerprint.as_bytes().ct_eq(f.as_bytes())),
            None => true,
        };
        let revoked: Vec<String> = {
            let w = p.writer.lock().await;
            w.record
                .clients
                .iter()
                .filter(|c| matches(c))
                .map(|c| c.fingerprint.clone())
                .collect()
        };
        if revoked.is_empty() {
            return Ok(0);
        }
        let entry = EntryContent::now(
            "admin",
            "credentials.revoke",
            None,
            serde_json::json!({"fingerprints": revoked}).to_string(),
        );
        let mut count = 0usize;
        let count_ref = &mut count;
        p.commit_with(self, Vec::new(), vec![entry], None, |r| {
            let before = r.clients.len();
            r.clients.retain(|c| !matches(c));
            *count_ref = before - r.clients.len();
            Ok(*count_ref > 0)
        })
        .await?;
        Ok(count)
    }

    /// The operator sets the PKCS#11 password (user PIN) of a partition; this also clears the
    /// user-PIN lockout; audited (never the value).
    pub async fn admin_set_user_pin(&self, partition: &str, pin: &[u8]) -> Result<()> {
        let p = self.fresh_partition(partition).await?;
        let hash = self.hash_pin(pin).await?;
        let row = self.store.partition(p.id).await.map_err(store_err)?;
        let so_failures = row.map_or(0, |r| r.so_failures);
        let m = vec![Mutation::SetPinFailures {
            partition_id: p.id,
            so_failures,
            user_failures: 0,
        }];
        let entry = EntryContent::now("admin", "pin.admin_set_user", None, "{}".into());
        p.commit_with(self, m, vec![entry], None, |r| {
            r.user_pin = Some(hash);
            Ok(true)
        })
        .await
    }

    /// TLS identity of this node for the end-to-end channel: a fresh ephemeral P-256 key and a
    /// leaf certificate (SAN DNS `tresor-node`, not a CA, EKU serverAuth, valid from an hour
    /// ago for 30 days) signed by the node key. Returns (chain DER `[leaf, node cert, root
    /// cert]`, leaf key PKCS#8 DER).
    pub fn node_tls_identity(&self) -> Result<TlsIdentity> {
        let un = self.unsealed()?;
        let key = crate::attest::new_p256_key()?;
        let now = now_s();
        let leaf = crate::attest::issue_server_cert(
            "tresor-node",
            &key,
            (&un.node_cert, &un.node_key),
            &["tresor-node".to_owned()],
            now - 3600,
            now + 30 * 24 * 3600,
        )?;
        let chain = vec![
            leaf.to_der()?,
            un.node_cert.to_der()?,
            un.root_cert.to_der()?,
        ];
        Ok((chain, Zeroizing::new(key.private_key_to_pkcs8()?)))
    }

    /// A server certificate for a gateway, signed by the cluster root key: CN = `cn`, one SAN
    /// per entry (an IP address if it parses as one, else a DNS name), not a CA, EKU
    /// serverAuth, valid from an hour ago for `days` days. Returns (chain DER `[leaf, root]`,
    /// key PKCS#8 DER). Recorded in the cluster audit chain.
    pub async fn issue_server_identity(
        &self,
        cn: &str,
        sans: &[String],
        days: u32,
    ) -> Result<TlsIdentity> {
        self.check_active()?;
        if cn.is_empty() || cn.len() > 64 {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a certificate common name is 1 to 64 bytes",
            ));
        }
        if days == 0 {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a certificate must be valid for at least one day",
            ));
        }
        let un = self.unsealed()?;
        let root_key = self.root_key().await?;
        let key = crate::attest::new_p256_key()?;
        let now = now_s();
        let leaf = crate::attest::issue_server_cert(
            cn,
            &key,
            (&un.root_cert, &root_key),
            sans,
            now - 3600,
            now + i64::from(days) * 24 * 3600,
        )?;
        let serial = leaf
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default();
        let entry = EntryContent::now(
            "admin",
            "certificate.issue_server",
            None,
            serde_json::json!({"cn": cn, "sans": sans, "days": days, "serial": serial}).to_string(),
        );
        self.commit_cluster(tresor_store::WriteBatch::new(), vec![entry])
            .await?;
        let chain = vec![leaf.to_der()?, un.root_cert.to_der()?];
        Ok((chain, Zeroizing::new(key.private_key_to_pkcs8()?)))
    }
}

/// The setup password can still be tried: not used, not locked.
fn check_setup_usable(partition: &str, s: &SetupState, now: i64) -> Result<()> {
    if s.used {
        return Err(Error::new(
            Rv::Vendor(vendor::SETUP_PASSWORD_USED),
            format!("the setup password of partition '{partition}' has already been used; issue a new one"),
        ));
    }
    if s.failures >= s.max_failures {
        return Err(Error::new(
            Rv::PinLocked,
            format!(
                "the setup password of partition '{partition}' is locked after {} wrong attempts; issue a new one",
                s.failures
            ),
        ));
    }
    if s.expires(s.first_used).is_some_and(|e| now >= e) {
        return Err(expired(partition));
    }
    Ok(())
}

fn expired(partition: &str) -> Error {
    Error::new(
        Rv::Vendor(vendor::SETUP_PASSWORD_EXPIRED),
        format!("the setup password of partition '{partition}' has expired; issue a new one"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn setup_password_format() {
        let pw = new_setup_password().unwrap();
        assert_eq!(pw.len(), 29);
        for (i, c) in pw.chars().enumerate() {
            if i % 6 == 5 {
                assert_eq!(c, '-');
            } else {
                assert!(SETUP_ALPHABET.contains(&(c as u8)), "{c}");
            }
        }
        assert_eq!(
            normalise_setup(b"abcde-fghjk").as_slice(),
            b"ABCDEFGHJK".as_slice()
        );
    }

    #[test]
    fn spki_must_be_p256() {
        let k = crate::attest::new_p256_key().unwrap();
        let der = k.public_key_to_der().unwrap();
        let (canon, fp) = p256_spki(&der).unwrap();
        assert_eq!(canon, der);
        assert_eq!(fp, hex::encode(openssl::sha::sha256(&der)));
        let group = openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let p384 = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let e = p256_spki(&p384.public_key_to_der().unwrap()).unwrap_err();
        assert!(e.detail().contains("not P-256"), "{e}");
        assert!(p256_spki(b"junk").is_err());
    }
}
