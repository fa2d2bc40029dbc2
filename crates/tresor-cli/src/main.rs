//! `tresor`: the Tresor HSM service binary.
//!
//! Commands: `init`, `unseal`, `dev` (everything in one process), `hsm` (an HSM node),
//! `gateway`, `rest`, `cert gateway`, `admin`, `audit verify`, `attest verify` and `bench`.

#![forbid(unsafe_code)]

mod admin;
mod bench;
mod bench_floor;
mod bench_net;
mod cmd;
mod rest;
mod serve;
mod shares_io;

use clap::{Parser, Subcommand};

/// Tresor: an open-source network HSM.
#[derive(Parser, Debug)]
#[command(name = "tresor", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new cluster on an empty store: a master key split into N shares (threshold M),
    /// the cluster root certificate and the node certificate. Prints or writes the shares;
    /// they are never stored.
    Init(cmd::InitArgs),
    /// Check M shares against a store and unseal it: each share is checked as it is entered,
    /// and a wrong, corrupted or foreign share is named. Reports the store's partitions.
    Unseal(cmd::UnsealArgs),
    /// Run everything in one process on an embedded store for a first try: initialise (with a
    /// single local share) if needed, unseal, create a first partition, print where everything
    /// is, and serve until Ctrl-C.
    Dev(cmd::DevArgs),
    /// Run an HSM node: unseal with the shares, accept end-to-end sessions from gateways,
    /// serve health and Prometheus metrics.
    Hsm(serve::HsmArgs),
    /// Run a gateway: TLS from clients, address allowlist and service-user login against the
    /// store's directory, healthy-node selection, then byte copying. Holds no key material.
    Gateway(serve::GatewayArgs),
    /// Run the REST API (Securosys TSB v1): HTTPS with JWT / API-key / mTLS authentication,
    /// reaching the HSM nodes through the client library. Holds no key material.
    Rest(rest::RestArgs),
    /// Certificates for the network faces.
    #[command(subcommand)]
    Cert(serve::CertCommand),
    /// Administration: partitions, services, credentials.
    #[command(subcommand)]
    Admin(cmd::AdminCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(cmd::AuditCommand),
    /// Attestation tools.
    #[command(subcommand)]
    Attest(cmd::AttestCommand),
    /// Benchmarks: the engine in-process next to the raw crypto libraries.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRESOR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = check_worker_threads(std::env::var_os(WORKER_THREADS_VAR)) {
        eprintln!("tresor: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tresor: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Init(a) => cmd::init(a).await,
            Command::Unseal(a) => cmd::unseal(a).await,
            Command::Dev(a) => cmd::dev(a).await,
            Command::Hsm(a) => serve::hsm(a).await,
            Command::Gateway(a) => serve::gateway(a).await,
            Command::Rest(a) => rest::rest(a).await,
            Command::Cert(c) => serve::cert(c).await,
            Command::Admin(c) => cmd::admin(c).await,
            Command::Audit(c) => cmd::audit(c).await,
            Command::Attest(c) => cmd::attest(c).await,
            Command::Bench(c) => bench::run(c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tresor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Tokio sizes every runtime built here from this variable (default: one worker per core); an
/// operator may set it (see docs/network.md, "Worker threads").
const WORKER_THREADS_VAR: &str = "TOKIO_WORKER_THREADS";

/// Tokio panics on a value that is not a positive whole number; say what is wrong instead.
fn check_worker_threads(value: Option<std::ffi::OsString>) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    match value.to_str().map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Ok(()),
        _ => Err(format!(
            "{WORKER_THREADS_VAR}={value:?}: expected the number of worker threads (a whole number of at least 1)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::check_worker_threads;

    #[test]
    fn worker_threads_setting() {
        assert!(check_worker_threads(None).is_ok());
        assert!(check_worker_threads(Some("1".into())).is_ok());
        assert!(check_worker_threads(Some("16".into())).is_ok());
        assert!(check_worker_threads(Some("+2".into())).is_ok());
        for bad in ["0", "", "two", "-1", " 2", "2.5"] {
            let e = check_worker_threads(Some(bad.into())).unwrap_err();
            assert!(e.contains("TOKIO_WORKER_THREADS"), "{e}");
        }
    }
}
