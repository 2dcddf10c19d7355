//! `lbd`: the balancer daemon and its tools.

mod check;
mod import;
mod run;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lbd",
    version,
    about = "XDP L4 load balancer with VRRP high availability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the balancer: load and attach the XDP program, serve until stopped.
    Run(run::RunArgs),
    /// Validate a configuration file and list every problem (like `keepalived -t`).
    Check(check::CheckArgs),
    /// Convert a keepalived.conf (following `include`) to lbd YAML on stdout.
    ImportKeepalived {
        /// The keepalived.conf to convert.
        file: PathBuf,
    },
    /// Convert an ldirectord.cf to lbd YAML on stdout.
    ImportLdirectord {
        /// The ldirectord.cf to convert.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&args),
        Command::ImportKeepalived { file } => import::import_keepalived(&file),
        Command::ImportLdirectord { file } => import::import_ldirectord(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lbd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use std::io::IsTerminal as _;

    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_env("LBD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a terminal; journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
