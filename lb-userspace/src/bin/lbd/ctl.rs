//! The commands that talk to a running `lbd run` over its control socket:
//! `status`, `reload`, `failover`, `maintenance`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use lb_userspace::daemon::{
    DEFAULT_SOCKET, control,
    protocol::{Request, Response},
    table,
};

#[derive(clap::Args)]
pub(crate) struct SocketArg {
    /// The running daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// The whole report as JSON, for scripts.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) socket: SocketArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

/// `lbd status`: the services like `ipvsadm -Ln`, then the instances.
pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode> {
    match control::request(&args.socket.socket, &Request::Status)? {
        Response::Status(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        other => answer(other),
    }
}

/// Sends `request`; prints the daemon's answer; non-zero exit on an error.
pub(crate) fn send(socket: &SocketArg, request: &Request) -> Result<ExitCode> {
    answer(control::request(&socket.socket, request)?)
}

fn answer(response: Response) -> Result<ExitCode> {
    match response {
        Response::Done { message } => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Response::Error { message } => {
            eprintln!("lbd: {message}");
            Ok(ExitCode::FAILURE)
        }
        Response::Status(_) => bail!("lbd answered with a status report to another request"),
    }
}
