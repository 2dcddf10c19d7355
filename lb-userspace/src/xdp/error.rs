use thiserror::Error;

/// What can go wrong loading, attaching or reading the XDP program.
#[derive(Debug, Error)]
pub enum XdpError {
    #[error("loading the XDP object into the kernel failed (is this root with BPF allowed?)")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the XDP object has no program named {0}")]
    MissingProgram(&'static str),
    #[error("the kernel verifier or loader rejected program {name}")]
    Program {
        name: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("interface {interface} does not exist")]
    UnknownInterface { interface: String },
    #[error("attaching XDP to {interface} failed in native mode ({native}) and in generic mode")]
    Attach {
        interface: String,
        native: String,
        #[source]
        generic: Box<aya::programs::ProgramError>,
    },
    #[error("attaching XDP to {interface} in {mode} mode failed")]
    AttachMode {
        interface: String,
        mode: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error(
        "setting net.ipv4.conf.{interface}.accept_local to 1 failed (translated replies to clients \
         not resolved yet would be dropped as martians)"
    )]
    AcceptLocal {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "attaching the TC egress program to {interface} failed (real servers on this host would \
         answer from their own address)"
    )]
    Egress {
        interface: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("the XDP object has no map named {0}")]
    MissingMap(&'static str),
    #[error(
        "pinning the XDP link of {interface} failed (pinning needs bpf_link for XDP: Linux 5.9 or later)"
    )]
    PinLink {
        interface: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Pins(#[from] super::pins::PinError),
    #[error(transparent)]
    Layout(#[from] super::pins::layout::LayoutError),
    #[error("reading map {map} failed")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// Why the XDP data plane could not read its maps (applying a state
/// fails with the planner's `PlanError` or the writer's `MapWriteError`).
#[derive(Debug, Error)]
pub enum XdpApplyError {
    #[error("the XDP object has no map named {0}")]
    MissingMap(&'static str),
    #[error("{operation} on map {map} failed")]
    Map {
        map: &'static str,
        operation: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("opening a second handle on map {map}")]
    Duplicate {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Program(#[from] XdpError),
}

impl From<XdpApplyError> for crate::dataplane::DataplaneError {
    fn from(err: XdpApplyError) -> Self {
        Self::new(err)
    }
}
