//! `lbd run`.
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub(crate) config: PathBuf,
}

pub(crate) fn run(_args: &RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
