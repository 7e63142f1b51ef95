//! Where one router runs, seen from the lab: the one interface every backend implements
//! (`netns`, [`crate::qemu`], `vagrant`), so that the lab, its faults and the runner ask a
//! router's machine what they need instead of matching on its backend.
//!
//! A machine answers for its own router only: where its interface is captured, whether it
//! holds the VIP, stopping and continuing its keepalived's VRRP process, making that process
//! write its stats file, and at the end handing back what it recorded and logged itself.
//! What only some backends have comes as a handle that is absent elsewhere:
//! [`Machine::host_keepalived`] (keepalived runs as processes of this host: cgroups,
//! affinity, firewall rules in its namespace) and [`Machine::vm`] (a VM with a process on
//! this host: pause, a held NIC, vCPU threads, QEMU's disk I/O). A fault that needs a handle
//! the machine lacks says which backend it needs; scenario files are checked for that before
//! anything runs ([`crate::Backend::faults`]).

use std::any::Any;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::fault::Guard;
use crate::netns::HostKeepalived;
use crate::LabError;

/// Who records a router's own interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorder {
    /// The lab's recorder on this host captures [`Machine::capture_point`].
    Host,
    /// A recorder on the machine itself; [`Machine::finish`] fetches its bundle.
    Own,
}

/// What a machine handed back at the end of a run.
#[derive(Debug, Default)]
pub struct Finished {
    /// Its own recording, when it made one ([`Recorder::Own`]).
    pub bundle: Option<PathBuf>,
    /// Facts for the run's result (how its clock compared with the host's).
    pub findings: Vec<String>,
    /// Lines for the user: what was fetched, and what could not be kept.
    pub notes: Vec<String>,
}

/// One router's machine. Implementations live in one module per backend.
pub trait Machine: fmt::Debug + Send + Sync {
    /// The router's name.
    fn name(&self) -> &str;

    /// Its interface's capture point as the recorder that captures it names it
    /// ([`Machine::recorder`]): `eth0@NETNS` for the host's, `eth0` for a guest's own.
    fn capture_point(&self) -> String;

    /// Who records [`Machine::capture_point`].
    fn recorder(&self) -> Recorder;

    /// The file that says most about its keepalived when it fails: keepalived's own log,
    /// or a guest's console.
    fn log(&self) -> &Path;

    /// Fails, saying why, once its keepalived (or the VM it runs in) is gone.
    fn check_alive(&self) -> Result<(), LabError>;

    /// Whether its interface holds `vip`, i.e. its keepalived is master.
    fn holds_vip(&self, vip: IpAddr) -> Result<bool, LabError>;

    /// SIGSTOPs its keepalived's VRRP process (the one that sends adverts) and checks it
    /// stopped; the guard sends SIGCONT.
    fn stop_vrrp(&self) -> Result<Guard, LabError>;

    /// SIGUSR2 to its keepalived, whose VRRP process then writes /tmp/keepalived.stats;
    /// returns once that process blocks in the write (state D), which it does only when
    /// its /tmp is on a stalled disk.
    fn write_stats_blocked(&self) -> Result<(), LabError>;

    /// Its keepalived as processes of this host, when it runs as such.
    fn host_keepalived(&self) -> Option<&HostKeepalived> {
        None
    }

    /// The VM it runs in, when it is one.
    fn vm(&self) -> Option<&dyn Vm> {
        None
    }

    /// After the recording: stops what runs on the machine for the lab (its own recorder,
    /// keepalived) as far as it must, and puts its bundle and logs into `out_dir`
    /// ([`saved_log_path`], [`own_bundle_dir`]). Call before the lab's teardown.
    fn finish(&self, out_dir: &Path) -> Result<Finished, LabError>;

    /// For the backend-specific handles of the public API ([`crate::Lab::guest`]).
    fn as_any(&self) -> &dyn Any;
}

/// A VM a router runs in, seen from the host that runs it.
pub trait Vm {
    /// Its process on this host (QEMU), or why the lab does not know it.
    fn host_pid(&self) -> Result<u32, LabError>;

    /// Pauses the whole VM, as snapshot and backup tools do, and checks it is paused; the
    /// guard resumes it.
    fn pause(&self) -> Result<Guard, LabError>;

    /// Holds its NIC's traffic in the hypervisor's network backend, released every
    /// `every`; the guard removes the hold.
    fn hold_nic(&self, every: Duration) -> Result<Guard, LabError>;

    /// Starts a process in the VM (not keepalived) that writes to the VM's /tmp disk, and
    /// returns once it blocks there (state D): the disk is stalled on the host.
    fn fill_tmp_blocked(&self) -> Result<(), LabError> {
        Err(crate::fault::fault_error(
            "vm-drain",
            "this VM has no /tmp disk of the lab's",
        ))
    }

    /// Asks the hypervisor to resize the VM's /tmp disk to `size` bytes, its own size, as
    /// `virsh blockresize` does: the resize first drains the disk, waiting for every
    /// request in flight with the VM's main loop held. Its answer comes on the channel.
    fn resize_tmp_disk(&self, size: u64) -> Result<Receiver<Result<(), String>>, LabError> {
        let _ = size;
        Err(crate::fault::fault_error(
            "vm-drain",
            "this VM's hypervisor is not driven by the lab",
        ))
    }
}

/// Where a machine's keepalived log goes in a scenario's output dir:
/// `keepalived-ROUTER.log`.
pub fn saved_log_path(dir: &Path, router: &str) -> PathBuf {
    dir.join(format!("keepalived-{router}.log"))
}

/// The bundle of a machine that records itself, in a scenario's output dir: `bundle-vr1`.
pub fn own_bundle_dir(router: &str) -> String {
    format!("{}-{router}", crate::runner::BUNDLE_DIR)
}
