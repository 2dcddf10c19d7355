//! `lbd`: the balancer daemon and its tools.

mod check;
mod cleanup;
mod ctl;
mod import;
mod man;
mod run;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory as _, Parser, Subcommand};
use lb_userspace::daemon::protocol::Request;

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
    /// Run the balancer: load and attach the XDP program (adopting the one
    /// an earlier lbd pinned), serve until stopped.
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
    /// Show the running daemon's services (like `ipvsadm -Ln`) and VRRP instances.
    Status(ctl::StatusArgs),
    /// A live view of the running daemon: services, real servers (health,
    /// weight, connections, rates) and VRRP instances; `q` quits.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        #[command(flatten)]
        socket: ctl::SocketArg,
    },
    /// Make the running daemon re-read its configuration (as SIGHUP does);
    /// exits non-zero with the reason when the new file is refused.
    Reload(ctl::SocketArg),
    /// Manual failover: a MASTER instance hands over and stays BACKUP
    /// until elected again.
    Failover {
        /// The VRRP instance.
        instance: String,
        #[command(flatten)]
        socket: ctl::SocketArg,
    },
    /// Maintenance: `on` gives up MASTER and stays BACKUP until `off`
    /// (one instance, or every instance when none is named).
    Maintenance {
        switch: ctl::Switch,
        /// The VRRP instance (default: all).
        instance: Option<String>,
        #[command(flatten)]
        socket: ctl::SocketArg,
    },
    /// Remove what a stopped lbd left behind: its marked virtual addresses,
    /// IPVS services, and pinned XDP program and maps (which detaches it),
    /// except while systemd restarts the unit (systemd's ExecStopPost).
    Cleanup(cleanup::CleanupArgs),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (lbd(8), lbd-SUBCOMMAND(8), lbd.yaml(5)) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&args),
        Command::ImportKeepalived { file } => import::import_keepalived(&file),
        Command::ImportLdirectord { file } => import::import_ldirectord(&file),
        Command::Status(args) => ctl::status(&args),
        Command::Top { interval, socket } => ctl::top(&socket, interval),
        Command::Reload(socket) => ctl::send(&socket, &Request::Reload),
        Command::Failover { instance, socket } => {
            ctl::send(&socket, &Request::Failover { instance })
        }
        Command::Maintenance {
            switch,
            instance,
            socket,
        } => ctl::send(
            &socket,
            &Request::Maintenance {
                instance,
                on: matches!(switch, ctl::Switch::On),
            },
        ),
        Command::Cleanup(args) => cleanup::cleanup(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lbd", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => man::write_all(Cli::command(), &dir),
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
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a terminal; journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    // Under systemd, journald stamps every line itself, and takes each
    // line's priority from a `<N>` prefix (see lb_userspace::log_format).
    if stderr_is_journal() {
        let format = fmt::format().with_ansi(false).without_time();
        builder
            .event_format(lb_userspace::log_format::JournalPriority(format))
            .init();
    } else {
        builder.init();
    }
}

/// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM`
/// names its device and inode; a child of a service inherits the variable
/// with another stderr, so the variable alone is not enough).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived reads /etc/keepalived/keepalived.conf unless told
    /// otherwise: `lbd check`, `run` and `cleanup` read the packaged path
    /// the same way.
    #[test]
    fn config_defaults_to_the_packaged_path() {
        let default = PathBuf::from("/etc/lbd/lbd.yaml");
        let parse = |args: &[&str]| {
            Cli::try_parse_from(args)
                .unwrap_or_else(|e| panic!("`{}` refused: {e}", args.join(" ")))
        };
        match parse(&["lbd", "check"]).command {
            Command::Check(args) => assert_eq!(args.config, default),
            _ => unreachable!("parsed as check"),
        }
        match parse(&["lbd", "run"]).command {
            Command::Run(args) => assert_eq!(args.config, default),
            _ => unreachable!("parsed as run"),
        }
        match parse(&["lbd", "cleanup"]).command {
            Command::Cleanup(args) => assert_eq!(args.config, default),
            _ => unreachable!("parsed as cleanup"),
        }
        match parse(&["lbd", "check", "-c", "/tmp/x.yaml"]).command {
            Command::Check(args) => assert_eq!(args.config, PathBuf::from("/tmp/x.yaml")),
            _ => unreachable!("parsed as check"),
        }
    }
}
