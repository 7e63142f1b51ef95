//! Syscall numbers, the one place they are read: names and the classes the rules
//! need (sends, receives, waits), for the architecture a bundle was recorded on.
//!
//! Syscall numbers belong to an architecture, which the bundle's manifest records
//! (`arch`); a manifest without `arch` predates it and was recorded on x86_64. Classes
//! are defined by name, so that one list serves every architecture: aarch64, which
//! has no `poll`, `select` or `epoll_wait`, simply never matches those names.

/// The architectures whose numbers are known.
fn lookup(nr: i64, arch: &str) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    match arch {
        "" | "x86_64" => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
        "aarch64" | "arm64" => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
        _ => None,
    }
}

/// Whether the numbers of architecture `arch` (as the manifest names it) are known.
pub fn knows_arch(arch: &str) -> bool {
    matches!(arch, "" | "x86_64" | "aarch64" | "arm64")
}

/// `epoll_wait`, or `syscall 441` for a number the architecture does not know (or any
/// number of an architecture vmlat has no table for).
pub fn name(nr: i64, arch: &str) -> String {
    lookup(nr, arch).map_or_else(|| format!("syscall {nr}"), str::to_string)
}

/// The syscalls an event loop (keepalived) sleeps in between events: its "normal
/// wait". Off CPU in any other syscall is blocked, not sleeping.
const WAITS: [&str; 12] = [
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "nanosleep",
    "clock_nanosleep",
    "pause",
    "rt_sigsuspend",
    "rt_sigtimedwait",
];

/// Syscalls that send a datagram.
const SENDS: [&str; 3] = ["sendmsg", "sendto", "sendmmsg"];

/// Syscalls that receive from a socket.
const RECEIVES: [&str; 4] = ["recvmsg", "recvfrom", "recvmmsg", "read"];

/// Syscalls whose first argument is a file descriptor worth naming.
const FD_FIRST: [&str; 22] = [
    "read",
    "write",
    "close",
    "fsync",
    "fdatasync",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "sendmsg",
    "sendto",
    "recvmsg",
    "recvfrom",
    "ftruncate",
    "sync_file_range",
    "flock",
    "fcntl",
    "ioctl",
    "connect",
    "accept",
    "accept4",
    "fallocate",
];

fn is_in(list: &[&str], nr: i64, arch: &str) -> bool {
    lookup(nr, arch).is_some_and(|n| list.contains(&n))
}

pub fn is_wait(nr: i64, arch: &str) -> bool {
    is_in(&WAITS, nr, arch)
}

pub fn is_send(nr: i64, arch: &str) -> bool {
    is_in(&SENDS, nr, arch)
}

pub fn is_receive(nr: i64, arch: &str) -> bool {
    is_in(&RECEIVES, nr, arch)
}

pub fn takes_fd(nr: i64, arch: &str) -> bool {
    is_in(&FD_FIRST, nr, arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_named_by_the_bundles_architecture() {
        assert_eq!(name(232, "x86_64"), "epoll_wait");
        assert_eq!(name(232, ""), "epoll_wait");
        // aarch64's 211 is sendmsg; x86_64's 211 is get_thread_area.
        assert_eq!(name(211, "aarch64"), "sendmsg");
        assert_eq!(name(211, "x86_64"), "get_thread_area");
        assert_eq!(name(46, "x86_64"), "sendmsg");
        assert_eq!(name(232, "mips"), "syscall 232");
        assert_eq!(name(-1, "x86_64"), "syscall -1");
    }

    #[test]
    fn classes_follow_the_architecture() {
        assert!(is_send(46, "x86_64") && !is_send(46, "aarch64"));
        assert!(is_send(211, "aarch64") && !is_send(211, "x86_64"));
        // aarch64 waits in epoll_pwait (22); it has no epoll_wait.
        assert!(is_wait(22, "aarch64") && is_wait(232, "x86_64"));
        assert!(!is_wait(232, "aarch64"));
        assert!(is_receive(212, "aarch64") && is_receive(47, "x86_64"));
    }
}
