//! A lab router that is a QEMU guest (KVM where it works, TCG otherwise: [`accel`]): keepalived and `vmlat record` run inside a
//! real VM whose NIC is a tap on the lab's bridge, so the host can record the tap and the
//! QEMU process while the guest records itself.
//!
//! ```text
//!   QEMU guest vr1 (eth0 10.10.0.1/24)        netns RUN_ID-vr2
//!   keepalived, vmlat record --role guest      keepalived
//!       | virtio-net                               | veth
//!   +---|------------------------------------------|------+
//!   |  tap-vr1 ------------- br0 --------------- sw-vr2   |  netns RUN_ID-sw
//!   +-----------------------------------------------------+
//! ```
//!
//! QEMU runs inside the switch namespace (`ip netns exec`), where it opens the tap the lab
//! created there, so nothing appears in the root namespace and the switch's teardown (kill
//! its processes, delete it) ends QEMU and the tap even if everything else failed.
//!
//! Per guest, in the lab dir: `NAME.qmp.sock` (QMP, [`crate::qmp`]), `NAME.ctl.sock` (the
//! control channel, the guest's /dev/ttyS1, [`control`]), `NAME.console.log` (the guest's
//! /dev/ttyS0: kernel and /init messages), `NAME.qemu.log` (QEMU's own stdout and
//! stderr) and `NAME.disk`, a raw virtio disk (the guest's /dev/vda) that carries files
//! both ways as a plain tar: the host writes keepalived's config on it before boot, and
//! the guest writes its bundle and keepalived's log on it at the end, which the host
//! unpacks with `tar`. A disk rather than virtiofs or 9p: Debian's cloud kernel has no
//! 9p, virtiofs needs a daemon and shared memory, and a tar on a block device needs
//! nothing but busybox on the guest's side.
//!
//! The guest's wall clock: its RTC has whole seconds only, so after boot the host sets it
//! over the control channel, [`CLOCK_ROUNDS`] at most: it sends `clock S` ahead of the
//! host's whole second S by its estimate of the delivery delay, then measures the offset
//! with a `now` round trip (guest time against the midpoint of the host's send and
//! receive) and corrects the estimate. The offset left and its uncertainty are reported
//! ([`Guest::clock`]). A QMP `stop` freezes the guest's clocks: after `cont` the guest's
//! wall clock stays behind by the pause, as on a real hypervisor without NTP.

pub mod accel;
mod control;
mod cpio;
pub mod image;
pub(crate) mod router;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use control::Control;

use crate::cmd;
use crate::lab::io;
use crate::qmp;
use crate::LabError;

/// The guest's network interface (virtio-net), what its keepalived binds.
pub const GUEST_IFACE: &str = "eth0";

/// The guest NIC's netdev id on QEMU's command line.
const NETDEV: &str = "net0";
/// The id of the guest's /tmp disk's drive, its block backend's name in QMP.
const TMP_DRIVE: &str = "tmpdisk";
/// The id of the `filter-buffer` that holds the guest's NIC traffic (`vnic-delay`).
const NIC_HOLD: &str = "vmlat-nic-hold";

/// Prefix of a guest's tap in the switch namespace: `tap-vr1`.
pub const TAP_PREFIX: &str = "tap-";

/// Guest memory: the uncompressed initramfs (~40 MB) lives in it, plus the bundle.
const MEMORY_MIB: u32 = 512;

/// Size of the data disk; the bundle of a scenario is a few MB.
const DISK_MIB: u64 = 256;

/// Boot to /init takes about 6.5 s under TCG on a 2-core machine; slack for a loaded one.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Most commands answer in milliseconds; starting the recorder under TCG takes seconds.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Rounds of the clock setting, and the offset at which it stops early.
const CLOCK_ROUNDS: u32 = 4;
const CLOCK_GOOD_NS: i64 = 2_000_000;

/// How the guest's wall clock compares with the host's after it was set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockOffset {
    /// Guest minus host, nanoseconds.
    pub offset_ns: i64,
    /// Half the round trip of the measurement: the offset is right within this.
    pub uncertainty_ns: i64,
}

/// A running guest. Dropping it does nothing: QEMU is a child in the lab's registry and
/// goes with the lab.
#[derive(Debug)]
pub struct Guest {
    name: String,
    qmp: PathBuf,
    console: PathBuf,
    disk: PathBuf,
    control: Arc<Mutex<Control>>,
    pid: u32,
    clock: ClockOffset,
}

/// What a guest needs to boot, prepared by the lab.
pub(crate) struct Boot<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
    pub switch_netns: &'a str,
    pub tap: &'a str,
    /// `ADDR/LEN` for eth0.
    pub addr: String,
    pub keepalived_conf: String,
    pub image: &'a image::Image,
    /// The last octet of the router's address, for a unique MAC.
    pub mac_suffix: u8,
    /// The host block device the guest mounts on /tmp ([`crate::RouterSpec::tmp_disk`]).
    pub tmp_disk: Option<&'a Path>,
}

fn guest_error(router: &str, problem: impl Into<String>) -> LabError {
    LabError::Guest {
        router: router.to_owned(),
        problem: problem.into(),
    }
}

/// The `vmlat` binary to put into guests: `VMLAT_GUEST_BINARY`, else this program if it is
/// vmlat itself.
pub fn guest_vmlat() -> Result<PathBuf, LabError> {
    if let Some(path) = std::env::var_os("VMLAT_GUEST_BINARY") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    if exe.file_name().is_some_and(|n| n == "vmlat") {
        Ok(exe)
    } else {
        Err(guest_error(
            "(image)",
            format!(
                "{} is not vmlat: set VMLAT_GUEST_BINARY to the vmlat binary the guest should run",
                exe.display()
            ),
        ))
    }
}

/// Fails with the package to install when QEMU is missing.
pub(crate) fn check_qemu() -> Result<(), LabError> {
    cmd::require(&[
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("tar", "tar"),
        ("strip", "binutils"),
    ])
}

/// Creates the guest's tap in the switch namespace, attached to `bridge`.
pub(crate) fn create_tap(switch_netns: &str, tap: &str, bridge: &str) -> Result<(), LabError> {
    let sw = switch_netns;
    cmd::run(
        "ip",
        &["-n", sw, "tuntap", "add", "dev", tap, "mode", "tap"],
    )?;
    cmd::run(
        "ip",
        &["-n", sw, "link", "set", tap, "master", bridge, "up"],
    )
    .map(drop)
}

/// The QEMU command for `boot`, to be spawned (and registered) by the lab; writes the
/// guest's data disk and creates QEMU's log first.
pub(crate) fn command(boot: &Boot<'_>) -> Result<Command, LabError> {
    let name = boot.name;
    let path = |suffix: &str| boot.dir.join(format!("{name}.{suffix}"));
    let disk = path("disk");
    let files = write_disk(&disk, boot)?;
    let log = path("qemu.log");
    let out = fs::File::create(&log).map_err(io(&log))?;
    let err = out.try_clone().map_err(io(&log))?;
    let mut c = Command::new("ip");
    c.args(["netns", "exec", boot.switch_netns, "qemu-system-x86_64"])
        // Named threads (`CPU 0/TCG`, `CPU 0/KVM`), which the host's recorder sees.
        .args(["-name", &format!("guest={name},debug-threads=on")])
        .args([
            "-machine",
            &format!("pc,accel={}", boot.image.accel.qemu_name()),
        ])
        .args(["-smp", "1"])
        .args(["-m", &MEMORY_MIB.to_string()])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(&boot.image.kernel)
        .arg("-initrd")
        .arg(&boot.image.initramfs)
        .args([
            "-append",
            &format!(
                "console=ttyS0 quiet panic=-1 vmlat.addr={} vmlat.name={name} vmlat.files={files}{}",
                boot.addr,
                // /init waits for the second disk and mounts it on /tmp.
                if boot.tmp_disk.is_some() {
                    " vmlat.tmpdisk=vdb"
                } else {
                    ""
                }
            ),
        ])
        .arg("-serial")
        .arg(format!("file:{}", path("console.log").display()))
        .arg("-chardev")
        .arg(format!(
            "socket,id=ctl,path={},server=on,wait=off",
            path("ctl.sock").display()
        ))
        .args(["-serial", "chardev:ctl"])
        .arg("-qmp")
        .arg(format!(
            "unix:{},server=on,wait=off",
            path("qmp.sock").display()
        ))
        .arg("-netdev")
        .arg(format!(
            "tap,id={NETDEV},ifname={},script=no,downscript=no",
            boot.tap
        ))
        .arg("-device")
        .arg(format!(
            "virtio-net-pci,netdev={NETDEV},mac=52:54:00:0a:0a:{:02x}",
            boot.mac_suffix
        ))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,cache=writethrough",
            disk.display()
        ));
    if let Some(tmp_disk) = boot.tmp_disk {
        // cache=none: QEMU writes the guest's blocks with O_DIRECT from its I/O worker
        // threads, so a slow host disk holds those threads in D, as in the field.
        c.arg("-drive").arg(format!(
            "id={TMP_DRIVE},file={},format=raw,if=virtio,cache=none,aio=threads",
            tmp_disk.display()
        ));
    }
    c.stdin(std::process::Stdio::null()).stdout(out).stderr(err);
    Ok(c)
}

/// Asks QEMU on `qmp` to resize the guest's /tmp disk to `size` bytes (its own size),
/// on a thread of its own: the resize drains the disk first, and QEMU answers only once
/// every request in flight has completed. The answer comes on the returned channel.
pub(crate) fn resize_tmp_disk(qmp: &Path, size: u64) -> mpsc::Receiver<Result<(), String>> {
    let (tx, rx) = mpsc::channel();
    let qmp = qmp.to_path_buf();
    std::thread::spawn(move || {
        let arguments = serde_json::json!({ "device": TMP_DRIVE, "size": size });
        let answer = qmp::execute_with(&qmp, "block_resize", Some(arguments)).map(drop);
        let _ = tx.send(answer);
    });
    rx
}

/// The data disk: a tar of the guest's lab files, then zeros up to [`DISK_MIB`].
/// Returns the tar's length, which /init reads and no more: busybox tar reads its input
/// to the end, and the whole disk took 5 s under TCG.
fn write_disk(disk: &Path, boot: &Boot<'_>) -> Result<u64, LabError> {
    let staging = boot.dir.join(format!("{}.files", boot.name));
    fs::create_dir_all(&staging).map_err(io(&staging))?;
    let conf = staging.join("keepalived.conf");
    fs::write(&conf, &boot.keepalived_conf).map_err(io(&conf))?;
    cmd::run(
        "tar",
        &[
            "-cf",
            &disk.to_string_lossy(),
            "-C",
            &staging.to_string_lossy(),
            "keepalived.conf",
        ],
    )?;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(io(disk))?;
    let files = file.metadata().map_err(io(disk))?.len();
    file.set_len(DISK_MIB << 20).map_err(io(disk))?;
    Ok(files)
}

fn realtime_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Guest {
    /// Waits for the booted guest `name` (QEMU pid `pid`) to answer on its control channel,
    /// sets its clock and starts its recorder and keepalived. `alive` fails once QEMU has
    /// exited, with what it said.
    pub(crate) fn start(
        name: &str,
        dir: &Path,
        pid: u32,
        alive: impl FnMut() -> Result<(), String>,
    ) -> Result<Guest, LabError> {
        let path = |suffix: &str| dir.join(format!("{name}.{suffix}"));
        let console = path("console.log");
        let tail = |problem: String| {
            guest_error(
                name,
                format!(
                    "{problem}; last lines of {}:\n{}",
                    console.display(),
                    cmd::tail(&console, 15)
                ),
            )
        };
        let control = Control::connect(&path("ctl.sock"), BOOT_TIMEOUT, alive).map_err(tail)?;
        let mut guest = Guest {
            name: name.to_owned(),
            qmp: path("qmp.sock"),
            console: console.clone(),
            disk: path("disk"),
            control: Arc::new(Mutex::new(control)),
            pid,
            clock: ClockOffset {
                offset_ns: 0,
                uncertainty_ns: 0,
            },
        };
        guest.clock = guest.set_clock()?;
        guest.call("start", START_TIMEOUT)?;
        Ok(guest)
    }

    /// The router's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// QEMU's pid on the host.
    pub fn qemu_pid(&self) -> u32 {
        self.pid
    }
    /// The QMP socket.
    pub fn qmp_socket(&self) -> &Path {
        &self.qmp
    }
    /// The guest's console log (kernel and /init).
    pub fn console_log(&self) -> &Path {
        &self.console
    }
    /// How the guest's wall clock compared with the host's after it was set at boot.
    pub fn clock(&self) -> ClockOffset {
        self.clock
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one control command; returns the guest's reply after `ok`.
    pub(crate) fn call(&self, command: &str, timeout: Duration) -> Result<String, LabError> {
        self.control()
            .call(command, timeout)
            .map_err(|p| guest_error(&self.name, p))
    }

    /// A handle for a fault's undo, which may run on another thread after the guest's
    /// owner returned: sends `command` and reports the guest's error.
    pub(crate) fn undo_call(
        &self,
        command: &'static str,
    ) -> impl FnOnce() -> Result<(), String> + Send + 'static {
        let control = Arc::clone(&self.control);
        move || {
            let mut c = control.lock().unwrap_or_else(|e| e.into_inner());
            c.call(command, COMMAND_TIMEOUT).map(drop)
        }
    }

    /// SIGSTOPs the guest's keepalived VRRP process; returns its pid in the guest.
    pub(crate) fn stop_vrrp(&self) -> Result<String, LabError> {
        self.call("stop-vrrp", COMMAND_TIMEOUT)
    }

    /// Makes the guest's keepalived write its stats file (SIGUSR2) and waits until its VRRP
    /// process blocks in that write (state D); returns its pid in the guest.
    pub(crate) fn write_stats_blocked(&self) -> Result<String, LabError> {
        self.call("stats", COMMAND_TIMEOUT)
    }

    /// Starts a process in the guest (not keepalived) that writes a file on its /tmp
    /// and waits until it blocks there (state D); returns its pid in the guest.
    pub(crate) fn fill_tmp_blocked(&self) -> Result<String, LabError> {
        self.call("fill", COMMAND_TIMEOUT)
    }

    /// Whether the guest's eth0 holds `vip`.
    pub(crate) fn holds(&self, vip: std::net::IpAddr) -> Result<bool, LabError> {
        let addrs = self.call("addrs", COMMAND_TIMEOUT)?;
        let vip = format!("{vip}/");
        Ok(addrs.split_whitespace().any(|tok| tok.starts_with(&vip)))
    }

    /// Pauses the whole VM (QMP `stop`): vCPUs and the guest's clocks stop, as during a
    /// snapshot or backup.
    pub fn pause(&self) -> Result<(), LabError> {
        qmp::execute(&self.qmp, "stop").map_err(|p| guest_error(&self.name, p))?;
        match qmp::status(&self.qmp).map_err(|p| guest_error(&self.name, p))? {
            s if s == "paused" => Ok(()),
            s => Err(guest_error(
                &self.name,
                format!("after QMP stop the VM is {s}"),
            )),
        }
    }

    /// Holds the guest's NIC traffic in QEMU's network backend (a `filter-buffer` on its
    /// netdev, added over QMP) and releases it only every `interval`: the guest sends on
    /// time, its tap sees nothing until then.
    pub fn hold_nic(&self, interval: Duration) -> Result<(), LabError> {
        let arguments = serde_json::json!({
            "qom-type": "filter-buffer",
            "id": NIC_HOLD,
            "netdev": NETDEV,
            "interval": u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
        });
        qmp::execute_with(&self.qmp, "object-add", Some(arguments))
            .map(drop)
            .map_err(|p| guest_error(&self.name, p))
    }

    /// Resumes a paused VM (QMP `cont`).
    pub fn resume(&self) -> Result<(), LabError> {
        resume(&self.qmp).map_err(|p| guest_error(&self.name, p))
    }

    /// The VM's run state (`running`, `paused`).
    pub fn status(&self) -> Result<String, LabError> {
        qmp::status(&self.qmp).map_err(|p| guest_error(&self.name, p))
    }

    /// Stops the guest's recorder (SIGINT: its last flush) and keepalived, and unpacks the
    /// guest's bundle into `bundle`, keepalived's log into `keepalived_log` and the
    /// guest kernel's log (`dmesg`) into `kernel_log`.
    pub fn finish(
        &self,
        bundle: &Path,
        keepalived_log: &Path,
        kernel_log: &Path,
    ) -> Result<(), LabError> {
        self.call("finish", FINISH_TIMEOUT)?;
        let unpack = self.disk.with_extension("out");
        let _ = fs::remove_dir_all(&unpack);
        fs::create_dir_all(&unpack).map_err(io(&unpack))?;
        cmd::run(
            "tar",
            &[
                "-xf",
                &self.disk.to_string_lossy(),
                "-C",
                &unpack.to_string_lossy(),
            ],
        )?;
        let from = unpack.join("bundle");
        fs::rename(&from, bundle).map_err(io(bundle))?;
        for (name, to) in [
            ("keepalived.log", keepalived_log),
            ("kernel.log", kernel_log),
        ] {
            let log = unpack.join(name);
            fs::copy(&log, to).map_err(io(&log))?;
        }
        Ok(())
    }

    /// Sets the guest's wall clock to the host's; see the module doc.
    fn set_clock(&self) -> Result<ClockOffset, LabError> {
        let mut lead_ns: i64 = 0;
        let mut best = None;
        for _ in 0..CLOCK_ROUNDS {
            // The next whole second at least 300 ms away, so there is time to aim.
            let second = (realtime_ns() + 300_000_000) / 1_000_000_000 + 1;
            let send_at = second * 1_000_000_000 - lead_ns;
            let wait = send_at - realtime_ns();
            if wait > 0 {
                std::thread::sleep(Duration::from_nanos(wait.unsigned_abs()));
            }
            self.call(&format!("clock {second}"), COMMAND_TIMEOUT)?;
            let measured = self.measure_clock()?;
            best = Some(measured);
            if measured.offset_ns.abs() <= CLOCK_GOOD_NS.max(measured.uncertainty_ns) {
                break;
            }
            // The guest was set `lead - delay` ahead: aim with the delay just seen.
            lead_ns -= measured.offset_ns;
        }
        best.ok_or_else(|| guest_error(&self.name, "the clock was never set"))
    }

    /// The guest's wall clock against the host's now, from one `now` round trip: after a
    /// pause it is behind by the pause ([`Guest::clock`] is the offset right after boot).
    pub fn measure_clock(&self) -> Result<ClockOffset, LabError> {
        let sent = realtime_ns();
        let reply = self.call("now", COMMAND_TIMEOUT)?;
        let received = realtime_ns();
        // busybox `date -Ins`: 2026-11-30T23:32:36,123456789+00:00
        let guest = chrono::DateTime::parse_from_rfc3339(&reply.replace(',', "."))
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| guest_error(&self.name, format!("`now` answered {reply:?}")))?;
        Ok(ClockOffset {
            offset_ns: guest - (sent + received) / 2,
            uncertainty_ns: (received - sent) / 2,
        })
    }
}

/// Removes the hold of [`Guest::hold_nic`] from the VM behind the QMP socket `qmp`.
pub(crate) fn release_nic(qmp: &Path) -> Result<(), String> {
    let arguments = serde_json::json!({ "id": NIC_HOLD });
    qmp::execute_with(qmp, "object-del", Some(arguments)).map(drop)
}

/// Resumes the VM behind the QMP socket `qmp` and checks that it runs.
pub(crate) fn resume(qmp: &Path) -> Result<(), String> {
    qmp::execute(qmp, "cont")?;
    match qmp::status(qmp)? {
        s if s == "running" => Ok(()),
        s => Err(format!("after QMP cont the VM is {s}")),
    }
}
