//! `primus.cfg` tree → [`PrimusConfig`], level by level.

use super::schema::{join, Problems};
use super::{
    HsmConfig, LogConfig, PrimusConfig, SlotConfig, DEFAULT_CONNECT_ON_INIT, DEFAULT_WAIT_DELAY_MS,
    DEFAULT_WAIT_MAX_TRIES,
};
use crate::config::libconfig::{Setting, Value};

const ROOT_KEYS: &[&str] = &["version", "primus"];
const PRIMUS_KEYS: &[&str] = &[
    "wait_delay",
    "wait_max_tries",
    "connect_on_init",
    "hsms",
    "log",
    "ca_file",
];
const HSM_KEYS: &[&str] = &["host", "port", "priority", "pin", "slots", "ca_file"];
const SLOT_KEYS: &[&str] = &[
    "client_id",
    "user_name",
    "proxy_user",
    "proxy_password",
    "id",
];
const LOG_KEYS: &[&str] = &[
    "file",
    "write_log_file",
    "write_syslog",
    "trace_linenumber",
    "trace_timestamp",
    "trace_function",
    "trace_inout",
    "trace_pid",
    "trace_filename",
    "trace_mask",
    "trace_level",
];

fn u32_setting(p: &mut Problems, v: &Value, path: &str) -> Option<u32> {
    p.integer(v, path, 0, i64::from(u32::MAX))
        .and_then(|i| u32::try_from(i).ok())
}

/// The whole file; `None` when something required could not be read.
pub(super) fn config(root: &Value, p: &mut Problems) -> Option<PrimusConfig> {
    let settings = p.group(root, "<root>")?;
    let mut version = None;
    let mut primus = None;
    for s in settings {
        match s.name.as_str() {
            "version" => version = p.string(&s.value, "version"),
            "primus" => primus = Some(s),
            _ => p.unknown(s, "", ROOT_KEYS),
        }
    }
    let Some(primus) = primus else {
        p.missing(&root.position, "", "primus");
        return None;
    };
    let mut config = PrimusConfig {
        version,
        wait_delay_ms: DEFAULT_WAIT_DELAY_MS,
        wait_max_tries: DEFAULT_WAIT_MAX_TRIES,
        connect_on_init: DEFAULT_CONNECT_ON_INIT,
        hsms: Vec::new(),
        log: LogConfig::default(),
        ca_file: None,
        slots: Vec::new(),
    };
    let mut hsms_seen = false;
    for s in p.group(&primus.value, "primus")? {
        let path = join("primus", &s.name);
        let v = &s.value;
        match s.name.as_str() {
            "wait_delay" => set(&mut config.wait_delay_ms, u32_setting(p, v, &path)),
            "wait_max_tries" => set(&mut config.wait_max_tries, u32_setting(p, v, &path)),
            "connect_on_init" => set(&mut config.connect_on_init, p.boolean(v, &path)),
            "hsms" => {
                hsms_seen = true;
                config.hsms = hsms(s, &path, p);
            }
            "log" => config.log = log(v, &path, p),
            "ca_file" => config.ca_file = p.string(v, &path),
            _ => p.unknown(s, "primus", PRIMUS_KEYS),
        }
    }
    if !hsms_seen {
        p.missing(&primus.position, "primus", "hsms");
    } else if config.hsms.is_empty() && p.0.is_empty() {
        p.push(&primus.position, "no HSM is configured in 'primus.hsms'");
    }
    Some(config)
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn hsms(hsms: &Setting, path: &str, p: &mut Problems) -> Vec<HsmConfig> {
    let Some(entries) = p.group(&hsms.value, path) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| hsm(entry, &join(path, &entry.name), p))
        .collect()
}

fn hsm(entry: &Setting, path: &str, p: &mut Problems) -> Option<HsmConfig> {
    let settings = p.group(&entry.value, path)?;
    let (mut host, mut port, mut priority, mut pin) = (None, None, 0u8, None);
    let mut slots = Vec::new();
    let mut ca_file = None;
    let (mut host_seen, mut port_seen) = (false, false);
    for s in settings {
        let key = join(path, &s.name);
        let v = &s.value;
        match s.name.as_str() {
            "host" => {
                host_seen = true;
                host = p.string(v, &key);
            }
            "port" => {
                port_seen = true;
                port = p.port(v, &key);
            }
            "priority" => set(
                &mut priority,
                p.integer(v, &key, 0, 127)
                    .and_then(|i| u8::try_from(i).ok()),
            ),
            "pin" => pin = p.secret(v, &key),
            "ca_file" => ca_file = p.string(v, &key),
            "slots" => {
                if let Some(group) = p.group(v, &key) {
                    slots = group
                        .iter()
                        .filter_map(|e| slot(e, &join(&key, &e.name), p))
                        .collect();
                }
            }
            _ => p.unknown(s, path, HSM_KEYS),
        }
    }
    let at = &entry.position;
    if !host_seen {
        p.missing(at, path, "host");
    }
    if !port_seen {
        p.missing(at, path, "port");
    }
    Some(HsmConfig {
        name: entry.name.clone(),
        host: host?,
        port: port?,
        priority,
        pin,
        slots,
        ca_file,
        position: entry.position.clone(),
    })
}

fn slot(entry: &Setting, path: &str, p: &mut Problems) -> Option<SlotConfig> {
    let settings = p.group(&entry.value, path)?;
    let mut client_id = None;
    let mut user_name = None;
    let mut user_name_position = None;
    let mut proxy_user = None;
    let mut proxy_password = None;
    let mut id = None;
    let mut id_seen = false;
    for s in settings {
        let key = join(path, &s.name);
        let v = &s.value;
        match s.name.as_str() {
            "client_id" => client_id = p.string(v, &key),
            "user_name" => {
                user_name_position = Some(v.position.clone());
                user_name = p.string(v, &key);
            }
            "proxy_user" => proxy_user = p.string(v, &key),
            "proxy_password" => proxy_password = p.secret(v, &key),
            "id" => {
                id_seen = true;
                id = u32_setting(p, v, &key);
            }
            _ => p.unknown(s, path, SLOT_KEYS),
        }
    }
    let at = &entry.position;
    if user_name_position.is_none() {
        p.missing(at, path, "user_name");
    }
    if !id_seen {
        p.missing(at, path, "id");
    }
    Some(SlotConfig {
        name: entry.name.clone(),
        client_id,
        user_name: user_name?,
        proxy_user,
        proxy_password,
        id: id?,
        position: entry.position.clone(),
        user_name_position: user_name_position?,
    })
}

fn log(value: &Value, path: &str, p: &mut Problems) -> LogConfig {
    let mut log = LogConfig::default();
    let Some(settings) = p.group(value, path) else {
        return log;
    };
    for s in settings {
        let key = join(path, &s.name);
        let v = &s.value;
        let flag = match s.name.as_str() {
            "file" => {
                log.file = p.string(v, &key);
                continue;
            }
            "trace_mask" => {
                set(&mut log.trace_mask, p.mask(v, &key));
                continue;
            }
            "trace_level" => {
                set(
                    &mut log.trace_level,
                    p.integer(v, &key, 0, 7).and_then(|i| u8::try_from(i).ok()),
                );
                continue;
            }
            "write_log_file" => &mut log.write_log_file,
            "write_syslog" => &mut log.write_syslog,
            "trace_linenumber" => &mut log.trace_linenumber,
            "trace_timestamp" => &mut log.trace_timestamp,
            "trace_function" => &mut log.trace_function,
            "trace_inout" => &mut log.trace_inout,
            "trace_pid" => &mut log.trace_pid,
            "trace_filename" => &mut log.trace_filename,
            _ => {
                p.unknown(s, path, LOG_KEYS);
                continue;
            }
        };
        set(flag, p.boolean(v, &key));
    }
    log
}
