//! `ppin`: the Primus Permanent PIN tool, for Tresor. Exchanges a partition's setup password
//! for a permanent secret (a P-256 key registered with the HSM), manages the service users'
//! passwords in the secrets file, lists the configured users and tests the connections.

#![forbid(unsafe_code)]

mod actions;
mod args;

use std::process::ExitCode;

use args::Action;

/// The banner the Securosys tool prints first.
pub const BANNER: &str = "Primus Permanent PIN";

fn main() -> ExitCode {
    println!("{BANNER}");
    let args = match args::parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("ppin: {message}");
            return ExitCode::from(2);
        }
    };
    let Some(action) = args.action else {
        eprintln!("ppin: no action given\n\n{}", args::USAGE);
        return ExitCode::from(2);
    };
    let result = match action {
        Action::Help => {
            println!("{}", args::USAGE);
            Ok(())
        }
        Action::Version => {
            println!("Primus HSM PKCS#11 2.2.4");
            println!("Tresor {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Action::FetchLog => Err(actions::Failure::Message(
            "--fetchlog is not supported by Tresor (use 'tresor audit' on the cluster)".into(),
        )),
        Action::Fortinet => Err(actions::Failure::Message(
            "--fortinet is not supported by Tresor".into(),
        )),
        Action::List => actions::list(&args),
        Action::Add => actions::add(&args, false),
        Action::Update => actions::add(&args, true),
        Action::Remove => actions::remove(&args),
        Action::ProxyAdd => actions::proxy_add(&args),
        Action::ProxyRemove => actions::proxy_remove(&args),
        Action::Test => actions::test(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(actions::Failure::Client(e)) => {
            eprintln!("ppin: error {}: {e}", e.vendor_code());
            ExitCode::FAILURE
        }
        Err(actions::Failure::Message(m)) => {
            eprintln!("ppin: {m}");
            ExitCode::FAILURE
        }
        Err(actions::Failure::Silent) => ExitCode::FAILURE,
    }
}
