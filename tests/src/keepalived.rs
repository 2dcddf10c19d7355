//! Real peers for the interop tests: Debian's keepalived running VRRP in a
//! lab namespace, and tshark decoding what lbd puts on the wire.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lb_lab::netns::Netns;

/// keepalived (VRRP only) in a namespace, stopped with SIGTERM on drop.
pub struct Keepalived {
    child: Child,
    log: PathBuf,
}

/// Panics, naming the fix, when a tool the interop tests need is missing.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "{tool} is missing: the interop tests need Debian's {tool} package \
         (`cargo xtask setup` installs it, or apt-get install -y {tool})"
    );
}

impl Keepalived {
    /// Writes `conf` into `dir` and starts `keepalived -P -n -l -D` in `ns`
    /// with pid files of its own, so several can run side by side.
    pub fn start(ns: &Netns, dir: &Path, conf: &str) -> Result<Self> {
        require_tool("keepalived");
        let path = dir.join("keepalived.conf");
        std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        let log = dir.join("keepalived.log");
        let file = std::fs::File::create(&log)?;
        let pid = |name: &str| dir.join(name).into_os_string();
        let child = ns
            .command("keepalived")
            .args(["-P", "-n", "-l", "-D", "-G", "-f"])
            .arg(&path)
            .arg("-p")
            .arg(pid("keepalived.pid"))
            .arg("-r")
            .arg(pid("vrrp.pid"))
            .arg("-c")
            .arg(pid("checkers.pid"))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            // Its own group: the VRRP child goes with the parent on drop.
            .process_group(0)
            .spawn()
            .context("while starting keepalived")?;
        Ok(Self { child, log })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait: keepalived's VRRP child sends priority 0 and
    /// removes its addresses.
    pub fn stop(&mut self) -> Result<()> {
        let pid = i32::try_from(self.child.id())?;
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "keepalived did not stop within 10 s; its log:\n{}",
            self.log()
        )
    }
}

impl Keepalived {
    /// The keepalived parent's pid (its VRRP child shares its group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to keepalived's whole process group (the parent and
    /// its VRRP child: what a crash or an OOM kill of the service does with
    /// SIGKILL) and waits up to 10 s for the parent to exit.
    pub fn signal_group(&mut self, signal: i32) -> Result<()> {
        let pid = i32::try_from(self.child.id())?;
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(-pid, signal) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!(
            "keepalived did not exit within 10 s of signal {signal}; its log:\n{}",
            self.log()
        )
    }
}

/// A keepalived.conf with one VRRP instance per spec, multicast adverts,
/// the same settings lbd gets from [`crate::vrrp_lab::node_config`]
/// (`extra` lines are lbd YAML and are not carried over).
pub fn instances_conf(instances: &[crate::vrrp_lab::InstanceSpec]) -> String {
    use std::fmt::Write as _;
    let mut conf = String::from("global_defs {\n  router_id lbd_bench\n  script_user root\n}\n");
    for i in instances {
        let _ = write!(
            conf,
            "vrrp_instance {} {{\n  state BACKUP\n  interface {}\n  virtual_router_id {}\n  \
             priority {}\n  advert_int {}\n  version {}\n  garp_master_delay 1\n  \
             virtual_ipaddress {{\n    {}/{}\n  }}\n}}\n",
            i.name, i.interface, i.vrid, i.priority, i.advert_int, i.version, i.vip, i.prefix_len
        );
    }
    conf
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.stop();
        }
        if let Ok(None) = self.child.try_wait()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// tshark capturing VRRP in a namespace, printing chosen fields per packet.
pub struct Tshark {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

/// One decoded VRRP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub src: String,
    pub dst: String,
    pub ttl: String,
    pub version: String,
    pub priority: String,
    /// tshark's `vrrp.checksum.status`: 1 is good.
    pub checksum_status: String,
    pub auth_type: String,
}

impl Tshark {
    /// Captures IP protocol 112 from `src` on `interface` in `ns`, writing
    /// its decode into `dir`. Waits until tshark is capturing.
    pub fn start(ns: &Netns, interface: &str, src: &str, dir: &Path) -> Result<Self> {
        require_tool("tshark");
        let out = dir.join("tshark.out");
        let err = dir.join("tshark.err");
        let child = ns
            .command("tshark")
            .args(["-n", "-l", "-i", interface, "-f"])
            .arg(format!("ip proto 112 and src host {src}"))
            .args(["-T", "fields", "-E", "separator=,"])
            .args(
                [
                    "ip.src",
                    "ip.dst",
                    "ip.ttl",
                    "vrrp.version",
                    "vrrp.prio",
                    "vrrp.checksum.status",
                    "vrrp.auth_type",
                ]
                .iter()
                .flat_map(|f| ["-e", f]),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .process_group(0)
            .spawn()
            .context("while starting tshark")?;
        let tshark = Self { child, out, err };
        // tshark says "Capturing on 'eth0'" once the capture runs.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !std::fs::read_to_string(&tshark.err)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            if Instant::now() > deadline {
                bail!(
                    "tshark did not start capturing within 15 s: {}",
                    std::fs::read_to_string(&tshark.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(tshark)
    }

    /// Waits up to `timeout` until a decoded packet satisfies `want`
    /// (tshark prints a moment after the packet went by).
    pub fn wait_for(&self, timeout: Duration, want: impl Fn(&Decoded) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if parse(&text).iter().any(&want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stops the capture and returns every packet it decoded.
    pub fn finish(mut self) -> Result<Vec<Decoded>> {
        // SIGINT lets tshark flush its output.
        let pid = i32::try_from(self.child.id())?;
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("tshark did not stop within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.out)?;
        Ok(parse(&text))
    }
}

/// tshark's comma-separated field lines.
fn parse(text: &str) -> Vec<Decoded> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_owned();
            Decoded {
                src: get(0),
                dst: get(1),
                ttl: get(2),
                version: get(3),
                priority: get(4),
                checksum_status: get(5),
                auth_type: get(6),
            }
        })
        .collect()
}

impl Drop for Tshark {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}
