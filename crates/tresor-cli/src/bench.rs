//! `tresor bench`: placeholder replaced below.
use clap::Subcommand;
use std::process::ExitCode;

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The engine in-process next to the raw crypto libraries.
    Engine,
}

pub async fn run(_c: BenchCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the engine benchmark is not built yet")
}
