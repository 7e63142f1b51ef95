//! Least privilege: `vmlat record --user USER` gives up root once every capture and
//! perf descriptor is open, as `tcpdump -Z` does, and records on as USER.
//!
//! Before the drop, the bundle is handed to USER (its directories and the files created
//! so far), so that the writer can go on appending, flushing and replacing the manifest.
//! The drop is process-wide: glibc's `setuid` changes every thread's credentials, the
//! collectors' included. What needs root after it is lost, and said: reading another
//! user's `/proc/PID/fd` (a VM started during the recording is listed without taps) and
//! the system journal (see [`can_read_system_journal`]).

use std::path::Path;

use nix::unistd::{chown, initgroups, setgid, setuid, Gid, Group, Uid, User};

/// The user to become, resolved before anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropTo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("--user {0}: no such user (`getent passwd {0}` lists it where it exists)")]
    NoSuchUser(String),
    #[error("--user {name}: after dropping root, {name} cannot write the bundle {path}: every directory above it must be searchable by {name}; choose an -o that {name} can reach")]
    Unreachable {
        name: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--user {name}: {what} failed: {source}")]
    Drop {
        name: String,
        what: &'static str,
        #[source]
        source: nix::Error,
    },
}

impl DropTo {
    /// Looks `name` (or a numeric uid) up in the user database.
    pub fn resolve(name: &str) -> Result<Self, PrivilegeError> {
        let user = match name.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(name),
        };
        let user = user
            .ok()
            .flatten()
            .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_string()))?;
        Ok(DropTo {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }

    /// Hands `bundle` (everything in it so far) to the user, then becomes the user:
    /// supplementary groups, group, user, in that order (the reverse cannot work).
    pub fn drop_privileges(&self, bundle: &Path) -> Result<(), PrivilegeError> {
        let failed = |what| {
            let name = self.name.clone();
            move |source| PrivilegeError::Drop { name, what, source }
        };
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        hand_over(bundle, uid, gid).map_err(failed("handing the bundle over (chown)"))?;
        let c_name = std::ffi::CString::new(self.name.as_str())
            .map_err(|_| failed("initgroups")(nix::Error::EINVAL))?;
        initgroups(&c_name, gid).map_err(failed("initgroups"))?;
        setgid(gid).map_err(failed("setgid"))?;
        setuid(uid).map_err(failed("setuid"))?;
        // The writer replaces the manifest every second: find out now if it cannot.
        let probe = bundle.join(".vmlat-user-probe");
        vmlat_bundle::create_bundle_file(&probe)
            .map(drop)
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| PrivilegeError::Unreachable {
                name: self.name.clone(),
                path: bundle.to_path_buf(),
                source,
            })
    }
}

/// `chown -R` of a bundle directory that holds only what the recorder created.
fn hand_over(path: &Path, uid: Uid, gid: Gid) -> nix::Result<()> {
    chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))?;
        for entry in entries.flatten() {
            hand_over(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Whether this process can read the whole system journal: root, or a member of
/// `systemd-journal` or `adm` (journald's readers). Anyone else sees only their own
/// entries, which would read as "keepalived logged nothing".
pub fn can_read_system_journal() -> bool {
    if Uid::effective().is_root() {
        return true;
    }
    let groups = nix::unistd::getgroups().unwrap_or_default();
    let egid = Gid::effective();
    ["systemd-journal", "adm"].iter().any(|name| {
        Group::from_name(name)
            .ok()
            .flatten()
            .is_some_and(|g| g.gid == egid || groups.contains(&g.gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_resolved_by_name_or_uid_and_unknown_ones_named() {
        let root = DropTo::resolve("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(DropTo::resolve("0").unwrap().name, "root");
        let e = DropTo::resolve("no-such-user-vmlat").unwrap_err();
        assert!(e.to_string().contains("no such user"), "{e}");
    }
}
