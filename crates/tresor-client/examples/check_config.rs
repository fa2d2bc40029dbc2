//! Checks a `primus.cfg`: `cargo run -p tresor-client --example check_config [path]`.
//! Without a path, the file is found by the usual lookup order.

use std::path::PathBuf;
use std::process::ExitCode;

use tresor_client::config::lookup::{find_config, ProcessEnvironment};
use tresor_client::config::primus::PrimusConfig;

fn main() -> ExitCode {
    let path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => match find_config(&ProcessEnvironment) {
            Ok(found) => {
                println!("using {found}");
                found.path
            }
            Err(e) => {
                eprintln!("error {}: {e}", e.vendor_code());
                return ExitCode::FAILURE;
            }
        },
    };
    match PrimusConfig::load(&path) {
        Ok(config) => {
            for slot in config.slots() {
                let targets: Vec<String> = slot
                    .targets
                    .iter()
                    .map(|t| format!("{}:{} (priority {})", t.host, t.port, t.priority))
                    .collect();
                println!(
                    "slot {} user '{}': {}",
                    slot.id,
                    slot.user_name,
                    targets.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error {}:\n{e}", e.vendor_code());
            ExitCode::FAILURE
        }
    }
}
