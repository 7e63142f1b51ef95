//! Syscall names for the numbers bundles record (`SyscallEnter`/`SyscallExit`).
//!
//! Syscall numbers belong to an architecture, which the bundle's manifest records
//! (`arch`). Names are x86_64's: a bundle of another architecture has its syscalls
//! shown by number. A manifest without `arch` predates it and was recorded on x86_64.

use syscalls::x86_64::Sysno;

/// `epoll_wait`, or `syscall 441` for a number x86_64 does not know, or for any number
/// of a bundle recorded on another architecture (`arch` as in the manifest).
pub fn name(nr: i64, arch: &str) -> String {
    let x86_64 = arch.is_empty() || arch == "x86_64";
    usize::try_from(nr)
        .ok()
        .filter(|_| x86_64)
        .and_then(Sysno::new)
        .map_or_else(|| format!("syscall {nr}"), |s| s.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn only_x86_64_numbers_are_named() {
        assert_eq!(name(232, "x86_64"), "epoll_wait");
        assert_eq!(name(232, ""), "epoll_wait");
        assert_eq!(name(232, "aarch64"), "syscall 232");
        assert_eq!(name(-1, "x86_64"), "syscall -1");
    }
}
