//! The commands that talk to a running `lbd run` over its control socket:
//! `status`, `reload`, `failover`, `maintenance`.

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::{Result, bail};
use lb_userspace::{
    daemon::{
        DEFAULT_SOCKET, connections, control,
        protocol::{Request, Response},
        rate_table::{self, Figures},
        report_filter, table,
    },
    dataplane::{FlowQuery, flows::AddressFilter},
};

#[derive(clap::Args)]
pub(crate) struct SocketArg {
    /// The running daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
}

#[derive(clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "ipvsadm's flags, one field each, as clap parses them"
)]
pub(crate) struct StatusArgs {
    /// The whole report as JSON, for scripts (with -c: an array of flows).
    #[arg(long)]
    pub(crate) json: bool,
    /// The tracked flows, like `ipvsadm -Lnc`: protocol, expiry, state,
    /// client, virtual address, real server.
    #[arg(short = 'c', long, conflicts_with_all = ["rate", "stats"])]
    pub(crate) connections: bool,
    /// Rates like `ipvsadm -Ln --rate` (CPS, InPPS, OutPPS, InBPS, OutBPS),
    /// averaged by the daemon over the window it names.
    #[arg(long, conflicts_with = "stats")]
    pub(crate) rate: bool,
    /// Totals like `ipvsadm -Ln --stats` (Conns, InPkts, OutPkts, InBytes, OutBytes).
    #[arg(long)]
    pub(crate) stats: bool,
    /// Sort services by protocol, address, port and real servers by
    /// address, port (`ipvsadm --sort`).
    #[arg(long)]
    pub(crate) sort: bool,
    /// Exact numbers instead of K, M, G (`ipvsadm --exact`).
    #[arg(long)]
    pub(crate) exact: bool,
    /// Only this TCP service (`ipvsadm -t`; the port may be left out).
    #[arg(
        short = 't',
        long = "tcp-service",
        value_name = "VIP:PORT",
        conflicts_with = "udp_service"
    )]
    pub(crate) tcp_service: Option<AddressFilter>,
    /// Only this UDP service (`ipvsadm -u`).
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    pub(crate) udp_service: Option<AddressFilter>,
    /// With -c: only flows to this real server (address, or address:port).
    #[arg(long, value_name = "ADDRESS[:PORT]", requires = "connections")]
    pub(crate) real_server: Option<AddressFilter>,
    /// With -c: only flows from this client (address, or address:port).
    #[arg(long, value_name = "ADDRESS[:PORT]", requires = "connections")]
    pub(crate) client: Option<AddressFilter>,
    #[command(flatten)]
    pub(crate) socket: SocketArg,
}

impl StatusArgs {
    /// The service `-t`/`-u` names, with its protocol.
    fn service(&self) -> Option<(&'static str, AddressFilter)> {
        match (self.tcp_service, self.udp_service) {
            (Some(t), _) => Some(("TCP", t)),
            (None, Some(u)) => Some(("UDP", u)),
            (None, None) => None,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

/// `lbd status`: the services like `ipvsadm -Ln`, then the instances.
pub(crate) fn status(args: &StatusArgs) -> Result<ExitCode> {
    if args.connections {
        return connections(args);
    }
    match control::request(&args.socket.socket, &Request::Status)? {
        Response::Status(mut report) => {
            if let Some((protocol, service)) = args.service() {
                report_filter::only_service(&mut report, protocol, &service);
            }
            if args.sort {
                report_filter::sort(&mut report);
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if args.rate {
                print!("{}", rate_table::render(&report, Figures::Rate, args.exact));
            } else if args.stats {
                print!(
                    "{}",
                    rate_table::render(&report, Figures::Stats, args.exact)
                );
            } else {
                print!("{}", table::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        other => answer(other),
    }
}

/// `lbd status -c`: the flows as the daemon streams them, printed as they
/// come (a full table never sits in memory, here or in the daemon).
fn connections(args: &StatusArgs) -> Result<ExitCode> {
    let service = args.service();
    let query = FlowQuery {
        protocol: service.map(|(p, _)| p.to_owned()),
        service: service.map(|(_, s)| s),
        real_server: args.real_server,
        client: args.client,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut first = true;
    let mut outcome: Result<ExitCode> = Ok(ExitCode::FAILURE);
    let mut write_error = None;
    if args.json {
        write!(out, "[")?;
    } else {
        write!(out, "{}", connections::heading())?;
    }
    control::request_stream(
        &args.socket.socket,
        &Request::Connections(query),
        &mut |response| {
            let written = match response {
                Response::Flows { flows } => flows.iter().try_for_each(|flow| {
                    if args.json {
                        let sep = if first { "\n" } else { ",\n" };
                        first = false;
                        let json = serde_json::to_string(flow).map_err(std::io::Error::other)?;
                        write!(out, "{sep}  {json}")
                    } else {
                        write!(out, "{}", connections::render_flow(flow))
                    }
                }),
                Response::FlowsEnd(scan) => {
                    if scan.truncated {
                        eprintln!(
                            "lbd: the flow table changed while it was walked: {} flows were read, some may be missing",
                            scan.scanned
                        );
                    }
                    outcome = Ok(ExitCode::SUCCESS);
                    return false;
                }
                other => {
                    outcome = answer(other);
                    return false;
                }
            };
            match written {
                Ok(()) => true,
                // A closed pipe (`| head`) ends the listing quietly.
                Err(err) => {
                    write_error = Some(err);
                    false
                }
            }
        },
    )?;
    if let Some(err) = write_error {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(err.into());
    }
    if args.json {
        writeln!(out, "\n]")?;
    }
    out.flush()?;
    outcome
}

/// `lbd top`: the live view until `q`.
pub(crate) fn top(socket: &SocketArg, interval: f64) -> Result<ExitCode> {
    if !(0.1..=3600.0).contains(&interval) {
        bail!("--interval must be between 0.1 and 3600 seconds");
    }
    lb_userspace::top::run(&socket.socket, std::time::Duration::from_secs_f64(interval))?;
    Ok(ExitCode::SUCCESS)
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
        Response::Status(_) | Response::Flows { .. } | Response::FlowsEnd(_) => {
            bail!("lbd answered with something else than this request asks for")
        }
    }
}
