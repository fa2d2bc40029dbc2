//! `tresor admin service …` and `tresor admin credentials …`: the service directory the
//! gateways check, and the partition credentials of the end-to-end channel (setup password,
//! PKCS#11 password, registered client keys), plus the subscriber's credentials file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use tresor_core::directory::parse_allowlist;
use tresor_core::SetupPolicy;

use crate::cmd::{open_engine, open_unsealed, ShareArgs, StoreArgs};

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a service (a subscriber's gateway credential); prints its generated password once.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        /// Display name of the service (unique).
        #[arg(long)]
        name: String,
        /// Service user name clients present to the gateway (unique).
        #[arg(long)]
        service_user: String,
        /// Source addresses allowed to connect: CIDR networks or addresses, comma-separated
        /// (repeatable).
        #[arg(long = "allow", required = true)]
        allow: Vec<String>,
        /// A partition the service may reach (repeatable).
        #[arg(long = "partition", required = true)]
        partitions: Vec<String>,
        /// A node the service may use (repeatable; default: any node).
        #[arg(long = "node")]
        nodes: Vec<String>,
    },
    /// List the services with their lockout state (no shares needed).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace a service's password with a new generated one (printed once); clears its lockout.
    RotatePassword {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        service_user: String,
    },
    /// Change a service's allowlist, partitions, nodes, or enable/disable it.
    Set {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        service_user: String,
        /// Replace the allowlist (comma-separated; repeatable).
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Replace the partitions (repeatable).
        #[arg(long = "partition")]
        partitions: Vec<String>,
        /// Replace the nodes (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Allow any node again.
        #[arg(long, conflicts_with = "nodes")]
        any_node: bool,
        /// Refuse the service at the gateways.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Accept the service again.
        #[arg(long)]
        enable: bool,
    },
    /// Clear a service user's lockout.
    Unlock {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        service_user: String,
    },
    /// Delete a service.
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        service_user: String,
    },
}

/// How a new setup password lives.
#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// Lifetime of the setup password in days.
    #[arg(long, default_value_t = 7)]
    pub lifetime_days: u32,
    /// Count the lifetime from issue instead of from first use.
    #[arg(long)]
    pub from_issue: bool,
    /// Wrong guesses after which the setup password is locked.
    #[arg(long, default_value_t = 5)]
    pub max_failures: u32,
}

impl SetupArgs {
    fn policy(&self) -> SetupPolicy {
        SetupPolicy {
            lifetime_secs: i64::from(self.lifetime_days) * 24 * 3600,
            from_first_use: !self.from_issue,
            max_failures: self.max_failures,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Issue a new setup password for a partition (printed once), replacing any previous one.
    SetupPassword {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Set the PKCS#11 password (user PIN) of a partition; clears the user-PIN lockout.
    SetPkcs11Password {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
        /// The new password (else prompted without echo, or read from standard input).
        #[arg(long, env = "TRESOR_PKCS11_PASSWORD")]
        password: Option<String>,
    },
    /// List the client keys registered for a partition.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
    },
    /// Withdraw the partition's setup password before it is used.
    RevokeSetupPassword {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
    },
    /// Revoke a registered client key (or all of them).
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        #[arg(long)]
        partition: String,
        /// Fingerprint (hex SHA-256 of the key's SubjectPublicKeyInfo) as `list` shows it.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        fingerprint: Option<String>,
        /// Revoke every registered key of the partition.
        #[arg(long)]
        all: bool,
    },
    /// Write a subscriber's credentials file: a new setup password, the service password (the
    /// current one if given with --service-password, else a newly rotated one) and, if given,
    /// the PKCS#11 password, in the CloudHSM layout (mode 0600).
    File {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        shares: ShareArgs,
        /// The partition (HSM user name).
        #[arg(long)]
        partition: String,
        /// The service user whose password goes into the file.
        #[arg(long)]
        service_user: String,
        /// The service user's current password, checked and written as is. Without it the
        /// password is rotated, and every client of the service needs the new one.
        #[arg(long, env = "TRESOR_SERVICE_PASSWORD")]
        service_password: Option<String>,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
        /// Also set the partition's PKCS#11 password to this and put it in the file.
        #[arg(long, env = "TRESOR_PKCS11_PASSWORD")]
        pkcs11_password: Option<String>,
        /// A gateway `host:port` to list in the file (repeatable).
        #[arg(long = "gateway")]
        gateways: Vec<String>,
        #[command(flatten)]
        setup: SetupArgs,
    },
}

/// The subscriber's credentials, as written by [`write_credentials_file`].
pub(crate) struct CredentialsFile {
    pub service_user: String,
    pub service_password: SecretString,
    /// The partition name.
    pub hsm_user: String,
    pub setup_password: SecretString,
    pub pkcs11_password: Option<SecretString>,
    /// `host:port` of each gateway.
    pub gateways: Vec<String>,
}

/// Write a credentials file atomically (a temporary file in the same directory, mode 0600,
/// renamed into place), one `Key: value` per line in the CloudHSM seed layout.
pub(crate) fn write_credentials_file(path: &Path, c: &CredentialsFile) -> Result<()> {
    let check = |what: &str, v: &str| -> Result<()> {
        if v.is_empty() || v.chars().any(char::is_control) {
            bail!("credentials file: the {what} is empty or contains a control character");
        }
        Ok(())
    };
    check("service user name", &c.service_user)?;
    check("service user password", c.service_password.expose_secret())?;
    check("HSM user name", &c.hsm_user)?;
    check("setup password", c.setup_password.expose_secret())?;
    if let Some(p) = &c.pkcs11_password {
        check("PKCS#11 password", p.expose_secret())?;
    }
    for g in &c.gateways {
        check("gateway address", g)?;
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    text.push_str(&format!("Service User Name: {}\n", c.service_user));
    text.push_str(&format!(
        "Service User Password: {}\n",
        c.service_password.expose_secret()
    ));
    text.push_str(&format!("HSM User Name: {}\n", c.hsm_user));
    text.push_str(&format!(
        "HSM User Setup Password: {}\n",
        c.setup_password.expose_secret()
    ));
    if let Some(p) = &c.pkcs11_password {
        text.push_str(&format!("PKCS#11 password: {}\n", p.expose_secret()));
    }
    for g in &c.gateways {
        text.push_str(&format!("Gateway: {g}\n"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // NamedTempFile is created with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict the permissions in {}", dir.display()))?;
    }
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

fn print_secret_once(what: &str, s: &SecretString) {
    println!("{what}: {}", s.expose_secret());
    println!("(shown once; it is not stored in a readable form)");
}

fn read_password() -> Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let a = zeroize::Zeroizing::new(rpassword::prompt_password("New PKCS#11 password: ")?);
        let b = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if a.as_str() != b.as_str() {
            bail!("the two passwords differ");
        }
        return Ok(SecretString::from(a.to_string()));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the PKCS#11 password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        bail!("no PKCS#11 password given (use --password or standard input)");
    }
    Ok(SecretString::from(pw.to_owned()))
}

pub async fn service(c: ServiceCommand) -> Result<ExitCode> {
    match c {
        ServiceCommand::Create {
            store,
            shares,
            name,
            service_user,
            allow,
            partitions,
            nodes,
        } => {
            let allow = parse_allowlist(&allow.join(","))?;
            let engine = open_unsealed(&store, &shares).await?;
            let (rec, pw) = engine
                .create_service(&name, &service_user, allow, partitions, nodes)
                .await?;
            println!(
                "Created service {} (service user {}).",
                rec.name, rec.service_user
            );
            print_secret_once("Service user password", &pw);
            engine.seal().await?;
        }
        ServiceCommand::List { store } => {
            let engine = open_engine(&store).await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            for s in engine.list_services().await? {
                let r = &s.record;
                let allow: Vec<String> = r.allowlist.iter().map(ToString::to_string).collect();
                let state = if r.disabled {
                    "disabled".to_owned()
                } else if s.is_locked(now) {
                    format!(
                        "locked until {}",
                        tresor_core::attest::iso8601(s.locked_until)
                    )
                } else {
                    "active".to_owned()
                };
                println!(
                    "{:<24} user {:<24} partitions {} allow {} nodes {} failures {} {}",
                    r.name,
                    r.service_user,
                    r.partitions.join(","),
                    allow.join(","),
                    if r.nodes.is_empty() {
                        "any".to_owned()
                    } else {
                        r.nodes.join(",")
                    },
                    s.failures,
                    state
                );
            }
        }
        ServiceCommand::RotatePassword {
            store,
            shares,
            service_user,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let pw = engine.rotate_service_password(&service_user).await?;
            println!("Rotated the password of service user {service_user}.");
            print_secret_once("Service user password", &pw);
            engine.seal().await?;
        }
        ServiceCommand::Set {
            store,
            shares,
            service_user,
            allow,
            partitions,
            nodes,
            any_node,
            disable,
            enable,
        } => {
            let allow = if allow.is_empty() {
                None
            } else {
                Some(parse_allowlist(&allow.join(","))?)
            };
            let partitions = (!partitions.is_empty()).then_some(partitions);
            let nodes = if any_node {
                Some(Vec::new())
            } else {
                (!nodes.is_empty()).then_some(nodes)
            };
            let disabled = match (disable, enable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            if allow.is_none() && partitions.is_none() && nodes.is_none() && disabled.is_none() {
                bail!("nothing to change: give --allow, --partition, --node, --any-node, --disable or --enable");
            }
            let engine = open_unsealed(&store, &shares).await?;
            let r = engine
                .update_service(&service_user, allow, partitions, nodes, disabled)
                .await?;
            println!("Updated service user {}: {r:?}", r.service_user);
            engine.seal().await?;
        }
        ServiceCommand::Unlock {
            store,
            shares,
            service_user,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            engine.unlock_service(&service_user).await?;
            println!("Unlocked service user {service_user}.");
            engine.seal().await?;
        }
        ServiceCommand::Delete {
            store,
            shares,
            service_user,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            engine.delete_service(&service_user).await?;
            println!("Deleted service user {service_user}.");
            engine.seal().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn credentials(c: CredentialsCommand) -> Result<ExitCode> {
    match c {
        CredentialsCommand::SetupPassword {
            store,
            shares,
            partition,
            setup,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let pw = engine
                .issue_setup_password(&partition, setup.policy())
                .await?;
            println!(
                "New setup password for partition {partition} (valid {} days from {}):",
                setup.lifetime_days,
                if setup.from_issue {
                    "now"
                } else {
                    "its first use"
                }
            );
            println!("{}", pw.expose_secret());
            engine.seal().await?;
        }
        CredentialsCommand::SetPkcs11Password {
            store,
            shares,
            partition,
            password,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let pw = match password {
                Some(p) => SecretString::from(p),
                None => read_password()?,
            };
            engine
                .admin_set_user_pin(&partition, pw.expose_secret().as_bytes())
                .await?;
            println!("Set the PKCS#11 password of partition {partition}.");
            engine.seal().await?;
        }
        CredentialsCommand::List {
            store,
            shares,
            partition,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            for c in engine.list_clients(&partition).await? {
                println!(
                    "{}  {}  {}",
                    c.fingerprint,
                    tresor_core::attest::iso8601(c.created),
                    c.label
                );
            }
            engine.seal().await?;
        }
        CredentialsCommand::RevokeSetupPassword {
            store,
            shares,
            partition,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let had = engine.revoke_setup_password(&partition).await?;
            engine.seal().await?;
            if !had {
                anyhow::bail!("partition {partition} has no setup password to revoke");
            }
            println!("Revoked the setup password of partition {partition}.");
        }
        CredentialsCommand::Revoke {
            store,
            shares,
            partition,
            fingerprint,
            all,
        } => {
            let engine = open_unsealed(&store, &shares).await?;
            let target = if all { None } else { fingerprint.as_deref() };
            let n = engine.revoke_client(&partition, target).await?;
            engine.seal().await?;
            match (n, target) {
                (0, Some(f)) => {
                    bail!("no client key with fingerprint {f} is registered for partition {partition}")
                }
                _ => println!("Revoked {n} client key(s) of partition {partition}."),
            }
        }
        CredentialsCommand::File {
            store,
            shares,
            partition,
            service_user,
            service_password,
            out,
            pkcs11_password,
            gateways,
            setup,
        } => {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    bail!(
                        "cannot write {}: {} is not a directory",
                        out.display(),
                        dir.display()
                    );
                }
            }
            let engine = open_unsealed(&store, &shares).await?;
            let svc = engine
                .list_services()
                .await?
                .into_iter()
                .find(|s| s.record.service_user == service_user)
                .with_context(|| format!("service user '{service_user}' does not exist"))?;
            if !svc.record.partitions.iter().any(|p| p == &partition) {
                bail!(
                    "service user '{service_user}' may not reach partition '{partition}' (its partitions: {}); add it with `tresor admin service set`",
                    svc.record.partitions.join(", ")
                );
            }
            let pkcs11 = pkcs11_password.map(SecretString::from);
            if let Some(p) = &pkcs11 {
                engine
                    .admin_set_user_pin(&partition, p.expose_secret().as_bytes())
                    .await?;
            }
            let setup_password = engine
                .issue_setup_password(&partition, setup.policy())
                .await?;
            let service_password = match service_password {
                Some(pw) => {
                    let record = svc.record.clone();
                    let candidate = SecretString::from(pw);
                    let check = candidate.clone();
                    let ok = tokio::task::spawn_blocking(move || {
                        tresor_core::directory::verify_service_password(
                            &record,
                            check.expose_secret().as_bytes(),
                        )
                    })
                    .await?;
                    if !ok {
                        bail!("--service-password is not the current password of service user '{service_user}'");
                    }
                    candidate
                }
                None => {
                    let pw = engine.rotate_service_password(&service_user).await?;
                    println!(
                        "Rotated the password of service user {service_user}: every client of this service needs the new one (in the file)."
                    );
                    pw
                }
            };
            let file = CredentialsFile {
                service_user: service_user.clone(),
                service_password,
                hsm_user: partition.clone(),
                setup_password,
                pkcs11_password: pkcs11,
                gateways,
            };
            write_credentials_file(&out, &file)?;
            println!(
                "Wrote the credentials of partition {partition} (service user {service_user}) to {} (mode 0600).",
                out.display()
            );
            engine.seal().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
