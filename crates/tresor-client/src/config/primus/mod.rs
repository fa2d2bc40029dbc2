//! The typed `primus.cfg` configuration (Securosys Primus PKCS#11 provider format).
//!
//! ```text
//! version = "1.0";
//! primus: {
//!   wait_delay = 250; wait_max_tries = 5; connect_on_init = true;
//!   hsms: { hsm0: { host = "a-api.cloudshsm.com"; port = "2310"; priority = 0;
//!                   slots: { slot0: { client_id = "App1"; user_name = "PARTITION"; id = 0; }; }; }; };
//!   log: { file = "/tmp/primus.log"; trace_level = 4; };
//! };
//! ```
//!
//! Every setting is checked: unknown settings, wrong types, values out of range and missing
//! required settings are all reported with their position. Slots with the same `id` on several
//! HSMs form one redundant [`Slot`] with several [`SlotTarget`]s.

mod read;
pub(crate) mod schema;
mod slots;

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::libconfig::{self, Value};
use crate::{Error, Position};

pub use slots::{Slot, SlotTarget};

/// Default `primus.wait_delay`, in milliseconds.
pub const DEFAULT_WAIT_DELAY_MS: u32 = 250;
/// Default `primus.wait_max_tries`.
pub const DEFAULT_WAIT_MAX_TRIES: u32 = 5;
/// Default `primus.connect_on_init`.
pub const DEFAULT_CONNECT_ON_INIT: bool = true;

/// The whole `primus.cfg`.
#[derive(Clone, Debug)]
pub struct PrimusConfig {
    /// `version`, if given (Securosys writes `"1.0"`).
    pub version: Option<String>,
    /// `primus.wait_delay`: delay between connection attempts, in milliseconds (default 250).
    pub wait_delay_ms: u32,
    /// `primus.wait_max_tries`: connection attempts (default 5).
    pub wait_max_tries: u32,
    /// `primus.connect_on_init`: connect in `C_Initialize` (default true).
    pub connect_on_init: bool,
    /// `primus.hsms.*` in file order.
    pub hsms: Vec<HsmConfig>,
    /// `primus.log`.
    pub log: LogConfig,
    /// `primus.ca_file` (Tresor): the cluster root certificate (PEM) that verifies both the
    /// gateway and the HSM node; an HSM entry's own `ca_file` overrides it.
    pub ca_file: Option<String>,
    /// The slot view: slots grouped by `id`, sorted by `id`.
    slots: Vec<Slot>,
}

/// One `primus.hsms.<name>` entry.
#[derive(Clone, Debug)]
pub struct HsmConfig {
    /// The entry's name, e.g. `hsm0`.
    pub name: String,
    /// `host`: name or address of the HSM (or gateway).
    pub host: String,
    /// `port` (a string in the Securosys format; an integer is accepted too).
    pub port: u16,
    /// `priority` 0..=127, lower preferred (default 0).
    pub priority: u8,
    /// `pin`: optional setup password (discouraged by Securosys). Never printed.
    pub pin: Option<SecretString>,
    /// `slots.*` in file order.
    pub slots: Vec<SlotConfig>,
    /// `ca_file` (Tresor): this HSM's root certificate (PEM), overriding `primus.ca_file`.
    pub ca_file: Option<String>,
    /// Where the entry's name is.
    pub position: Position,
}

/// One `primus.hsms.<hsm>.slots.<name>` entry.
#[derive(Clone, Debug)]
pub struct SlotConfig {
    /// The entry's name, e.g. `slot0`.
    pub name: String,
    /// `client_id`: the application's name, logged by the HSM.
    pub client_id: Option<String>,
    /// `user_name`: the partition.
    pub user_name: String,
    /// `proxy_user`: the CloudHSM service user.
    pub proxy_user: Option<String>,
    /// `proxy_password`: the CloudHSM service user's password. Never printed.
    pub proxy_password: Option<SecretString>,
    /// `id`: the PKCS#11 slot id.
    pub id: u32,
    /// Where the entry's name is.
    pub position: Position,
    /// Where the `user_name` value is.
    pub user_name_position: Position,
}

/// `primus.log`. Settings not given keep these defaults: no file, no file logging, no syslog,
/// no trace decorations, `trace_mask` 0, `trace_level` 4 (warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `file`: log file path.
    pub file: Option<String>,
    /// `write_log_file`.
    pub write_log_file: bool,
    /// `write_syslog` (syslog facility LOCAL1).
    pub write_syslog: bool,
    /// `trace_linenumber`.
    pub trace_linenumber: bool,
    /// `trace_timestamp`.
    pub trace_timestamp: bool,
    /// `trace_function`.
    pub trace_function: bool,
    /// `trace_inout`.
    pub trace_inout: bool,
    /// `trace_pid`.
    pub trace_pid: bool,
    /// `trace_filename`.
    pub trace_filename: bool,
    /// `trace_mask`: 0x01 PKCS#11 input, 0x02 protocol, 0x04 TCP receive.
    pub trace_mask: u32,
    /// `trace_level` 0..=7 (syslog levels).
    pub trace_level: u8,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            file: None,
            write_log_file: false,
            write_syslog: false,
            trace_linenumber: false,
            trace_timestamp: false,
            trace_function: false,
            trace_inout: false,
            trace_pid: false,
            trace_filename: false,
            trace_mask: 0,
            trace_level: 4,
        }
    }
}

impl PrimusConfig {
    /// Reads the typed configuration out of a parsed tree; every problem is reported.
    pub fn from_value(root: &Value) -> Result<Self, Error> {
        let mut problems = schema::Problems::default();
        let config = read::config(root, &mut problems);
        match config {
            Some(mut config) if problems.0.is_empty() => {
                config.slots = slots::build(&config.hsms, config.ca_file.as_deref(), &mut problems);
                if problems.0.is_empty() {
                    Ok(config)
                } else {
                    Err(Error::InvalidConfig(problems.0))
                }
            }
            _ => Err(Error::InvalidConfig(problems.0)),
        }
    }

    /// Parses `primus.cfg` text; `file_name` names it in messages.
    pub fn parse_str(text: &str, file_name: &str) -> Result<Self, Error> {
        let root =
            libconfig::parse_str(text, file_name).map_err(|d| Error::InvalidConfig(vec![d]))?;
        Self::from_value(&root)
    }

    /// Reads and parses a `primus.cfg` file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let root = libconfig::parse_file(path).map_err(|d| Error::InvalidConfig(vec![d]))?;
        Self::from_value(&root)
    }

    /// `primus.wait_delay` as a duration.
    pub fn wait_delay(&self) -> Duration {
        Duration::from_millis(u64::from(self.wait_delay_ms))
    }

    /// The slots, grouped by `id` across HSMs, sorted by `id`.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The slot with this `id`.
    pub fn slot(&self, id: u32) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// The slots whose partition (`user_name`) is `user`; [`Error::UserNotInConfig`] if none.
    pub fn slots_for_user(&self, user: &str) -> Result<Vec<&Slot>, Error> {
        let found: Vec<&Slot> = self.slots.iter().filter(|s| s.user_name == user).collect();
        if found.is_empty() {
            Err(Error::UserNotInConfig {
                user: user.to_owned(),
            })
        } else {
            Ok(found)
        }
    }

    /// Whether `user` is configured, as a partition (`user_name`) or a service user
    /// (`proxy_user`).
    pub fn has_user(&self, user: &str) -> bool {
        self.hsms
            .iter()
            .flat_map(|h| &h.slots)
            .any(|s| s.user_name == user || s.proxy_user.as_deref() == Some(user))
    }
}
