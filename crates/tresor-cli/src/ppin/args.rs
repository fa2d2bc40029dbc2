//! Command line of `ppin` (the Securosys option letters, parsed by hand: `-a -e USER [SETUP
//! [PKCS11]]` takes optional positional values).

use std::path::PathBuf;

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Help,
    Version,
    List,
    Add,
    Update,
    Remove,
    ProxyAdd,
    ProxyRemove,
    Test,
    FetchLog,
    Fortinet,
}

/// The parsed command line.
#[derive(Debug, Default)]
pub struct Args {
    pub action: Option<Action>,
    pub config: Option<PathBuf>,
    pub secrets: Option<PathBuf>,
    /// `-e USER` or `--user USER`.
    pub user: Option<String>,
    /// `--hsm hsmX|host`.
    pub hsm: Option<String>,
    /// `--slot slotN`.
    pub slot: Option<String>,
    /// `--slotid N`.
    pub slot_id: Option<u32>,
    /// Positional values after the options (passwords given on the command line).
    pub values: Vec<String>,
}

pub const USAGE: &str = "\
Usage: ppin [-c <cfg>] [-s <secrets>] <action>

Actions:
  -h, --help                       this help
  -v, --version                    version
  -l                               list the configured users and whether their secret is stored
  -a -e <user> [<setup pwd> <pkcs11 pwd>]
                                   exchange the setup password for a permanent secret and store it
  -u -e <user> [<setup pwd> <pkcs11 pwd>]
                                   renew the permanent secret with a new setup password
  -r -e <user>                     remove the user's permanent secret
  -p -e <svcuser> [<pwd>]          store the service (proxy) user's password (needed before -a)
  -x -e <svcuser>                  remove the service (proxy) user's password
  -t, --test [--user <user>] [--hsm <hsmX|host>] [--slot <slotN>] [--slotid <N>]
                                   connect and log in to every configured slot

Options:
  -c <cfg>                         configuration file (else $TRESOR_PKCS11_CONF,
                                   $SECUROSYS_PKCS11_CONF, /etc/primus/primus.cfg,
                                   /usr/local/primus/etc/primus.cfg)
  -s <secrets>                     secrets file (else $TRESOR_SECRETS_CONF,
                                   $SECUROSYS_SECRETS_CONF, /etc/primus/.secrets.cfg,
                                   /usr/local/primus/etc/.secrets.cfg)
  --                               end of options: the values after it may start with '-'
Passwords not given on the command line are asked for without echo.";

fn value(it: &mut std::vec::IntoIter<String>, option: &str) -> Result<String, String> {
    match it.next() {
        Some(v) if !v.starts_with('-') || v.len() == 1 => Ok(v),
        _ => Err(format!("option '{option}' needs a value")),
    }
}

fn set_action(args: &mut Args, action: Action, option: &str) -> Result<(), String> {
    match args.action {
        Some(a) if a != action => Err(format!(
            "option '{option}' cannot be combined with another action"
        )),
        _ => {
            args.action = Some(action);
            Ok(())
        }
    }
}

/// Parses the arguments (without the program name).
pub fn parse(raw: Vec<String>) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            // Everything after `--` is a value, even if it starts with '-' (a password can).
            args.values.extend(it.by_ref());
            break;
        }
        let action = match a.as_str() {
            "-h" | "--help" => Some(Action::Help),
            "-v" | "--version" => Some(Action::Version),
            "-l" | "--list" => Some(Action::List),
            "-a" => Some(Action::Add),
            "-u" => Some(Action::Update),
            "-r" => Some(Action::Remove),
            "-p" => Some(Action::ProxyAdd),
            "-x" => Some(Action::ProxyRemove),
            "-t" | "--test" => Some(Action::Test),
            "--fetchlog" => Some(Action::FetchLog),
            "--fortinet" => Some(Action::Fortinet),
            _ => None,
        };
        if let Some(action) = action {
            set_action(&mut args, action, &a)?;
            continue;
        }
        match a.as_str() {
            "-c" => args.config = Some(PathBuf::from(value(&mut it, &a)?)),
            "-s" => args.secrets = Some(PathBuf::from(value(&mut it, &a)?)),
            "-e" | "--user" => args.user = Some(value(&mut it, &a)?),
            "--hsm" => args.hsm = Some(value(&mut it, &a)?),
            "--slot" => args.slot = Some(value(&mut it, &a)?),
            "--slotid" => {
                let v = value(&mut it, &a)?;
                args.slot_id = Some(
                    v.parse()
                        .map_err(|_| format!("'--slotid' needs a number, not '{v}'"))?,
                );
            }
            // Options of the unsupported actions: accepted, ignored.
            "--since" | "--out" | "--proxyuser" | "--proxypwd" => {
                let _ = value(&mut it, &a)?;
            }
            "--reverse" => {}
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option '{s}' (see 'ppin -h')"))
            }
            _ => args.values.push(a),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_after_double_dash_may_start_with_a_dash() {
        let a = parse(v(&["-a", "-e", "dev", "--", "AAAAA-BBBBB", "-pin-"])).unwrap_or_default();
        assert_eq!(a.action, Some(Action::Add));
        assert_eq!(a.values, v(&["AAAAA-BBBBB", "-pin-"]));
        assert!(parse(v(&["-a", "-e", "dev", "-pin-"])).is_err());
    }
}
