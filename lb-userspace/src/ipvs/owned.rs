//! Which IPVS services are lbd's: a record file in the run directory,
//! one per network namespace (`ipvs-services.<netns inode>`), one service a
//! line (`TCP 10.0.0.1:80`).
//!
//! Why a file and not a mark inside IPVS: a service has no free field to
//! carry an owner. Its flags and scheduler flags change forwarding; its
//! persistence netmask and timeout are unused today but would be the first
//! thing persistence support needs, and ipvsadm and keepalived both write
//! the same defaults there, so a "special" value would be a guess others can
//! collide with. The record instead lives exactly as long as the table it
//! describes: IPVS tables vanish on reboot and so does `/run` (a tmpfs); each
//! network namespace has its own table and its own file.
//!
//! A service is recorded *before* it is created, so a crash between the two
//! leaves a record of a service that may not exist (harmless: cleanup skips
//! it), never a service lbd forgot it made.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
};

use super::IpvsError;
use crate::dataplane::ServiceId;

pub(crate) struct OwnedRecord {
    path: PathBuf,
    services: BTreeSet<ServiceId>,
}

impl OwnedRecord {
    /// Opens the record of this network namespace in `run_dir`, holding
    /// whatever an earlier run left in it.
    pub(crate) fn open(run_dir: &Path) -> Result<Self, IpvsError> {
        let path = run_dir.join(crate::defaults::per_netns("ipvs-services"));
        let services = match fs::read_to_string(&path) {
            Ok(text) => text.lines().filter_map(|l| l.parse().ok()).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => {
                return Err(IpvsError::State {
                    path,
                    action: "read",
                    source,
                });
            }
        };
        Ok(Self { path, services })
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn contains(&self, key: &ServiceId) -> bool {
        self.services.contains(key)
    }

    pub(crate) fn keys(&self) -> Vec<ServiceId> {
        self.services.iter().copied().collect()
    }

    pub(crate) fn insert(&mut self, key: ServiceId) -> Result<(), IpvsError> {
        if self.services.insert(key) {
            self.save()?;
        }
        Ok(())
    }

    pub(crate) fn remove(&mut self, key: &ServiceId) -> Result<(), IpvsError> {
        if self.services.remove(key) {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the record atomically (a temporary file renamed over it), so
    /// a crash mid-write leaves the old record or the new one.
    fn save(&self) -> Result<(), IpvsError> {
        let err = |action| {
            let path = self.path.clone();
            move |source| IpvsError::State {
                path,
                action,
                source,
            }
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(err("created (its directory)"))?;
        }
        if self.services.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err("removed")(e)),
                _ => Ok(()),
            };
        }
        let mut text = String::new();
        for key in &self.services {
            text.push_str(&key.to_string());
            text.push('\n');
        }
        crate::atomic_file::replace(&self.path, text.as_bytes()).map_err(err("written"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_survives_a_restart_and_empties_to_nothing() {
        let dir = std::env::temp_dir().join(format!("lbd-owned-{}", std::process::id()));
        let key: ServiceId = "TCP 10.0.0.1:80".parse().unwrap();
        let v6: ServiceId = "UDP [fd00::1]:53".parse().unwrap();
        let mut record = OwnedRecord::open(&dir).unwrap();
        record.insert(key).unwrap();
        record.insert(v6).unwrap();
        let again = OwnedRecord::open(&dir).unwrap();
        assert_eq!(again.keys(), vec![key, v6]);
        record.remove(&key).unwrap();
        record.remove(&v6).unwrap();
        assert!(!record.path().exists(), "an empty record leaves no file");
        let _ = fs::remove_dir_all(&dir);
    }
}
