//! Which accelerator a lab guest runs on: KVM where it works, TCG otherwise.
//!
//! A `/dev/kvm` that opens is not enough. On some nested hosts QEMU accepts `accel=kvm`
//! and the guest then never gets to print a line (seen on the machines vmlat's CI runs
//! on), so KVM is used only after a probe: the guest's own kernel, booted under KVM
//! with no root filesystem, must print its banner and panic its way out (`panic=-1` and
//! QEMU's `-no-reboot`) within [`PROBE_TIMEOUT`]. The answer is cached for the boot of
//! the host (`/proc/sys/kernel/random/boot_id`) in the image cache, so that only the
//! first lab after a reboot pays for the probe.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A working KVM boots the kernel to its panic in about a second.
const PROBE_TIMEOUT: Duration = Duration::from_secs(6);

/// What the kernel prints first.
const BANNER: &str = "Linux version";

/// The accelerator of this host's lab guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// TCG, and why not KVM.
    Tcg(String),
}

impl Accel {
    /// QEMU's name for it, for `-machine accel=`.
    pub fn qemu_name(&self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg(_) => "tcg",
        }
    }

    /// One line for the run's result.
    pub fn describe(&self) -> String {
        match self {
            Accel::Kvm => "KVM".into(),
            Accel::Tcg(why) => format!("TCG (software emulation; no KVM: {why})"),
        }
    }

    fn to_cache(&self) -> String {
        match self {
            Accel::Kvm => "kvm".into(),
            Accel::Tcg(why) => format!("tcg {why}"),
        }
    }

    fn from_cache(line: &str) -> Option<Accel> {
        match line.split_once(' ') {
            None if line == "kvm" => Some(Accel::Kvm),
            Some(("tcg", why)) => Some(Accel::Tcg(why.to_owned())),
            _ => None,
        }
    }
}

/// The accelerator for guests booting `kernel`, from the cache in `cache_dir` when it
/// was probed since the host booted.
pub fn choose(kernel: &Path, cache_dir: &Path) -> Accel {
    let cache = cache_dir.join("accel");
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let boot_id = boot_id.trim();
    if let Some(cached) = fs::read_to_string(&cache)
        .ok()
        .and_then(|s| {
            let (id, line) = s.split_once('\n')?;
            (id == boot_id).then(|| Accel::from_cache(line.trim_end()))
        })
        .flatten()
    {
        return cached;
    }
    let accel = match probe(kernel) {
        Ok(()) => Accel::Kvm,
        Err(why) => Accel::Tcg(why),
    };
    // A cache that cannot be written costs the next lab a probe, nothing more.
    let _ = fs::write(&cache, format!("{boot_id}\n{}\n", accel.to_cache()));
    accel
}

/// Boots `kernel` under KVM; `Err` says why KVM cannot run it.
fn probe(kernel: &Path) -> Result<(), String> {
    if let Err(e) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Err(format!("/dev/kvm: {e}"));
    }
    // `timeout` ends QEMU even if the lab is interrupted meanwhile.
    let out = Command::new("timeout")
        .args(["--kill-after=1", &PROBE_TIMEOUT.as_secs().to_string()])
        .args([
            "qemu-system-x86_64",
            "-machine",
            "pc,accel=kvm",
            "-m",
            "128",
        ])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .output()
        .map_err(|e| format!("running qemu-system-x86_64: {e}"))?;
    if String::from_utf8_lossy(&out.stdout).contains(BANNER) {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said
        .lines()
        .rfind(|l| !l.contains("terminating on signal"))
        .unwrap_or_default()
        .trim();
    let mut why = format!(
        "/dev/kvm opens, but a guest kernel under KVM printed nothing in {} s",
        PROBE_TIMEOUT.as_secs()
    );
    if !said.is_empty() {
        why.push_str(&format!(" (QEMU: {said})"));
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_choice_reads_back_as_written() {
        for accel in [Accel::Kvm, Accel::Tcg("/dev/kvm: not found".into())] {
            assert_eq!(Accel::from_cache(&accel.to_cache()), Some(accel));
        }
        assert_eq!(Accel::from_cache("something else"), None);
    }

    #[test]
    fn a_cache_of_this_boot_is_used_without_probing() {
        let dir = tempfile::tempdir().unwrap();
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        fs::write(
            dir.path().join("accel"),
            format!("{}\ntcg cached reason\n", boot_id.trim()),
        )
        .unwrap();
        // A kernel that does not exist: a probe would fail with another reason.
        let accel = choose(Path::new("/nonexistent/vmlinuz"), dir.path());
        assert_eq!(accel, Accel::Tcg("cached reason".into()));
    }

    #[test]
    fn a_cache_of_another_boot_is_probed_again() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("accel"), "some-other-boot\nkvm\n").unwrap();
        let accel = choose(Path::new("/nonexistent/vmlinuz"), dir.path());
        assert!(matches!(accel, Accel::Tcg(_)), "{accel:?}");
        let cached = fs::read_to_string(dir.path().join("accel")).unwrap();
        assert!(!cached.starts_with("some-other-boot"), "{cached}");
    }
}
