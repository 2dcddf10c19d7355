//! A namespace with fixed routes and permanent neighbours in which the XDP
//! program's FIB lookups give known answers, so NAT fixtures can assert
//! every byte of a forwarded frame (MAC addresses included).
//!
//! ```text
//!   clients 10.0.0.0/24, fd00::/64  -- cl0 [LB_CLIENT_MAC]
//!   backends 10.1.0.0/24, fd01::/64 -- be0 [LB_BACKEND_MAC]
//! ```

use anyhow::{Context, Result};
use lb_lab::netns::{Netns, veth};

pub const LB_CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
pub const LB_BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0c, 0x01];
/// Backends 1 and 2 have permanent neighbour entries with these MACs;
/// backend 9 has none (its MAC is not known yet).
pub const BACKEND1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];
pub const BACKEND2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x02];

/// Addresses the lab routes: a client, the VIPs, and backend 1 (resolved,
/// [`BACKEND1_MAC`]), in both families.
pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
pub const VIP: [u8; 4] = [10, 0, 0, 100];
pub const BACKEND1: [u8; 4] = [10, 1, 0, 1];
pub const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const VIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
pub const BACKEND6: [u8; 16] = [0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// A request's bytes, for frames that carry data.
pub const PAYLOAD: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// Port 80 of `vip` over `protocol`, round robin to `backend`:8080.
pub fn one_backend_service(
    vip: impl Into<std::net::IpAddr>,
    protocol: lb_userspace::dataplane::L4Protocol,
    backend: impl Into<std::net::IpAddr>,
) -> lb_userspace::dataplane::ServiceSpec {
    lb_userspace::dataplane::ServiceSpec {
        vip: vip.into(),
        port: 80,
        protocol,
        scheduler: lb_userspace::dataplane::SchedulerKind::RoundRobin,
        backends: vec![lb_userspace::dataplane::BackendSpec {
            addr: backend.into(),
            port: 8080,
            weight: 1,
        }],
        sorry: None,
        removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
    }
}

/// The namespace and the interface indexes inside it.
pub struct NatLab {
    pub ns: Netns,
    pub client_if: u32,
    pub backend_if: u32,
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl NatLab {
    pub fn new() -> Result<Self> {
        let ns = Netns::new("natfx")?;
        veth(&ns, "cl0", &ns, "cl0p")?;
        veth(&ns, "be0", &ns, "be0p")?;
        ns.ip(&["link", "set", "cl0", "address", &mac(LB_CLIENT_MAC)])?;
        ns.ip(&["link", "set", "be0", "address", &mac(LB_BACKEND_MAC)])?;
        for (dev, v4, v6) in [
            ("cl0", "10.0.0.254/24", "fd00::fe/64"),
            ("be0", "10.1.0.254/24", "fd01::fe/64"),
        ] {
            ns.ip(&["addr", "add", v4, "dev", dev])?;
            ns.ip(&["addr", "add", v6, "dev", dev, "nodad"])?;
        }
        let neighbours = [
            ("10.0.0.1", CLIENT_MAC, "cl0"),
            ("fd00::1", CLIENT_MAC, "cl0"),
            ("10.1.0.1", BACKEND1_MAC, "be0"),
            ("10.1.0.2", BACKEND2_MAC, "be0"),
            ("fd01::1", BACKEND1_MAC, "be0"),
            ("fd01::2", BACKEND2_MAC, "be0"),
        ];
        for (addr, m, dev) in neighbours {
            ns.ip(&[
                "neigh",
                "replace",
                addr,
                "lladdr",
                &mac(m),
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
        // bpf_fib_lookup answers "forwarding disabled" unless it is on.
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        let (client_if, backend_if) = ns.run(|| (ifindex("cl0"), ifindex("be0")))?;
        Ok(Self {
            ns,
            client_if: client_if.context("cl0 has no index")?,
            backend_if: backend_if.context("be0 has no index")?,
        })
    }
}

/// The index of `name` in the calling thread's namespace.
fn ifindex(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// The program loaded with services installed through the real
/// `XdpDataplane`, run inside a [`NatLab`].
pub struct NatFixture {
    pub lab: NatLab,
    pub dp: lb_userspace::xdp::XdpDataplane,
}

impl NatFixture {
    /// Loads the program and installs `services`. Panics (the test's
    /// failure) when any step fails.
    /// TCP and UDP on port 80 of [`VIP`] and TCP on port 80 of [`VIP6`],
    /// each to backend 1 port 8080.
    pub fn vips_80() -> Self {
        use lb_userspace::dataplane::L4Protocol;
        Self::new(vec![
            one_backend_service(VIP, L4Protocol::Tcp, BACKEND1),
            one_backend_service(VIP, L4Protocol::Udp, BACKEND1),
            one_backend_service(VIP6, L4Protocol::Tcp, BACKEND6),
        ])
    }

    pub fn new(services: Vec<lb_userspace::dataplane::ServiceSpec>) -> Self {
        use lb_userspace::dataplane::{Dataplane, DesiredState, Timeouts};
        lb_lab::privileges::require_root("loading the XDP program in a namespace");
        let lab = NatLab::new().expect("the fixture namespace");
        let program = lb_userspace::xdp::XdpProgram::load()
            .expect("the XDP program loads and passes the verifier");
        let mut dp = lb_userspace::xdp::XdpDataplane::new(program);
        dp.apply(&DesiredState {
            services,
            timeouts: Timeouts::default(),
        })
        .expect("services install");
        Self { lab, dp }
    }

    /// Runs `frame` as received on interface `ingress`.
    pub fn run(&self, frame: &[u8], ingress: u32) -> crate::fixture::Verdict {
        let xdp = self.dp.program().program().expect("program");
        self.lab
            .ns
            .run(|| crate::fixture::run_xdp_from(xdp, frame, Some(ingress)))
            .expect("namespace thread")
            .expect("BPF_PROG_TEST_RUN runs")
    }

    /// `frame` arrives on the client side.
    pub fn client_sends(&self, frame: &[u8]) -> crate::fixture::Verdict {
        self.run(frame, self.lab.client_if)
    }

    /// `frame` arrives on the backend side.
    pub fn backend_sends(&self, frame: &[u8]) -> crate::fixture::Verdict {
        self.run(frame, self.lab.backend_if)
    }

    pub fn counter(&self, c: lb_common::counters::Counter) -> u64 {
        self.dp.program().counters().expect("counters").get(c)
    }
}
