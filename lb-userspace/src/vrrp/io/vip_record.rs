//! The record of the virtual addresses lbd added, kept in its state
//! directory beside the addresses' own mark ([`super::vip`]).
//!
//! The mark (`IFA_PROTO`) needs Linux 6.1; on 5.15-6.0 the kernel drops it
//! silently, so without a record lbd could tell none of its addresses from
//! an operator's: after MASTER -> BACKUP the VIP would stay, and a crash
//! cleanup would remove nothing. The record also names the interface, so
//! the cleanup finds addresses on interfaces the configuration no longer
//! lists. One file per network namespace, as the IPVS record.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
};

use crate::{atomic_file, config::IpPrefix};

/// Simulates a kernel that drops address marks (5.15-6.0) on a newer one,
/// for the tests of the fallback.
pub const ASSUME_NO_MARKS_VAR: &str = "LBD_ASSUME_NO_ADDRESS_MARKS";

/// Whether this kernel keeps `IFA_PROTO` on addresses (Linux 6.1+).
pub fn kernel_keeps_marks() -> bool {
    if std::env::var_os(ASSUME_NO_MARKS_VAR).is_some_and(|v| v == "1") {
        return false;
    }
    // SAFETY: uname fills the struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return false;
    }
    let release: String = uts
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| char::from(c.to_ne_bytes()[0]))
        .collect();
    release_keeps_marks(&release)
}

/// `6.1.0-13-amd64` -> true, `5.15.0-91-generic` -> false.
fn release_keeps_marks(release: &str) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= (6, 1)
}

/// (interface, address) pairs lbd added and has not removed.
#[derive(Debug, Default)]
pub struct VipRecord {
    /// `None`: kept in memory only (tests, `lbd cleanup` without a state
    /// directory).
    path: Option<PathBuf>,
    entries: BTreeSet<(String, IpPrefix)>,
}

impl VipRecord {
    /// The record in `state_dir` for this network namespace; an unreadable
    /// or missing file is an empty record.
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join(crate::defaults::per_netns("vips"));
        let entries = fs::read_to_string(&path)
            .map(|text| parse(&text))
            .unwrap_or_default();
        Self {
            path: Some(path),
            entries,
        }
    }

    pub fn contains(&self, interface: &str, address: IpPrefix) -> bool {
        self.entries.contains(&(interface.to_owned(), address))
    }

    /// The interfaces the record names.
    pub fn interfaces(&self) -> BTreeSet<String> {
        self.entries.iter().map(|(i, _)| i.clone()).collect()
    }

    pub fn insert(&mut self, interface: &str, address: IpPrefix) -> io::Result<()> {
        if self.entries.insert((interface.to_owned(), address)) {
            self.save()?;
        }
        Ok(())
    }

    pub fn remove(&mut self, interface: &str, address: IpPrefix) -> io::Result<()> {
        if self.entries.remove(&(interface.to_owned(), address)) {
            self.save()?;
        }
        Ok(())
    }

    /// Forgets every entry on `interface` (removed, or gone with it).
    pub fn forget_interface(&mut self, interface: &str) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|(i, _)| i != interface);
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.entries.is_empty() {
            return match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        atomic_file::replace(path, render(&self.entries).as_bytes())
    }
}

/// One `INTERFACE ADDRESS/LEN` per line; other lines are skipped.
fn parse(text: &str) -> BTreeSet<(String, IpPrefix)> {
    text.lines()
        .filter_map(|line| {
            let (interface, address) = line.trim().split_once(' ')?;
            Some((interface.to_owned(), address.trim().parse().ok()?))
        })
        .collect()
}

fn render(entries: &BTreeSet<(String, IpPrefix)>) -> String {
    use std::fmt::Write as _;
    entries
        .iter()
        .fold(String::new(), |mut text, (interface, address)| {
            let _ = writeln!(text, "{interface} {address}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_from_6_1_keep_marks() {
        assert!(release_keeps_marks("6.1.0-13-amd64"));
        assert!(release_keeps_marks("6.18.0"));
        assert!(release_keeps_marks("7.0"));
        assert!(!release_keeps_marks("6.0.19"));
        assert!(!release_keeps_marks("5.15.0-91-generic"));
        assert!(!release_keeps_marks(""));
    }

    #[test]
    fn the_record_survives_a_restart_and_empties_to_nothing() {
        let dir = std::env::temp_dir().join(format!("lbd-vip-record-{}", std::process::id()));
        let a: IpPrefix = "10.0.0.1/32".parse().unwrap();
        let b: IpPrefix = "fd00::1/64".parse().unwrap();
        let mut record = VipRecord::open(&dir);
        record.insert("eth0", a).unwrap();
        record.insert("lbd-eth1", b).unwrap();
        let reopened = VipRecord::open(&dir);
        assert!(reopened.contains("eth0", a));
        assert!(reopened.contains("lbd-eth1", b));
        assert!(!reopened.contains("eth1", a), "the interface is part of it");
        assert_eq!(
            reopened.interfaces().into_iter().collect::<Vec<_>>(),
            ["eth0", "lbd-eth1"]
        );
        record.remove("eth0", a).unwrap();
        record.forget_interface("lbd-eth1").unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "no empty file left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_line_is_skipped() {
        let parsed = parse("eth0 10.0.0.1/32\ngarbage\neth0 not-an-address\n");
        assert_eq!(parsed.len(), 1);
    }
}
