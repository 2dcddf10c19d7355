//! Who a command runs as: keepalived's `script_user` / `user [group]`, and
//! the NSS look-ups behind them.

use std::{ffi::CString, fmt};

use super::ExecError;

/// The user keepalived runs scripts as when none is configured and it
/// exists (its `script_user` default).
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// The identity a command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    pub fn root() -> Self {
        Self {
            user: "root".into(),
            uid: 0,
            gid: 0,
        }
    }

    /// `user` or `user group`, as keepalived's `script_user` and `user`.
    pub fn parse(spec: &str) -> Result<Self, ExecError> {
        let mut words = spec.split_whitespace();
        let user = words.next().unwrap_or("root");
        let (uid, mut gid) = lookup_user(user).ok_or_else(|| ExecError::NoUser {
            user: user.to_owned(),
        })?;
        if let Some(group) = words.next() {
            gid = lookup_group(group).ok_or_else(|| ExecError::NoGroup {
                group: group.to_owned(),
            })?;
        }
        Ok(Self {
            user: user.to_owned(),
            uid,
            gid,
        })
    }

    /// The default for scripts that name no user: `script_user` when set,
    /// else keepalived's `keepalived_script` when it exists, else root.
    pub fn default_for(script_user: Option<&str>) -> Result<Self, ExecError> {
        match script_user {
            Some(spec) => Self::parse(spec),
            None => Ok(Self::parse(DEFAULT_SCRIPT_USER).unwrap_or_else(|_| Self::root())),
        }
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {})", self.user, self.uid)
    }
}

/// The buffer for one NSS entry starts here and doubles on ERANGE (a
/// group with thousands of members does not fit 16 KiB) up to the cap.
const NSS_BUFFER_START: usize = 16 * 1024;
const NSS_BUFFER_CAP: usize = 16 * 1024 * 1024;

/// Calls a `get*nam_r` look-up with a buffer that grows while it says
/// ERANGE. `lookup` returns the call's return code and the entry if found.
fn with_growing_buffer<T>(mut lookup: impl FnMut(&mut [u8]) -> (i32, Option<T>)) -> Option<T> {
    let mut size = NSS_BUFFER_START;
    loop {
        let mut buf = vec![0u8; size];
        match lookup(&mut buf) {
            (libc::ERANGE, _) if size < NSS_BUFFER_CAP => size *= 2,
            (0, found) => return found,
            _ => return None,
        }
    }
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c_name = CString::new(name).ok()?;
    with_growing_buffer(|buf| {
        // SAFETY: passwd is plain data; getpwnam_r writes into it and buf only.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                c_name.as_ptr(),
                &raw mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &raw mut result,
            );
            (rc, (!result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)))
        }
    })
}

pub(crate) fn lookup_group(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    with_growing_buffer(|buf| {
        // SAFETY: as lookup_user, for getgrnam_r.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                c_name.as_ptr(),
                &raw mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &raw mut result,
            );
            (rc, (!result.is_null()).then_some(grp.gr_gid))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_entry_grows_the_buffer_until_it_fits() {
        let mut sizes = Vec::new();
        let found = with_growing_buffer(|buf| {
            sizes.push(buf.len());
            if buf.len() < 200 * 1024 {
                (libc::ERANGE, None)
            } else {
                (0, Some(7))
            }
        });
        assert_eq!(found, Some(7));
        assert_eq!(sizes, [16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10]);
        // Not found is not an error; other errors give up at once.
        assert_eq!(with_growing_buffer(|_| (0, None::<u32>)), None);
        let mut calls = 0;
        assert_eq!(
            with_growing_buffer(|_| {
                calls += 1;
                (libc::EIO, None::<u32>)
            }),
            None
        );
        assert_eq!(calls, 1);
        // ERANGE forever stops at the cap.
        let mut last = 0;
        assert_eq!(
            with_growing_buffer(|buf| {
                last = buf.len();
                (libc::ERANGE, None::<u32>)
            }),
            None
        );
        assert_eq!(last, NSS_BUFFER_CAP);
    }
}
