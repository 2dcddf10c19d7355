//! The XDP program's state pinned on bpffs, so that a restarted or
//! upgraded lbd adopts it instead of starting over:
//!
//! ```text
//! /sys/fs/bpf/lbd/<instance>/
//!   CONNTRACK, SERVICES, ...   the maps (see `PINNED_MAPS`)
//!   layout -> "v1;CONNTRACK:9:40:72:262144:0;..."   symlink: their layout
//!   link_<interface>           the XDP link attaching the program there
//!   mode_<interface> -> native                      symlink: its mode
//! ```
//!
//! bpffs refuses names with a dot (EPERM), so none is used: an instance
//! name has them turned into `_`, an interface name (`eth0.100`) escaped.
//!
//! A pinned link keeps the program attached when lbd exits, and the
//! program keeps its maps; the next `lbd run` loads the new program,
//! reuses the pinned maps (`EbpfLoader::map_pin_path`) and swaps the
//! program into the links (`bpf_link_update`: the interface is never
//! without a program). bpffs holds only pins, directories and symlinks (no
//! regular files), hence the symlinks for the two small records.
//!
//! `<instance>` is named after the state directory: one lbd runs per state
//! directory (`daemon::lock`), so one lbd per pin directory too.

mod bpffs;
pub mod layout;
mod links;
pub(crate) mod snapshot;
mod start;

use std::{
    io,
    path::{Path, PathBuf},
};

use lb_common::maps as m;
use thiserror::Error;

pub use bpffs::BpffsError;
pub use start::open_pinned;

/// Where pin directories go unless `--pin-dir` says otherwise.
pub const PIN_ROOT: &str = "/sys/fs/bpf/lbd";

/// The maps a restart keeps: every map lb-common names (state, settings
/// and counters alike, so counters do not drop to 0 on a restart), except
/// the `FLOW_EVENTS` queue, which the new program and daemon start afresh.
pub const PINNED_MAPS: &[&str] = &[
    m::COUNTERS,
    m::SERVICES,
    m::BACKENDS,
    m::RINGS,
    m::RR_POSITIONS,
    m::CONNTRACK,
    m::REALS,
    m::REVERSE,
    m::SERVICE_STATS,
    m::BACKEND_STATS,
    m::SETTINGS,
];

const LAYOUT_LINK: &str = "layout";
const LINK_PREFIX: &str = "link_";
const MODE_PREFIX: &str = "mode_";

/// `interface` as a bpffs name: `%` and `.` escaped as `%25` and `%2e`.
fn escape(interface: &str) -> String {
    interface.replace('%', "%25").replace('.', "%2e")
}

fn unescape(name: &str) -> String {
    name.replace("%2e", ".").replace("%25", "%")
}

/// What can go wrong with a pin directory.
#[derive(Debug, Error)]
pub enum PinError {
    #[error(transparent)]
    Bpffs(#[from] BpffsError),
    #[error("{operation} {path} failed")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PinError {
    let path = path.to_owned();
    move |source| PinError::Io {
        operation,
        path,
        source,
    }
}

/// The name of the instance whose state directory is `state_dir`:
/// `default` for lbd's default one, else the absolute path with `/` turned
/// into `-` and `.` into `_` (`/tmp/a/s.d` -> `tmp-a-s_d`), so two lbd with
/// different state directories never share pins.
pub fn instance_name(state_dir: &Path) -> String {
    let absolute = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    if absolute == Path::new(crate::defaults::STATE_DIR) {
        return "default".to_owned();
    }
    let name = absolute
        .to_string_lossy()
        .trim_matches('/')
        .replace('/', "-")
        .replace('.', "_");
    // A file name holds at most 255 bytes; the end of a path says most.
    let start = name.len().saturating_sub(200);
    let start = (start..name.len())
        .find(|i| name.is_char_boundary(*i))
        .unwrap_or(0);
    match &name[start..] {
        "" => "root".to_owned(),
        tail => tail.to_owned(),
    }
}

/// `/sys/fs/bpf/lbd/<instance>` for the lbd whose state directory is
/// `state_dir`.
pub fn default_pin_dir(state_dir: &Path) -> PathBuf {
    Path::new(PIN_ROOT).join(instance_name(state_dir))
}

/// An lbd instance's directory on bpffs.
#[derive(Clone, Debug)]
pub struct PinDir {
    path: PathBuf,
    /// Whether the pins outlive this process (see `bpffs::ensure`).
    lasting: bool,
}

impl PinDir {
    /// Checks that `path` is on bpffs (mounting bpffs on `/sys/fs/bpf` when
    /// that is where it goes and nothing is mounted there) and creates it.
    pub fn open(path: &Path) -> Result<Self, PinError> {
        let lasting = bpffs::ensure(path)?;
        std::fs::create_dir_all(path).map_err(io_err("creating", path))?;
        Ok(Self {
            path: path.to_owned(),
            lasting,
        })
    }

    /// A pin directory as it is, without checks (for `lbd cleanup`).
    pub fn at(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            lasting: true,
        }
    }

    /// Whether what is pinned here outlives this process.
    pub fn lasting(&self) -> bool {
        self.lasting
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn map_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn link_path(&self, interface: &str) -> PathBuf {
        self.path
            .join(format!("{LINK_PREFIX}{}", escape(interface)))
    }

    fn mode_path(&self, interface: &str) -> PathBuf {
        self.path
            .join(format!("{MODE_PREFIX}{}", escape(interface)))
    }

    /// Whether any map is pinned here.
    pub fn has_maps(&self) -> bool {
        PINNED_MAPS.iter().any(|n| self.map_path(n).exists())
    }

    /// The layout record of the pinned maps, if any.
    pub fn layout(&self) -> Option<String> {
        read_record(&self.path.join(LAYOUT_LINK))
    }

    pub fn write_layout(&self, layout: &str) -> Result<(), PinError> {
        write_record(&self.path.join(LAYOUT_LINK), layout)
    }

    /// Unpins every map and the layout record (the maps live on while a
    /// program still uses them).
    pub fn remove_maps(&self) -> Result<(), PinError> {
        for name in PINNED_MAPS {
            remove_if_present(&self.map_path(name))?;
        }
        remove_if_present(&self.path.join(LAYOUT_LINK))
    }

    /// The interfaces with a pinned link, sorted.
    pub fn linked_interfaces(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix(LINK_PREFIX).map(unescape))
            .collect();
        out.sort();
        out
    }

    /// Unpins `interface`'s link: the program is detached from it once no
    /// process holds the link either.
    pub fn remove_link(&self, interface: &str) -> Result<(), PinError> {
        remove_if_present(&self.link_path(interface))?;
        remove_if_present(&self.mode_path(interface))
    }

    /// Removes everything pinned here and the directory: detaches the
    /// program (unless a running lbd holds it) and frees the maps. Returns
    /// whether there was anything.
    pub fn remove_all(&self) -> Result<bool, PinError> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("reading", &self.path)(e)),
        };
        for entry in entries.flatten() {
            remove_if_present(&entry.path())?;
        }
        std::fs::remove_dir(&self.path).map_err(io_err("removing", &self.path))?;
        Ok(true)
    }
}

/// A small record kept as a symlink's target (bpffs has no regular files).
fn read_record(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// Replaces the record at `path` in one rename, so a reader never sees it
/// missing or half written.
fn write_record(path: &Path, value: &str) -> Result<(), PinError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push("_new");
    let tmp = PathBuf::from(tmp);
    remove_if_present(&tmp)?;
    std::os::unix::fs::symlink(value, &tmp).map_err(io_err("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming", &tmp))
}

fn remove_if_present(path: &Path) -> Result<(), PinError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_state_directory_is_the_default_instance() {
        assert_eq!(
            default_pin_dir(Path::new("/run/lbd")),
            Path::new("/sys/fs/bpf/lbd/default")
        );
    }

    #[test]
    fn other_state_directories_name_their_own_instance() {
        assert_eq!(instance_name(Path::new("/tmp/t-1.state")), "tmp-t-1_state");
        assert_eq!(instance_name(Path::new("/tmp/t-1.state/")), "tmp-t-1_state");
        assert_ne!(
            instance_name(Path::new("/tmp/a/b")),
            instance_name(Path::new("/tmp/a/c"))
        );
        let long = format!("/tmp/{}", "x".repeat(400));
        assert!(instance_name(Path::new(&long)).len() <= 200);
    }

    #[test]
    fn records_round_trip_through_symlinks() {
        let dir = std::env::temp_dir().join(format!("lbd-pins-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pins = PinDir::at(&dir);
        assert_eq!(pins.layout(), None);
        pins.write_layout("v1;A:1:2:3:4:0").unwrap();
        pins.write_layout("v2;A:1:2:3:4:0").unwrap();
        assert_eq!(pins.layout().as_deref(), Some("v2;A:1:2:3:4:0"));
        for interface in ["eth0", "eth0.100", "a%2e"] {
            std::os::unix::fs::symlink("native", pins.mode_path(interface)).unwrap();
            std::os::unix::fs::symlink("x", pins.link_path(interface)).unwrap();
        }
        assert_eq!(pins.linked_interfaces(), ["a%2e", "eth0", "eth0.100"]);
        assert!(
            std::fs::read_dir(&dir).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains('.')),
            "bpffs refuses names with a dot"
        );
        assert!(pins.remove_all().unwrap());
        assert!(!dir.exists());
        assert!(!pins.remove_all().unwrap(), "nothing left the second time");
    }
}
