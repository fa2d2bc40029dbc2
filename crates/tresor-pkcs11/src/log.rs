//! The `log` block of primus.cfg: a log file, syslog (facility LOCAL1) or both, filtered by
//! `trace_level` (syslog severities 0..=7), with the decorations the block asks for
//! (`trace_timestamp`, `trace_pid`, `trace_function`, `trace_filename`, `trace_linenumber`) and,
//! with `trace_inout` (or bit 0x01 of `trace_mask`), a line for every call and its result.
//!
//! What is logged: `C_Initialize` / `C_Finalize`, every call that fails (a device or general
//! error at `err`, a caught panic at `crit`, anything else at `notice`, the buffer-too-small
//! idiom at `debug`) and, when asked, every call. Arguments, PINs, key material and data are
//! never logged. `TRESOR_PKCS11_TRACE=1` additionally writes every line (all levels) to standard
//! error, for debugging a host without touching its configuration.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::panic::Location;

use tresor_client::config::primus::LogConfig;

/// Syslog severities used here.
/// `crit`: a panic caught at the boundary.
pub(crate) const CRIT: u8 = 2;
/// `err`: a device, connection or general failure.
pub(crate) const ERR: u8 = 3;
/// `notice`: any other failed call.
pub(crate) const NOTICE: u8 = 5;
/// `info`: initialisation and finalisation.
pub(crate) const INFO: u8 = 6;
/// `debug`: every call, and the buffer-too-small idiom.
pub(crate) const DEBUG: u8 = 7;

/// Syslog facility LOCAL1 (as the Primus provider).
const LOCAL1: u8 = 17;
/// The syslog socket.
const SYSLOG_PATH: &str = "/dev/log";
/// The syslog tag.
const TAG: &str = "tresor-pkcs11";

/// Where lines go, and what is added to them.
pub(crate) struct Logger {
    cfg: LogConfig,
    /// Opened for appending: each line is one `write`, so lines of several threads or
    /// processes never mix, and no lock is needed (none can be left held across `fork()`).
    file: Option<File>,
    syslog: Option<UnixDatagram>,
    stderr: bool,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("file", &self.cfg.file)
            .field("file_open", &self.file.is_some())
            .field("syslog", &self.syslog.is_some())
            .field("stderr", &self.stderr)
            .field("trace_level", &self.cfg.trace_level)
            .finish()
    }
}

fn severity_name(level: u8) -> &'static str {
    match level {
        0 => "EMERG",
        1 => "ALERT",
        2 => "CRIT",
        3 => "ERR",
        4 => "WARNING",
        5 => "NOTICE",
        6 => "INFO",
        _ => "DEBUG",
    }
}

impl Logger {
    /// The sinks `cfg` asks for (and standard error if `stderr`); `None` if there are none.
    /// A log file that cannot be opened is reported on standard error and left out: logging
    /// never stops the library from working.
    pub(crate) fn open(cfg: &LogConfig, stderr: bool) -> Option<Logger> {
        let file = match (&cfg.file, cfg.write_log_file) {
            (Some(path), true) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)
            {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("{TAG}: cannot open the log file {path}: {e}; not logging to it");
                    None
                }
            },
            (None, true) => {
                eprintln!("{TAG}: write_log_file is set but the log block names no file");
                None
            }
            _ => None,
        };
        let syslog = cfg
            .write_syslog
            .then(UnixDatagram::unbound)
            .and_then(Result::ok);
        if file.is_none() && syslog.is_none() && !stderr {
            return None;
        }
        Some(Logger {
            cfg: cfg.clone(),
            file,
            syslog,
            stderr,
        })
    }

    /// Whether a line at `level` goes anywhere.
    pub(crate) fn wants(&self, level: u8) -> bool {
        self.stderr || level <= self.cfg.trace_level
    }

    /// Whether every call is logged.
    pub(crate) fn every_call(&self) -> bool {
        self.stderr || self.cfg.trace_inout || self.cfg.trace_mask & 0x01 != 0
    }

    /// The message with the decorations the configuration asks for (no timestamp: added per
    /// sink, syslog stamps its own).
    fn decorate(&self, level: u8, function: &str, msg: &str, at: &Location<'_>) -> String {
        let mut s = String::with_capacity(msg.len() + 64);
        if self.cfg.trace_pid {
            let _ = write!(s, "[{}] ", std::process::id());
        }
        let _ = write!(s, "{} ", severity_name(level));
        if self.cfg.trace_filename || self.cfg.trace_linenumber {
            if self.cfg.trace_filename {
                s.push_str(at.file());
            }
            if self.cfg.trace_linenumber {
                let _ = write!(s, ":{}", at.line());
            }
            s.push(' ');
        }
        if self.cfg.trace_function || self.stderr {
            let _ = write!(s, "{function}: ");
        }
        s.push_str(msg);
        s
    }

    /// Write one line at `level` for the entry point `function`; `at` is the library source
    /// line that logged (shown with `trace_filename` / `trace_linenumber`).
    pub(crate) fn write(&self, level: u8, function: &str, msg: &str, at: &Location<'_>) {
        let body = self.decorate(level, function, msg, at);
        let stamped = || {
            if self.cfg.trace_timestamp {
                format!("{} {body}\n", timestamp(std::time::SystemTime::now()))
            } else {
                format!("{body}\n")
            }
        };
        if level <= self.cfg.trace_level {
            if let Some(f) = &self.file {
                // One write per line: with O_APPEND, lines of several processes do not mix.
                let _ = (&*f).write_all(stamped().as_bytes());
            }
            if let Some(s) = &self.syslog {
                let pri = u16::from(LOCAL1) * 8 + u16::from(level.min(DEBUG));
                let line = format!("<{pri}>{TAG}[{}]: {body}", std::process::id());
                let _ = s.send_to(line.as_bytes(), SYSLOG_PATH);
            }
        }
        if self.stderr {
            let _ = std::io::stderr().write_all(format!("{TAG}: {}", stamped()).as_bytes());
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) for `t`.
fn timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The level a failed call is logged at, by its return value.
pub(crate) fn level_of(rv: u64) -> u8 {
    const CKR_GENERAL_ERROR: u64 = 0x05;
    const CKR_FUNCTION_FAILED: u64 = 0x06;
    const CKR_DEVICE_ERROR: u64 = 0x30;
    const CKR_DEVICE_MEMORY: u64 = 0x31;
    const CKR_DEVICE_REMOVED: u64 = 0x32;
    const CKR_TOKEN_NOT_PRESENT: u64 = 0xE0;
    const CKR_BUFFER_TOO_SMALL: u64 = 0x150;
    match rv {
        CKR_GENERAL_ERROR
        | CKR_FUNCTION_FAILED
        | CKR_DEVICE_ERROR
        | CKR_DEVICE_MEMORY
        | CKR_DEVICE_REMOVED
        | CKR_TOKEN_NOT_PRESENT => ERR,
        CKR_BUFFER_TOO_SMALL => DEBUG,
        _ => NOTICE,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let t = |s: u64| timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(t(1_795_398_645), "2026-11-23T01:50:45.000Z");
    }

    #[test]
    fn file_lines_follow_level_and_decorations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p11.log");
        let cfg = LogConfig {
            file: Some(path.to_str().unwrap().to_owned()),
            write_log_file: true,
            trace_pid: true,
            trace_function: true,
            trace_level: NOTICE,
            ..LogConfig::default()
        };
        let l = Logger::open(&cfg, false).unwrap();
        let at = Location::caller();
        l.write(ERR, "C_Sign", "CK_RV 0x00000032: gone", at);
        assert!(!l.wants(DEBUG));
        l.write(DEBUG, "C_Sign", "not written", at);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "[{}] ERR C_Sign: CK_RV 0x00000032: gone\n",
                std::process::id()
            )
        );
    }

    #[test]
    fn nothing_configured_means_no_logger() {
        assert!(Logger::open(&LogConfig::default(), false).is_none());
        let no_file = LogConfig {
            write_log_file: true,
            ..LogConfig::default()
        };
        assert!(Logger::open(&no_file, false).is_none());
    }

    #[test]
    fn device_errors_are_errors_and_the_size_idiom_is_debug() {
        assert_eq!(level_of(0x32), ERR);
        assert_eq!(level_of(0x150), DEBUG);
        assert_eq!(level_of(0xA0), NOTICE);
    }
}
