//! `lbd check`: validate a configuration like `keepalived -t`, listing
//! every problem rather than stopping at the first: the file's own
//! errors, then everything `lbd run` would refuse (`preflight`), in the
//! same words.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use lb_userspace::{
    config::{self, ConfigError, Diagnostic, Loaded},
    daemon::preflight,
};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = lb_userspace::defaults::CONFIG_FILE)]
    pub(crate) config: PathBuf,
}

pub(crate) fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    match config::load_file(&args.config) {
        Ok(loaded) => {
            // What `lbd run` would refuse, through the same code.
            let refusals = preflight::refusals(&loaded);
            let mut all = loaded.warnings.clone();
            all.extend(preflight::warnings(&loaded));
            if refusals.is_empty() {
                all.sort_by_key(|d| (d.line, d.column));
                print_all(&all);
                println!("{}", summary(&loaded));
                return Ok(ExitCode::SUCCESS);
            }
            all.extend(refusals);
            all.sort_by_key(|d| (d.line, d.column));
            Ok(failed(&all))
        }
        Err(ConfigError::Invalid { diagnostics }) => Ok(failed(&diagnostics)),
        Err(err @ ConfigError::Io { .. }) => {
            Err(err).with_context(|| format!("while checking {}", args.config.display()))
        }
    }
}

/// Prints every diagnostic and the counts; the exit status of a refusal.
fn failed(diagnostics: &[Diagnostic]) -> ExitCode {
    print_all(diagnostics);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    eprintln!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    ExitCode::FAILURE
}

fn print_all(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

fn summary(loaded: &Loaded) -> String {
    let config = &loaded.config;
    let real_servers: usize = config
        .virtual_servers
        .iter()
        .map(|vs| vs.real_servers.len())
        .sum();
    format!(
        "config OK: {}, {}, {}",
        plural(config.vrrp_instances.len(), "vrrp instance"),
        plural(config.virtual_servers.len(), "virtual server"),
        plural(real_servers, "real server"),
    )
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}
