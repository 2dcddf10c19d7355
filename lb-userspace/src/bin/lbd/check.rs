//! `lbd check`: validate a configuration (filled in by the configuration issue).
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub(crate) config: PathBuf,
}

pub(crate) fn check(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
