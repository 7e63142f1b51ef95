//! The `qemu` backend's [`Machine`]: a router that is a QEMU guest on a tap in the lab's
//! bridge ([`Guest`]), its keepalived reached over the guest's control channel, the VM
//! itself over QMP ([`Vm`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::accel::Accel;
use super::{check_qemu, command, create_tap, guest_error, image, release_nic, resume, Boot};
use super::{Guest, GUEST_IFACE, TAP_PREFIX};
use crate::cmd;
use crate::fault::{fault_error, Guard};
use crate::keepalived;
use crate::lab::{Site, LOG_TAIL_LINES};
use crate::machine::{own_bundle_dir, saved_log_path, Finished, Machine, Recorder, Vm};
use crate::registry::{self, Phase};
use crate::spec::router_v4;
use crate::LabError;

/// The faults a QEMU guest takes.
pub(crate) const FAULTS: &[&str] = &[
    "sigstop",
    "cpu-hog",
    "io-stall",
    "vm-pause",
    "vnic-delay",
    "vm-drain",
];

/// Why a QEMU guest does not take the other faults.
pub(crate) const REFUSAL: &str =
    "a QEMU guest takes only sigstop, cpu-hog, io-stall, vm-pause, vnic-delay and vm-drain";

/// Router `name`'s tap in the switch namespace: `tap-vr1`.
pub(crate) fn bridge_port(name: &str) -> String {
    format!("{TAP_PREFIX}{name}")
}

/// Checks QEMU is installed and builds the guest image (or finds it cached): before
/// anything of the lab exists, for it takes a few seconds.
pub(crate) fn prepare() -> Result<image::Image, LabError> {
    check_qemu()?;
    image::ensure(&super::guest_vmlat()?)
}

/// A router in a QEMU guest.
#[derive(Debug)]
pub(crate) struct QemuRouter {
    pub(crate) guest: Guest,
    lab: u64,
    qemu_log: PathBuf,
    accel: Accel,
}

/// Creates router `index`'s tap, boots its guest on it and waits until the guest's
/// keepalived and recorder run. Gives up once `stop` is set.
pub(crate) fn create(
    site: &Site<'_>,
    index: usize,
    image: &image::Image,
    stop: &AtomicBool,
) -> Result<QemuRouter, LabError> {
    let spec = site
        .spec
        .routers
        .get(index)
        .ok_or_else(|| LabError::UnknownRouter(format!("#{index}")))?;
    let name = spec.name.as_str();
    let tap = bridge_port(name);
    registry::step(|| create_tap(site.switch_netns, &tap, site.bridge))?;
    let boot = Boot {
        name,
        dir: site.dir,
        switch_netns: site.switch_netns,
        tap: &tap,
        addr: format!("{}/24", router_v4(index)),
        keepalived_conf: keepalived::render_config(site.spec, index, site.run_id),
        image,
        mac_suffix: u8::try_from(index + 1).unwrap_or(u8::MAX),
        tmp_disk: spec.tmp_disk.as_deref(),
    };
    let mut qemu = command(&boot)?;
    let pid = registry::spawn_child(site.id, name, &mut qemu)?;
    let id = site.id;
    let qemu_log = site.dir.join(format!("{name}.qemu.log"));
    let alive = || match registry::child_exit(id, name) {
        _ if stop.load(Ordering::Relaxed) => Err("interrupted while booting".into()),
        // teardown_all (a signal) took the lab, and killed QEMU with it.
        None if !registry::is_live(id) => Err("the lab was torn down while booting".into()),
        None => Ok(()),
        Some(status) => Err(exited(&qemu_log, &status.to_string())),
    };
    let guest = Guest::start(name, site.dir, pid, alive).map_err(|e| {
        if stop.load(Ordering::Relaxed) {
            LabError::Interrupted
        } else {
            e
        }
    })?;
    Ok(QemuRouter {
        guest,
        lab: site.id,
        qemu_log,
        accel: image.accel.clone(),
    })
}

fn exited(qemu_log: &Path, status: &str) -> String {
    format!(
        "QEMU exited ({status}); {}:\n{}",
        qemu_log.display(),
        cmd::tail(qemu_log, LOG_TAIL_LINES)
    )
}

impl Machine for QemuRouter {
    fn name(&self) -> &str {
        self.guest.name()
    }

    /// `eth0`, as the guest's own recorder names it.
    fn capture_point(&self) -> String {
        GUEST_IFACE.to_owned()
    }

    fn recorder(&self) -> Recorder {
        Recorder::Own
    }

    fn log(&self) -> &Path {
        self.guest.console_log()
    }

    fn check_alive(&self) -> Result<(), LabError> {
        match registry::child_exit(self.lab, self.guest.name()) {
            Some(status) => Err(guest_error(
                self.guest.name(),
                exited(&self.qemu_log, &status.to_string()),
            )),
            None => Ok(()),
        }
    }

    fn holds_vip(&self, vip: IpAddr) -> Result<bool, LabError> {
        self.guest.holds(vip)
    }

    /// The guest's /init stops its keepalived's VRRP process and checks state T.
    fn stop_vrrp(&self) -> Result<Guard, LabError> {
        let guard = Guard::register(
            format!(
                "the SIGSTOP of {}'s keepalived VRRP process in its guest",
                self.guest.name()
            ),
            Phase::BeforeLabs,
            self.guest.undo_call("cont-vrrp"),
        )?;
        self.guest
            .stop_vrrp()
            .map_err(|e| fault_error("sigstop", e.to_string()))?;
        Ok(guard)
    }

    fn write_stats_blocked(&self) -> Result<(), LabError> {
        self.guest
            .write_stats_blocked()
            .map(drop)
            .map_err(|e| fault_error("io-stall", e.to_string()))
    }

    fn vm(&self) -> Option<&dyn Vm> {
        Some(self)
    }

    /// Measures the guest's clock once more, stops its recorder and keepalived, and
    /// unpacks its bundle (`bundle-ROUTER`), keepalived's log and its kernel's
    /// (`kernel-ROUTER.log`).
    fn finish(&self, out_dir: &Path) -> Result<Finished, LabError> {
        let name = self.guest.name();
        let dir = out_dir.join(own_bundle_dir(name));
        let ended = self.guest.measure_clock()?;
        let kernel_log = out_dir.join(format!("kernel-{name}.log"));
        self.guest
            .finish(&dir, &saved_log_path(out_dir, name), &kernel_log)?;
        let ms = |ns: i64| ns as f64 / 1e6;
        let boot = self.guest.clock();
        Ok(Finished {
            findings: vec![
                format!("{name} ran under {}", self.accel.describe()),
                format!(
                    "{name}'s wall clock: guest − host = {:+.3} ms ± {:.3} ms once set at boot, {:+.3} ms ± {:.3} ms at the end (a VM pause leaves it behind by the pause)",
                    ms(boot.offset_ns),
                    ms(boot.uncertainty_ns),
                    ms(ended.offset_ns),
                    ms(ended.uncertainty_ns)
                ),
            ],
            notes: vec![format!("{name}'s own bundle in {}", dir.display())],
            bundle: Some(dir),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Vm for QemuRouter {
    fn host_pid(&self) -> Result<u32, LabError> {
        Ok(self.guest.qemu_pid())
    }

    /// QMP `stop`; the guard sends `cont`.
    fn pause(&self) -> Result<Guard, LabError> {
        // Its own copy: the undo may run on the signal thread.
        let qmp = self.guest.qmp_socket().to_path_buf();
        let guard = Guard::register(
            format!("the QMP stop of {}'s VM", self.guest.name()),
            Phase::BeforeLabs,
            move || resume(&qmp),
        )?;
        self.guest
            .pause()
            .map_err(|e| fault_error("vm-pause", e.to_string()))?;
        Ok(guard)
    }

    /// A `filter-buffer` on the guest's netdev (QMP `object-add`); the guard removes it.
    fn hold_nic(&self, every: Duration) -> Result<Guard, LabError> {
        let qmp = self.guest.qmp_socket().to_path_buf();
        let guard = Guard::register(
            format!("the hold on {}'s NIC", self.guest.name()),
            Phase::BeforeLabs,
            move || release_nic(&qmp),
        )?;
        self.guest
            .hold_nic(every)
            .map_err(|e| fault_error("vnic-delay", e.to_string()))?;
        Ok(guard)
    }

    /// The guest's /init starts a shell that writes /tmp/vmlat-fill and checks it is in D.
    fn fill_tmp_blocked(&self) -> Result<(), LabError> {
        self.guest
            .fill_tmp_blocked()
            .map(drop)
            .map_err(|e| fault_error("vm-drain", e.to_string()))
    }

    /// QMP `block_resize` of the guest's /tmp drive, on a thread of its own.
    fn resize_tmp_disk(
        &self,
        size: u64,
    ) -> Result<std::sync::mpsc::Receiver<Result<(), String>>, LabError> {
        Ok(super::resize_tmp_disk(self.guest.qmp_socket(), size))
    }
}
