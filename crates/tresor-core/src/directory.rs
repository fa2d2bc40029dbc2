//! The service directory: who may connect through a gateway.
//!
//! A **service** is a subscriber's phase-one credential (`docs/network.md`): a service user
//! name and password (stored as an Argon2id PHC string), the source addresses it may connect
//! from, the partitions it may reach and, optionally, the nodes it may use. The directory lives
//! in the store's `services` table, in the clear apart from the password hash: gateways read
//! it with the store alone ([`ServiceEntry::from_row`], [`address_allowed`],
//! [`verify_service_password`]) and update only the lockout counters
//! (`Store::set_service_failures`). Every change made through the [`Engine`] commits with an
//! entry in the cluster audit chain (never a password or hash).

use std::net::IpAddr;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tresor_store::{Mutation, ServiceRow, WriteBatch};
use zeroize::Zeroizing;

use crate::audit::{self, EntryContent};
use crate::engine::{store_err, Engine};
use crate::error::{vendor, Error, Result, Rv};

/// Default wrong passwords before a service user is locked.
pub const DEFAULT_MAX_FAILURES: u32 = 5;
/// Default lockout time in seconds.
pub const DEFAULT_LOCKOUT_SECS: i64 = 900;

fn default_max_failures() -> u32 {
    DEFAULT_MAX_FAILURES
}

fn default_lockout_secs() -> i64 {
    DEFAULT_LOCKOUT_SECS
}

/// One service of the directory (the `record_json` of its row).
#[derive(Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Display name (unique).
    pub name: String,
    /// The user name clients present to the gateway (unique).
    pub service_user: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// Source addresses allowed to connect (empty = none).
    pub allowlist: Vec<IpNet>,
    /// Partitions this service may reach.
    pub partitions: Vec<String>,
    /// Node names this service may use (empty = any node).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Wrong passwords before the service user is locked (default 5).
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// How long a lockout lasts, in seconds (default 900).
    #[serde(default = "default_lockout_secs")]
    pub lockout_secs: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last change.
    pub updated: i64,
    /// A disabled service is refused by the gateways.
    #[serde(default)]
    pub disabled: bool,
}

impl std::fmt::Debug for ServiceRecord {
    // The password hash is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRecord")
            .field("name", &self.name)
            .field("service_user", &self.service_user)
            .field("allowlist", &self.allowlist)
            .field("partitions", &self.partitions)
            .field("nodes", &self.nodes)
            .field("max_failures", &self.max_failures)
            .field("lockout_secs", &self.lockout_secs)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A service with its lockout counters, as read from the store.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub record: ServiceRecord,
    /// Consecutive wrong passwords.
    pub failures: u32,
    /// Unix seconds until which the service user is locked (0 = not locked).
    pub locked_until: i64,
}

impl ServiceEntry {
    /// Parse a store row; the row's name and service user must match its record.
    pub fn from_row(row: &ServiceRow) -> Result<ServiceEntry> {
        let record: ServiceRecord = serde_json::from_slice(&row.record_json).map_err(|e| {
            Error::integrity(format!(
                "service {:?}: record unreadable: {e}",
                row.service_user
            ))
        })?;
        if record.service_user != row.service_user || record.name != row.name {
            return Err(Error::integrity(format!(
                "service {:?}: the name columns do not match the record",
                row.service_user
            )));
        }
        Ok(ServiceEntry {
            record,
            failures: u32::try_from(row.failures.max(0)).unwrap_or(u32::MAX),
            locked_until: row.locked_until,
        })
    }

    /// Is the service user locked at `now` (unix seconds)?
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until > now
    }
}

/// Is `addr` in one of the networks of `allowlist`? IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) match IPv4 networks; an empty allowlist allows nothing.
pub fn address_allowed(allowlist: &[IpNet], addr: IpAddr) -> bool {
    let mapped = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    allowlist
        .iter()
        .any(|net| net.contains(&addr) || mapped.is_some_and(|m| net.contains(&m)))
}

/// Parse a comma-separated list of CIDR networks or bare addresses (a bare address is a /32
/// or /128). The error names the bad item.
pub fn parse_allowlist(s: &str) -> Result<Vec<IpNet>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::new(
                Rv::ArgumentsBad,
                format!("allowlist {s:?}: an entry is empty (expected addresses or CIDR networks separated by commas)"),
            ));
        }
        let net = match item.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match item.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    return Err(Error::new(
                        Rv::ArgumentsBad,
                        format!("allowlist entry {item:?} is not an IP address or CIDR network (such as 192.0.2.0/24 or 2001:db8::/32)"),
                    ))
                }
            },
        };
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Verify a service password against the record's Argon2id hash (constant time). CPU-heavy:
/// call it on a blocking thread. A malformed hash verifies nothing.
pub fn verify_service_password(record: &ServiceRecord, password: &[u8]) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(&record.password_hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password, &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new service password: 32 characters of `A-Z a-z 0-9` from the OS RNG (about 190 bits).
pub fn generate_password() -> SecretString {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Zeroizing::new(String::with_capacity(32));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < 32 {
        if openssl::rand::rand_bytes(buf.as_mut()).is_err() {
            // The OS RNG failing is not recoverable; retry rather than return a weak value.
            continue;
        }
        for b in buf.iter() {
            // Rejection sampling: 248 = 4 * 62 keeps the choice uniform.
            if *b < 248 && out.len() < 32 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    SecretString::from(out.as_str().to_owned())
}

fn now_s() -> i64 {
    audit::now_ns() / 1_000_000_000
}

fn check_service_user(u: &str) -> Result<()> {
    if u.is_empty()
        || u.len() > 64
        || !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(Error::new(
            Rv::ArgumentsBad,
            format!("service user {u:?}: names are 1-64 characters of A-Z a-z 0-9 - _ . @"),
        ));
    }
    Ok(())
}

fn check_service_name(n: &str) -> Result<()> {
    if n.trim().is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
        return Err(Error::new(
            Rv::ArgumentsBad,
            format!("service name {n:?}: 1-64 characters without control characters"),
        ));
    }
    Ok(())
}

fn check_nodes(nodes: &[String]) -> Result<()> {
    for n in nodes {
        if n.is_empty() || n.len() > 64 || n.chars().any(|c| c.is_control() || c == ',') {
            return Err(Error::new(
                Rv::ArgumentsBad,
                format!("node name {n:?}: 1-64 characters without commas or control characters"),
            ));
        }
    }
    Ok(())
}

fn not_found(service_user: &str) -> Error {
    Error::new(
        Rv::Vendor(vendor::USER_NOT_FOUND),
        format!("service user '{service_user}' does not exist"),
    )
}

fn to_json(r: &ServiceRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(r).map_err(|e| Error::new(Rv::GeneralError, e.to_string()))
}

/// The audit detail of a service (no password hash).
fn detail(r: &ServiceRecord) -> serde_json::Value {
    serde_json::json!({
        "service": r.name,
        "service_user": r.service_user,
        "allowlist": r.allowlist.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "partitions": r.partitions,
        "nodes": r.nodes,
        "disabled": r.disabled,
    })
}

/// Engine methods for the service directory (administration).
impl Engine {
    /// The partitions must exist and be named at least once.
    async fn check_partitions(&self, partitions: &[String]) -> Result<()> {
        if partitions.is_empty() {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a service needs at least one partition",
            ));
        }
        for p in partitions {
            if self
                .store
                .partition_by_name(p)
                .await
                .map_err(store_err)?
                .is_none()
            {
                return Err(Error::new(
                    Rv::Vendor(vendor::USER_NOT_FOUND),
                    format!("partition '{p}' does not exist"),
                ));
            }
        }
        Ok(())
    }

    async fn service_entry(&self, service_user: &str) -> Result<(ServiceRow, ServiceEntry)> {
        let row = self
            .store
            .service_by_user(service_user)
            .await
            .map_err(store_err)?
            .ok_or_else(|| not_found(service_user))?;
        let entry = ServiceEntry::from_row(&row)?;
        Ok((row, entry))
    }

    /// Write a changed service record (compare-and-swap on its version) with its audit entry.
    async fn put_service(
        &self,
        row: &ServiceRow,
        record: &ServiceRecord,
        failures: i64,
        locked_until: i64,
        action: &str,
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.push(Mutation::PutService(ServiceRow {
            name: record.name.clone(),
            service_user: record.service_user.clone(),
            record_json: to_json(record)?,
            failures,
            locked_until,
            version: row.version + 1,
        }));
        let entry = EntryContent::now("admin", action, None, detail(record).to_string());
        self.commit_cluster(batch, vec![entry]).await
    }

    /// Create a service with a generated password (returned once; only its hash is stored).
    /// The partitions must exist; `ALREADY_EXISTS` if the name or the service user is taken.
    pub async fn create_service(
        &self,
        name: &str,
        service_user: &str,
        allowlist: Vec<IpNet>,
        partitions: Vec<String>,
        nodes: Vec<String>,
    ) -> Result<(ServiceRecord, SecretString)> {
        self.check_active()?;
        check_service_name(name)?;
        check_service_user(service_user)?;
        check_nodes(&nodes)?;
        self.check_partitions(&partitions).await?;
        for r in self.store.services().await.map_err(store_err)? {
            if r.name == name {
                return Err(Error::new(
                    Rv::Vendor(vendor::ALREADY_EXISTS),
                    format!("a service named '{name}' already exists"),
                ));
            }
            if r.service_user == service_user {
                return Err(Error::new(
                    Rv::Vendor(vendor::ALREADY_EXISTS),
                    format!("service user '{service_user}' already exists"),
                ));
            }
        }
        let password = generate_password();
        let hash = {
            use secrecy::ExposeSecret;
            self.hash_pin(password.expose_secret().as_bytes()).await?
        };
        let now = now_s();
        let record = ServiceRecord {
            name: name.to_owned(),
            service_user: service_user.to_owned(),
            password_hash: hash,
            allowlist,
            partitions,
            nodes,
            max_failures: DEFAULT_MAX_FAILURES,
            lockout_secs: DEFAULT_LOCKOUT_SECS,
            created: now,
            updated: now,
            disabled: false,
        };
        let mut batch = WriteBatch::new();
        batch.push(Mutation::PutService(ServiceRow {
            name: record.name.clone(),
            service_user: record.service_user.clone(),
            record_json: to_json(&record)?,
            failures: 0,
            locked_until: 0,
            version: 1,
        }));
        let entry = EntryContent::now("admin", "service.create", None, detail(&record).to_string());
        self.commit_cluster(batch, vec![entry]).await?;
        Ok((record, password))
    }

    /// Replace a service's password with a new generated one (returned once); also clears its
    /// lockout.
    pub async fn rotate_service_password(&self, service_user: &str) -> Result<SecretString> {
        self.check_active()?;
        let (row, entry) = self.service_entry(service_user).await?;
        let password = generate_password();
        let hash = {
            use secrecy::ExposeSecret;
            self.hash_pin(password.expose_secret().as_bytes()).await?
        };
        let mut record = entry.record;
        record.password_hash = hash;
        record.updated = now_s();
        self.put_service(&row, &record, 0, 0, "service.rotate_password")
            .await?;
        Ok(password)
    }

    /// Change a service's allowlist, partitions, nodes or disabled flag (`None` = unchanged).
    pub async fn update_service(
        &self,
        service_user: &str,
        allowlist: Option<Vec<IpNet>>,
        partitions: Option<Vec<String>>,
        nodes: Option<Vec<String>>,
        disabled: Option<bool>,
    ) -> Result<ServiceRecord> {
        self.check_active()?;
        let (row, entry) = self.service_entry(service_user).await?;
        let mut record = entry.record;
        if let Some(a) = allowlist {
            record.allowlist = a;
        }
        if let Some(p) = partitions {
            self.check_partitions(&p).await?;
            record.partitions = p;
        }
        if let Some(n) = nodes {
            check_nodes(&n)?;
            record.nodes = n;
        }
        if let Some(d) = disabled {
            record.disabled = d;
        }
        record.updated = now_s();
        self.put_service(
            &row,
            &record,
            row.failures,
            row.locked_until,
            "service.update",
        )
        .await?;
        Ok(record)
    }

    /// Clear a service user's lockout and failure count.
    pub async fn unlock_service(&self, service_user: &str) -> Result<()> {
        self.check_active()?;
        let (row, entry) = self.service_entry(service_user).await?;
        let mut record = entry.record;
        record.updated = now_s();
        self.put_service(&row, &record, 0, 0, "service.unlock")
            .await
    }

    /// Delete a service.
    pub async fn delete_service(&self, service_user: &str) -> Result<()> {
        self.check_active()?;
        let (_, entry) = self.service_entry(service_user).await?;
        let mut batch = WriteBatch::new();
        batch.push(Mutation::DeleteService {
            service_user: service_user.to_owned(),
        });
        let e = EntryContent::now(
            "admin",
            "service.delete",
            None,
            detail(&entry.record).to_string(),
        );
        self.commit_cluster(batch, vec![e]).await
    }

    /// Every service with its lockout counters, ordered by name (no unsealing needed).
    pub async fn list_services(&self) -> Result<Vec<ServiceEntry>> {
        self.store
            .services()
            .await
            .map_err(store_err)?
            .iter()
            .map(ServiceEntry::from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn allowlist_parsing_and_matching() {
        let l = parse_allowlist("10.0.0.0/8, 192.0.2.7,2001:db8::/32").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].to_string(), "192.0.2.7/32");
        assert!(address_allowed(&l, "10.1.2.3".parse().unwrap()));
        assert!(address_allowed(&l, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(address_allowed(&l, "192.0.2.7".parse().unwrap()));
        assert!(!address_allowed(&l, "192.0.2.8".parse().unwrap()));
        assert!(address_allowed(&l, "2001:db8::1".parse().unwrap()));
        assert!(!address_allowed(&[], "10.1.2.3".parse().unwrap()));
        let e = parse_allowlist("10.0.0.0/8,10.0.0.300").unwrap_err();
        assert!(e.detail().contains("\"10.0.0.300\""), "{e}");
        assert!(parse_allowlist("").is_err());
        assert!(parse_allowlist("10.0.0.0/33").is_err());
    }

    #[test]
    fn passwords() {
        use secrecy::ExposeSecret;
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose_secret().len(), 32);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
