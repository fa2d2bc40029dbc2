//! The actions of `ppin`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use tresor_client::config::lookup::{self, Located, ProcessEnvironment, Source};
use tresor_client::config::primus::{PrimusConfig, Slot};
use tresor_client::config::secrets::SecretsFile;
use tresor_client::connect::{self, SlotSettings};
use tresor_client::Error;

use crate::args::Args;

/// Why an action failed.
#[derive(Debug)]
pub enum Failure {
    /// A client-library error (printed with its vendor code).
    Client(Error),
    /// A message for the user.
    Message(String),
    /// Already reported.
    Silent,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Client(e)
    }
}

type Result<T = ()> = std::result::Result<T, Failure>;

fn config_path(args: &Args) -> Result<PathBuf> {
    match &args.config {
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => Err(Error::ConfigNotFound {
            searched: vec![format!("{} (-c, no such file)", p.display())],
        }
        .into()),
        None => Ok(lookup::find_config(&ProcessEnvironment)?.path),
    }
}

fn load_config(args: &Args) -> Result<PrimusConfig> {
    Ok(PrimusConfig::load(&config_path(args)?)?)
}

/// The secrets file to read: `Ok(None)` when there is none yet.
fn secrets_path(args: &Args) -> Result<Option<PathBuf>> {
    match &args.secrets {
        Some(p) if p.is_file() => Ok(Some(p.clone())),
        Some(_) => Ok(None),
        None => match lookup::find_secrets(&ProcessEnvironment) {
            Ok(l) => Ok(Some(l.path)),
            Err(Error::SecretsNotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

fn load_secrets(args: &Args) -> Result<SecretsFile> {
    match secrets_path(args)? {
        Some(p) => {
            let loaded = SecretsFile::load(&p)?;
            for w in &loaded.warnings {
                eprintln!("ppin: warning: {w}");
            }
            Ok(loaded.secrets)
        }
        None => Ok(SecretsFile::new()),
    }
}

/// Where the secrets file is written.
fn secrets_target(args: &Args) -> Located {
    match &args.secrets {
        Some(p) => Located {
            path: p.clone(),
            source: Source::Default,
        },
        None => match lookup::find_secrets(&ProcessEnvironment) {
            Ok(l) => l,
            Err(_) => lookup::secrets_write_target(&ProcessEnvironment),
        },
    }
}

fn write_secrets(args: &Args, secrets: &SecretsFile) -> Result<PathBuf> {
    let target = secrets_target(args);
    secrets.write(&target.path)?;
    Ok(target.path)
}

fn required_user(args: &Args, action: &str) -> Result<String> {
    args.user.clone().ok_or_else(|| {
        Failure::Message(format!(
            "'{action}' needs the user: 'ppin {action} -e <user>'"
        ))
    })
}

fn prompt(text: &str) -> Result<SecretString> {
    rpassword::prompt_password(text)
        .map(SecretString::from)
        .map_err(|e| Failure::Message(format!("cannot read the password: {e}")))
}

/// Whether `name` is a service (proxy) user somewhere in the configuration.
fn is_service_user(config: &PrimusConfig, name: &str) -> bool {
    config
        .hsms
        .iter()
        .flat_map(|h| &h.slots)
        .any(|s| s.proxy_user.as_deref() == Some(name))
}

fn service_users(config: &PrimusConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in config.hsms.iter().flat_map(|h| &h.slots) {
        if let Some(p) = &s.proxy_user {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

fn status(set: bool) -> &'static str {
    if set {
        "Configured"
    } else {
        "MISSING"
    }
}

/// `-l`.
pub fn list(args: &Args) -> Result {
    let config = load_config(args)?;
    let secrets = load_secrets(args)?;
    for (i, slot) in config.slots().iter().enumerate() {
        let set = secrets
            .user(&slot.user_name)
            .is_some_and(|u| u.permanent_secret.is_some());
        println!(
            "[{:02}] slot-id {}:    user '{}'   permanent secret: {}",
            i + 1,
            slot.id,
            slot.user_name,
            status(set)
        );
    }
    for (i, name) in service_users(&config).iter().enumerate() {
        let in_cfg = config
            .hsms
            .iter()
            .flat_map(|h| &h.slots)
            .any(|s| s.proxy_user.as_deref() == Some(name) && s.proxy_password.is_some());
        let in_secrets = secrets
            .user(name)
            .is_some_and(|u| u.proxy_password.is_some());
        println!(
            "[{:02}] service/proxy user '{}'  permanent secret: {}",
            i + 1,
            name,
            status(in_cfg || in_secrets)
        );
    }
    Ok(())
}

/// `-p -e <svcuser> [pwd]`.
pub fn proxy_add(args: &Args) -> Result {
    let user = required_user(args, "-p")?;
    let config = load_config(args)?;
    if !is_service_user(&config, &user) {
        return Err(if config.has_user(&user) {
            Failure::Message(format!(
                "'{user}' is a partition, not a service (proxy) user; use 'ppin -a -e {user}'"
            ))
        } else {
            Error::UserNotInConfig { user }.into()
        });
    }
    let password = match args.values.first() {
        Some(p) => SecretString::from(p.clone()),
        None => prompt(&format!("Provide proxy password for '{user}': "))?,
    };
    if password.expose_secret().is_empty() {
        return Err(Failure::Message("the password is empty".into()));
    }
    let mut secrets = load_secrets(args)?;
    secrets.user_mut(&user).proxy_password = Some(password);
    let path = write_secrets(args, &secrets)?;
    println!(
        "Password of service user '{user}' stored in {}",
        path.display()
    );
    Ok(())
}

fn is_empty_entry(secrets: &SecretsFile, user: &str) -> bool {
    secrets.user(user).is_some_and(|u| {
        u.permanent_secret.is_none()
            && u.pkcs11_password.is_none()
            && u.proxy_password.is_none()
            && u.other.is_empty()
    })
}

/// `-x -e <svcuser>`.
pub fn proxy_remove(args: &Args) -> Result {
    let user = required_user(args, "-x")?;
    let mut secrets = load_secrets(args)?;
    let had = secrets
        .user(&user)
        .is_some_and(|u| u.proxy_password.is_some());
    if !had {
        return Err(Failure::Message(format!(
            "no password of service user '{user}' is stored in the secrets file"
        )));
    }
    secrets.user_mut(&user).proxy_password = None;
    if is_empty_entry(&secrets, &user) {
        secrets.remove_user(&user);
    }
    let path = write_secrets(args, &secrets)?;
    println!(
        "Password of service user '{user}' removed from {}",
        path.display()
    );
    Ok(())
}

/// `-r -e <user>`.
pub fn remove(args: &Args) -> Result {
    let user = required_user(args, "-r")?;
    let mut secrets = load_secrets(args)?;
    let had = secrets
        .user(&user)
        .is_some_and(|u| u.permanent_secret.is_some() || u.pkcs11_password.is_some());
    if !had {
        return Err(Failure::Message(format!(
            "no permanent secret of user '{user}' is stored in the secrets file"
        )));
    }
    let entry = secrets.user_mut(&user);
    entry.permanent_secret = None;
    entry.pkcs11_password = None;
    if is_empty_entry(&secrets, &user) {
        secrets.remove_user(&user);
    }
    let path = write_secrets(args, &secrets)?;
    println!(
        "Permanent secret of user '{user}' removed from {}",
        path.display()
    );
    Ok(())
}

/// The service user of a slot whose password is not known, if any.
fn unknown_service_password(slot: &Slot, secrets: &SecretsFile) -> Option<Failure> {
    for t in &slot.targets {
        let Some(svc) = &t.proxy_user else {
            return Some(Failure::Message(format!(
                "slot '{}' of {} has no 'proxy_user' (service user) in the configuration",
                t.slot, t.hsm
            )));
        };
        let known = t.proxy_password.is_some()
            || secrets
                .user(svc)
                .is_some_and(|u| u.proxy_password.is_some());
        if !known {
            return Some(Failure::Message(format!(
                "the password of service user '{svc}' is not known: run 'ppin -p -e {svc}' first"
            )));
        }
    }
    None
}

/// `-a` / `-u -e <user> [setup pkcs11]`.
pub fn add(args: &Args, update: bool) -> Result {
    let option = if update { "-u" } else { "-a" };
    let user = required_user(args, option)?;
    let config = load_config(args)?;
    if !config.has_user(&user) {
        return Err(Error::UserNotInConfig { user }.into());
    }
    if is_service_user(&config, &user) && config.slots_for_user(&user).is_err() {
        return Err(Failure::Message(format!(
            "'{user}' is a service (proxy) user; store its password with 'ppin -p -e {user}'"
        )));
    }
    let slots = config.slots_for_user(&user)?;
    let Some(slot) = slots.first() else {
        return Err(Error::UserNotInConfig { user }.into());
    };
    let mut secrets = load_secrets(args)?;
    if let Some(f) = unknown_service_password(slot, &secrets) {
        return Err(f);
    }
    let existing = secrets
        .user(&user)
        .is_some_and(|u| u.permanent_secret.is_some());
    if existing && !update {
        return Err(Failure::Message(format!(
            "user '{user}' has a permanent secret already: use 'ppin -u -e {user}' to renew it \
             or 'ppin -r -e {user}' to remove it"
        )));
    }
    let settings = SlotSettings::from_config(&config, slot, Some(&secrets))?;
    let setup = match args.values.first() {
        Some(v) => SecretString::from(v.clone()),
        None => prompt(&format!("Provide setup password for '{user}': "))?,
    };
    let pin = match args.values.get(1) {
        Some(v) => SecretString::from(v.clone()),
        None => prompt(&format!("Provide PKCS11 password for '{user}': "))?,
    };
    let label = slot
        .targets
        .first()
        .and_then(|t| t.client_id.clone())
        .unwrap_or_else(|| connect::DEFAULT_CLIENT_ID.to_owned());
    match connect::register(&settings, &setup, &pin, &label) {
        Ok((key, fingerprint)) => {
            let entry = secrets.user_mut(&user);
            entry.permanent_secret = Some(SecretSlice::from(key.to_vec()));
            entry.pkcs11_password = Some(pin);
            let path = write_secrets(args, &secrets)?;
            println!(
                "Permanent secret of user '{user}' stored in {} (key {fingerprint})",
                path.display()
            );
            Ok(())
        }
        Err(e) if update && !e.is_network() && existing => {
            let entry = secrets.user_mut(&user);
            entry.permanent_secret = None;
            entry.pkcs11_password = None;
            if is_empty_entry(&secrets, &user) {
                secrets.remove_user(&user);
            }
            write_secrets(args, &secrets)?;
            eprintln!("ppin: error {}: {e}", e.vendor_code());
            eprintln!(
                "ppin: the entry of user '{user}' was deleted; use 'ppin -a -e {user}' with a \
                 new setup password"
            );
            Err(Failure::Silent)
        }
        Err(e) => Err(e.into()),
    }
}

fn matches_filter(args: &Args, hsm: &tresor_client::config::primus::HsmConfig) -> bool {
    args.hsm
        .as_deref()
        .is_none_or(|h| h == hsm.name || h == hsm.host)
}

/// `-t` / `--test`.
pub fn test(args: &Args) -> Result {
    let config = load_config(args)?;
    let secrets = load_secrets(args)?;
    if let Some(u) = &args.user {
        config.slots_for_user(u)?;
    }
    let options = connect::ConnectOptions::from_config(&config);
    let (mut hsms, mut failures) = (0u32, 0u32);
    let mut partitions: Vec<&str> = Vec::new();
    for hsm in config.hsms.iter().filter(|h| matches_filter(args, h)) {
        let entries: Vec<_> = hsm
            .slots
            .iter()
            .filter(|s| args.user.as_deref().is_none_or(|u| u == s.user_name))
            .filter(|s| args.slot.as_deref().is_none_or(|n| n == s.name))
            .filter(|s| args.slot_id.is_none_or(|id| id == s.id))
            .collect();
        if entries.is_empty() {
            continue;
        }
        hsms += 1;
        println!(
            "{}: Connect to '{}' on port {}, firmware: Tresor {}",
            hsm.name,
            hsm.host,
            hsm.port,
            env!("CARGO_PKG_VERSION")
        );
        for entry in entries {
            if !partitions.contains(&entry.user_name.as_str()) {
                partitions.push(&entry.user_name);
            }
            let outcome = test_one(&config, &secrets, &hsm.name, entry, &options);
            match outcome {
                Ok(()) => println!(
                    "{} (id={}), user={}: OK",
                    entry.name, entry.id, entry.user_name
                ),
                Err(reason) => {
                    failures += 1;
                    println!(
                        "{} (id={}), user={}: FAILED ({reason})",
                        entry.name, entry.id, entry.user_name
                    );
                }
            }
        }
    }
    println!(
        "Number of tested HSMs: {hsms} (number of partitions: {})",
        partitions.len()
    );
    println!("Number of failures: {failures}");
    if hsms == 0 {
        return Err(Failure::Message(
            "no configured slot matches the selection".into(),
        ));
    }
    if failures > 0 {
        Err(Failure::Silent)
    } else {
        Ok(())
    }
}

fn test_one(
    config: &PrimusConfig,
    secrets: &SecretsFile,
    hsm: &str,
    entry: &tresor_client::config::primus::SlotConfig,
    options: &connect::ConnectOptions,
) -> std::result::Result<(), String> {
    let describe = |e: Error| format!("{}: {e}", e.vendor_code());
    let slot = config
        .slot(entry.id)
        .ok_or_else(|| format!("slot id {} is not configured", entry.id))?;
    let stored = secrets.user(&entry.user_name);
    let key = stored
        .and_then(|u| u.permanent_secret.as_ref())
        .ok_or_else(|| {
            format!(
                "no permanent secret stored; run 'ppin -a -e {}'",
                entry.user_name
            )
        })?;
    let settings = SlotSettings::from_config(config, slot, Some(secrets)).map_err(describe)?;
    let endpoint = settings
        .endpoints
        .iter()
        .find(|e| e.hsm == hsm)
        .ok_or_else(|| format!("{hsm} is not a target of slot id {}", entry.id))?;
    let pin = stored.and_then(|u| u.pkcs11_password.as_ref());
    connect::test_connection(
        endpoint,
        &entry.user_name,
        key.expose_secret(),
        pin,
        options,
    )
    .map(|_| ())
    .map_err(describe)
}
