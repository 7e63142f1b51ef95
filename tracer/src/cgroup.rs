//! Where the cgroup hierarchies that can freeze a task are mounted, and a v2 cgroup's
//! frozen state: the one reading of `/proc/self/mountinfo` and `cgroup.events` that the
//! sampler (recording freezer state) and the lab's freezer faults share. (procfs parses
//! mountinfo too, but leaves its octal escapes in paths: `\040` for a space.)

use std::path::PathBuf;

/// Where a cgroup hierarchy is mounted in this process's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The mount point (`/sys/fs/cgroup/freezer`, `/sys/fs/cgroup/unified`, ...).
    pub dir: PathBuf,
    /// The cgroup mounted there (`/` unless a sub-tree was bind-mounted).
    pub root: String,
}

impl CgroupMount {
    /// The directory of `cgroup` (a path as `/proc/PID/cgroup` gives it), if this mount
    /// shows it.
    pub fn dir_of(&self, cgroup: &str) -> Option<PathBuf> {
        let relative = if self.root == "/" {
            cgroup
        } else {
            let rest = cgroup.strip_prefix(self.root.as_str())?;
            if !rest.is_empty() && !rest.starts_with('/') {
                return None;
            }
            rest
        };
        let relative = relative.trim_start_matches('/');
        if relative.split('/').any(|c| c == "..") {
            return None;
        }
        Some(if relative.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(relative)
        })
    }
}

/// The two hierarchies that can freeze a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// A cgroup v1 hierarchy with the `freezer` controller.
    pub v1_freezer: Option<CgroupMount>,
    /// The cgroup v2 hierarchy (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` in the
    /// hybrid layout).
    pub v2: Option<CgroupMount>,
}

impl CgroupMounts {
    pub fn of_this_process() -> Self {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Reads `/proc/self/mountinfo`; a mount of the hierarchy's root (`/`) is
    /// preferred over a bind mount of one of its cgroups.
    pub fn parse(mountinfo: &str) -> Self {
        let mut mounts = CgroupMounts::default();
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = before.split(' ').collect();
            let (Some(root), Some(dir)) = (fields.get(3), fields.get(4)) else {
                continue;
            };
            let mut after = after.split(' ');
            let fs_type = after.next().unwrap_or("");
            let super_options = after.nth(1).unwrap_or("");
            let slot = match fs_type {
                "cgroup2" => &mut mounts.v2,
                "cgroup" if super_options.split(',').any(|o| o == "freezer") => {
                    &mut mounts.v1_freezer
                }
                _ => continue,
            };
            let mount = CgroupMount {
                dir: PathBuf::from(unescape_mountinfo(dir)),
                root: unescape_mountinfo(root),
            };
            if slot
                .as_ref()
                .is_none_or(|m| m.root != "/" && mount.root == "/")
            {
                *slot = Some(mount);
            }
        }
        mounts
    }
}

/// Undoes mountinfo's octal escapes of space, tab, newline and backslash (`\040`).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, b| v.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `frozen` key of a v2 `cgroup.events`: `Some(true)` for `frozen 1`.
pub fn v2_frozen(events: &str) -> Option<bool> {
    events.lines().find_map(|line| match line.trim() {
        "frozen 1" => Some(true),
        "frozen 0" => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:9 - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_freezer_and_v2_mounts_in_mountinfo() {
        let mounts = CgroupMounts::parse(HYBRID_MOUNTINFO);
        assert_eq!(
            mounts.v1_freezer,
            Some(CgroupMount {
                dir: "/sys/fs/cgroup/freezer".into(),
                root: "/".into()
            })
        );
        assert_eq!(
            mounts.v2.as_ref().map(|m| m.dir.as_path()),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );

        // Unified layout, freezer co-mounted with cpu in v1 elsewhere, a bind mount
        // of a sub-tree first, and an escaped space.
        let mounts = CgroupMounts::parse(
            "50 1 0:40 /lab /mnt/cg rw - cgroup2 cgroup2 rw\n\
             26 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
             60 1 0:41 / /mnt/my\\040v1 rw - cgroup none rw,cpu,freezer\n",
        );
        assert_eq!(
            mounts
                .v2
                .as_ref()
                .map(|m| (m.dir.as_path(), m.root.as_str())),
            Some((Path::new("/sys/fs/cgroup"), "/"))
        );
        assert_eq!(
            mounts.v1_freezer.map(|m| m.dir),
            Some(PathBuf::from("/mnt/my v1"))
        );
        assert_eq!(CgroupMounts::parse("garbage\n"), CgroupMounts::default());
    }

    #[test]
    fn cgroup_paths_map_to_directories_under_the_mount() {
        let root = CgroupMount {
            dir: "/sys/fs/cgroup/unified".into(),
            root: "/".into(),
        };
        assert_eq!(
            root.dir_of("/system.slice/keepalived.service"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/system.slice/keepalived.service"
            ))
        );
        assert_eq!(
            root.dir_of("/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(root.dir_of("/../etc"), None);
        let bind = CgroupMount {
            dir: "/mnt/cg".into(),
            root: "/lab".into(),
        };
        assert_eq!(bind.dir_of("/lab/vr1"), Some(PathBuf::from("/mnt/cg/vr1")));
        assert_eq!(bind.dir_of("/lab"), Some(PathBuf::from("/mnt/cg")));
        assert_eq!(bind.dir_of("/laboratory"), None);
        assert_eq!(bind.dir_of("/other"), None);
    }

    #[test]
    fn reads_frozen_from_cgroup_events() {
        assert_eq!(v2_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(v2_frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(v2_frozen("populated 1\n"), None);
    }
}
