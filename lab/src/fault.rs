//! Faults injected into a running lab, each one real: the kernel stops, freezes, starves or
//! blocks the target's keepalived, the bridge drops its adverts, or its firewall drops the
//! adverts it should hear. Nothing is simulated, so the recorder sees exactly what it would
//! see in an incident.
//!
//! Life of a fault: [`Prepared::new`] runs before the lab is built and changes its spec
//! where the fault needs it (pins keepalived to the CPU to starve; puts its /tmp on a
//! throttled disk); [`Prepared::inject`] starts the fault on the built lab and returns a
//! [`Guard`]; [`Guard::clear`] (or dropping the guard) ends it.
//!
//! Every undo is registered in the lab registry *before* the change it undoes is made, so
//! [`teardown_all`](crate::teardown_all) after Ctrl-C finds it: fault undos run before the
//! labs are torn down (a frozen keepalived cannot exit), and the removal of the throttled
//! disk after (it is keepalived's /tmp until keepalived exits).
//!
//! | kind | how | undone by |
//! |------|-----|-----------|
//! | sigstop | SIGSTOP to the VRRP child (the `-r` pid); in a QEMU guest, sent by the guest's /init over the control channel; in a Vagrant VM, over `vagrant ssh` | SIGCONT |
//! | vm-pause | QMP `stop` of the target's QEMU guest (`virsh suspend` of a Vagrant VM): vCPUs and guest clocks stop, as during a snapshot or backup | QMP `cont` (`virsh resume`) |
//! | vm-drain | io-stall's throttled /tmp disk on the target guest; a guest process writes /tmp and blocks, then QMP `block_resize` of that disk, whose drain holds QEMU's main loop (and the big lock) until the write completes: the whole VM stands still, keepalived idle in it | throttle lifted; the drain and the resize finish |
//! | vnic-delay | QMP `object-add` of a `filter-buffer` on the target guest's netdev, releasing what it holds every LENGTH: the guest sends on time, its tap sees nothing | QMP `object-del` |
//! | freezer | keepalived's two processes in a cgroup v1 freezer set to FROZEN | THAWED, processes moved back, cgroup removed |
//! | freezer-v2 | keepalived's two processes in a new cgroup v2 cgroup, `cgroup.freeze` 1 (as `docker pause`, `systemctl freeze`) | `cgroup.freeze` 0, processes moved back, cgroup removed |
//! | cpu-hog | `chrt -f 99 taskset -c CPU stress-ng --cpu 1` with keepalived pinned to CPU, its VRRP process at SCHED_RR 50, and `kernel.sched_rt_runtime_us` = -1; on a QEMU guest, its vCPU threads moved onto CPU at SCHED_RR 50 instead (the host preempting the guest) | hog killed, policy, affinity and sysctl restored |
//! | io-stall | the VRRP child in a blkio cgroup whose writes to the disk under the loop device holding its /tmp are throttled to 1 byte/s, then SIGUSR2 (keepalived writes /tmp/keepalived.stats); on a QEMU guest, the loop device is the guest's /tmp disk (`cache=none`) and the whole QEMU process is throttled, so the guest's write waits on QEMU's I/O thread, which waits on the host's disk | throttle lifted, cgroup removed |
//! | port-disabled | the target's bridge port set to state disabled | state forwarding |
//! | vrrp-firewall | `iptables -w -I INPUT -p 112 -m comment --comment vmlat-fault-PID-SEQ -j DROP` in the target's namespace (`ip6tables` too in an IPv6 lab) | that rule deleted |

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::Signal;

use vmlat_tracer::cgroup::{v2_frozen, CgroupMount, CgroupMounts};

use crate::cmd;
use crate::machine::Vm;
use crate::registry::{self, Phase};
use crate::scenario::{FaultKind, FaultSpec};
use crate::spec::LabSpec;
use crate::{HostKeepalived, Lab, LabError};

/// Names of the cgroups and disk dirs of this process's faults: `vmlat-fault-PID-SEQ`.
pub const FAULT_PREFIX: &str = "vmlat-fault-";

/// Where io-stall keeps its disk image and mount point. On the machine's real disk, not
/// /run: the loop device's direct I/O must reach a block device blkio can throttle.
pub const DISK_ROOT: &str = "/var/tmp/vmlat";

/// cgroup v1 hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where the cgroup v2 hierarchy goes on a hybrid machine (systemd's place for it), for
/// the error that says how to mount it.
const CGROUP2_HYBRID: &str = "/sys/fs/cgroup/unified";

/// The RT throttling knob: -1 lets a SCHED_FIFO task hold a CPU for good.
const RT_RUNTIME: &str = "/proc/sys/kernel/sched_rt_runtime_us";

/// How long a fault gets to take hold (a process to stop, a cgroup to freeze).
pub(crate) const TAKE_HOLD: Duration = Duration::from_secs(2);

/// Suffix of cpu-hog's marker file in [`DISK_ROOT`]: "SAVED_RT_RUNTIME HOG_PID".
const RT_MARKER: &str = ".rt";

/// Size of io-stall's disk image: room for ext4 and a few stats files.
const DISK_MIB: u64 = 64;

/// The fault sequence of this process, for unique names.
static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique_name() -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{FAULT_PREFIX}{}-{seq}", std::process::id())
}

/// A registered undo. [`Guard::clear`] runs it and reports; dropping the guard runs it too
/// (and prints what went wrong, since Drop cannot return it).
#[derive(Debug)]
#[must_use = "dropping the guard ends the fault at once"]
pub struct Guard {
    id: u64,
}

impl Guard {
    /// Registers `undo`, to run when the guard is cleared or dropped, or at
    /// [`teardown_all`](crate::teardown_all) in `phase`: call it before making the change
    /// `undo` reverts.
    pub(crate) fn register(
        what: String,
        phase: Phase,
        undo: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Result<Guard, LabError> {
        registry::register_cleanup(what, phase, undo).map(|id| Guard { id })
    }

    /// Ends the fault (or removes what it built) now.
    pub fn clear(self) -> Result<(), LabError> {
        let id = self.id;
        std::mem::forget(self);
        registry::run_cleanup(id)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = registry::run_cleanup(self.id) {
            eprintln!("vmlat-lab: {e}");
        }
    }
}

/// A fault ready to inject into a lab built from the spec it prepared.
pub struct Prepared {
    spec: FaultSpec,
    injector: Box<dyn Inject>,
    /// What was built around the lab (io-stall's disk); removed after the lab is gone.
    env: Option<Guard>,
}

/// One fault kind: starts the fault on the target and returns the guard that ends it.
trait Inject: Send {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError>;
}

impl Prepared {
    /// Prepares `spec`'s fault, changing `lab` where the fault needs it. Call before
    /// [`Lab::build`]; keep the result until the lab is torn down.
    pub fn new(spec: &FaultSpec, lab: &mut LabSpec) -> Result<Prepared, LabError> {
        let ipv6 = lab.ipv6;
        let router = lab
            .routers
            .iter_mut()
            .find(|r| r.name == spec.target)
            .ok_or_else(|| LabError::UnknownRouter(spec.target.clone()))?;
        let mut env = None;
        if !spec.kind.reaches(router.backend) {
            return Err(fault_error(
                spec.kind.name(),
                format!(
                    "{} on {}: {}",
                    spec.kind.name(),
                    spec.target,
                    router.backend.refusal()
                ),
            ));
        }
        // Where keepalived is a process of this host, it is pinned and given its stalled
        // /tmp when it starts; a VM is given its stalled disk when it boots.
        let on_host = router.backend.runs_keepalived_here();
        let injector: Box<dyn Inject> = match spec.kind {
            FaultKind::Sigstop => Box::new(Sigstop),
            FaultKind::VmPause => Box::new(VmPause),
            FaultKind::VnicDelay => Box::new(VnicDelay {
                length: spec.length,
            }),
            FaultKind::Freezer => Box::new(Freezer::new()?),
            FaultKind::FreezerV2 => Box::new(FreezerV2::new()?),
            FaultKind::CpuHog { cpu } => {
                let hog = CpuHog::new(cpu)?;
                if on_host {
                    router.cpu = Some(hog.cpu);
                }
                Box::new(hog)
            }
            FaultKind::VmDrain => {
                let (stall, disk) = IoStall::new(true)?;
                router.tmp_disk = match &stall.tmp {
                    StallTmp::Device(dev) => Some(dev.clone()),
                    StallTmp::Mount(_) => None,
                };
                env = Some(disk);
                Box::new(VmDrain { stall })
            }
            FaultKind::IoStall => {
                let (stall, disk) = IoStall::new(!on_host)?;
                match &stall.tmp {
                    StallTmp::Mount(dir) => router.tmp = Some(dir.clone()),
                    StallTmp::Device(dev) => router.tmp_disk = Some(dev.clone()),
                }
                env = Some(disk);
                Box::new(stall)
            }
            FaultKind::PortDisabled => Box::new(PortDisabled),
            FaultKind::VrrpFirewall => Box::new(VrrpFirewall::new(ipv6)?),
        };
        Ok(Prepared {
            spec: spec.clone(),
            injector,
            env,
        })
    }

    /// Starts the fault on the target router.
    pub fn inject(&self, lab: &Lab) -> Result<Guard, LabError> {
        self.injector.inject(lab, &self.spec.target)
    }

    /// Removes what was built around the lab; call after the lab's teardown.
    pub fn finish(mut self) -> Result<(), LabError> {
        self.env.take().map_or(Ok(()), Guard::clear)
    }
}

/// A fault's error: what went wrong, and the fix where there is one.
pub(crate) fn fault_error(fault: &'static str, problem: impl Into<String>) -> LabError {
    LabError::Fault {
        fault,
        problem: problem.into(),
    }
}

// ---- sigstop ----

/// SIGSTOP to the VRRP child: keepalived's adverts stop mid-run, as under a debugger or a
/// stray `kill -STOP`. How it reaches the process is the machine's business.
struct Sigstop;

impl Inject for Sigstop {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        lab.router(target)?.machine().stop_vrrp()
    }
}

/// The VM router `target` runs in, or an error saying `fault` needs one.
fn vm_of<'l>(lab: &'l Lab, target: &str, fault: &'static str) -> Result<&'l dyn Vm, LabError> {
    let r = lab.router(target)?;
    r.machine().vm().ok_or_else(|| {
        fault_error(
            fault,
            format!(
                "{target} runs on backend {}, not in a VM",
                r.backend().name()
            ),
        )
    })
}

/// Router `target`'s keepalived as processes of this host, or an error saying `fault`
/// needs that.
fn host_keepalived<'l>(
    lab: &'l Lab,
    target: &str,
    fault: &'static str,
) -> Result<&'l HostKeepalived, LabError> {
    let r = lab.router(target)?;
    r.host_keepalived().ok_or_else(|| {
        fault_error(
            fault,
            format!(
                "{target}'s keepalived runs on backend {}, not as processes of this host",
                r.backend().name()
            ),
        )
    })
}

// ---- vm-pause ----

/// The whole VM paused, what snapshot and backup tools do: the guest's vCPUs and clocks
/// stop, its NIC neither sends nor receives.
struct VmPause;

impl Inject for VmPause {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        vm_of(lab, target, "vm-pause")?.pause()
    }
}

// ---- vnic-delay ----

/// The guest's NIC traffic held in the hypervisor's network backend for `length`,
/// released every `length`, the hold removed at the end.
struct VnicDelay {
    length: std::time::Duration,
}

impl Inject for VnicDelay {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        vm_of(lab, target, "vnic-delay")?.hold_nic(self.length)
    }
}

// ---- cgroup v1 helpers ----

/// A cgroup of ours in one v1 hierarchy, and where its processes came from.
#[derive(Debug, Clone)]
struct Cgroup {
    dir: PathBuf,
    /// (pid, its cgroup dir before we moved it).
    origins: Vec<(u32, PathBuf)>,
}

impl Cgroup {
    /// Plans a cgroup `name` in `controller`'s hierarchy for `pids`; creates nothing.
    fn plan(
        fault: &'static str,
        controller: &'static str,
        name: &str,
        pids: &[u32],
    ) -> Result<Cgroup, LabError> {
        let root = hierarchy(fault, controller)?;
        let origins = pids
            .iter()
            .map(|&pid| {
                (
                    pid,
                    root.join(current_cgroup(controller, pid).unwrap_or_default()),
                )
            })
            .collect();
        Ok(Cgroup {
            dir: root.join(name),
            origins,
        })
    }

    /// Creates the cgroup and moves the planned processes into it.
    fn enter(&self) -> Result<(), String> {
        fs::create_dir(&self.dir).map_err(|e| format!("mkdir {}: {e}", self.dir.display()))?;
        for (pid, _) in &self.origins {
            self.write("cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.dir.join(file);
        fs::write(&path, value).map_err(|e| format!("echo {value} > {}: {e}", path.display()))
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    /// Moves every process back where it came from (the hierarchy's root for strangers)
    /// and removes the cgroup. Nothing to do if it was never created.
    fn remove(&self) -> Result<(), String> {
        if !self.dir.exists() {
            return Ok(());
        }
        let root = self.dir.parent().unwrap_or(Path::new(CGROUP_ROOT));
        for pid in self.read("cgroup.procs").split_whitespace() {
            let home = pid
                .parse::<u32>()
                .ok()
                .and_then(|p| self.origins.iter().find(|(o, _)| *o == p))
                .map_or(root, |(_, dir)| dir.as_path());
            let procs = home.join("cgroup.procs");
            // A process that exited meanwhile cannot be moved, and need not be.
            if let Err(e) = fs::write(&procs, pid) {
                if cmd::pid_alive(pid.parse().unwrap_or(-1)) {
                    return Err(format!("echo {pid} > {}: {e}", procs.display()));
                }
            }
        }
        let dir = &self.dir;
        let mut result = Ok(());
        // rmdir is refused while the kernel still counts a leaving task; that takes a moment.
        cmd::wait_until(TAKE_HOLD, || {
            result = fs::remove_dir(dir);
            result.is_ok()
        });
        result.map_err(|e| {
            format!(
                "rmdir {}: {e} (a process is still in it: see {}/cgroup.procs)",
                dir.display(),
                dir.display()
            )
        })
    }
}

/// The v1 hierarchy of `controller`, or an error saying how to mount it.
fn hierarchy(fault: &'static str, controller: &str) -> Result<PathBuf, LabError> {
    let root = Path::new(CGROUP_ROOT).join(controller);
    if root.join("cgroup.procs").exists() {
        Ok(root)
    } else {
        Err(fault_error(
            fault,
            format!(
                "no cgroup v1 {controller} hierarchy at {} (cgroup v2 only?): mount one with \
                 `mkdir -p {d} && mount -t cgroup -o {controller} {controller} {d}`",
                root.display(),
                d = root.display()
            ),
        ))
    }
}

/// A process's cgroup path in `controller`'s v1 hierarchy, relative to its root.
fn current_cgroup(controller: &str, pid: u32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

// ---- freezer ----

/// keepalived's processes in a cgroup v1 freezer: frozen tasks show state D in the
/// scheduler's records, the trap `docs/verdicts.md` warns about.
struct Freezer;

impl Freezer {
    fn new() -> Result<Freezer, LabError> {
        hierarchy("freezer", "freezer").map(|_| Freezer)
    }
}

impl Inject for Freezer {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let k = host_keepalived(lab, target, "freezer")?;
        let pids = [k.main_pid(), k.vrrp_pid()?];
        let cg = Cgroup::plan("freezer", "freezer", &unique_name(), &pids)?;
        let undo = cg.clone();
        let guard = Guard::register(
            format!("the freezer cgroup {}", cg.dir.display()),
            Phase::BeforeLabs,
            move || {
                if undo.dir.exists() {
                    undo.write("freezer.state", "THAWED")?;
                }
                undo.remove()
            },
        )?;
        cg.enter().map_err(|p| fault_error("freezer", p))?;
        cg.write("freezer.state", "FROZEN")
            .map_err(|p| fault_error("freezer", p))?;
        let frozen = cmd::wait_until(TAKE_HOLD, || cg.read("freezer.state").trim() == "FROZEN");
        if !frozen {
            return Err(fault_error(
                "freezer",
                format!(
                    "{} did not reach FROZEN within {TAKE_HOLD:?} (it says {:?})",
                    cg.dir.display(),
                    cg.read("freezer.state").trim()
                ),
            ));
        }
        Ok(guard)
    }
}

// ---- cgroup v2 helpers ----

/// The cgroup v2 mount, or an error saying how to mount it.
fn v2_hierarchy(fault: &'static str) -> Result<CgroupMount, LabError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|source| LabError::Io {
        path: PathBuf::from("/proc/self/mountinfo"),
        source,
    })?;
    v2_hierarchy_in(fault, &mountinfo)
}

/// [`v2_hierarchy`] from `mountinfo`'s text.
fn v2_hierarchy_in(fault: &'static str, mountinfo: &str) -> Result<CgroupMount, LabError> {
    CgroupMounts::parse(mountinfo).v2.ok_or_else(|| {
        fault_error(
            fault,
            format!(
                "no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/self/mountinfo): \
                 mount one with `mkdir -p {CGROUP2_HYBRID} && mount -t cgroup2 none \
                 {CGROUP2_HYBRID}`"
            ),
        )
    })
}

/// A process's cgroup v2 path (the `0::` line of /proc/PID/cgroup), e.g. `/` or
/// `/system.slice/keepalived.service`.
fn current_v2_cgroup(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

impl Cgroup {
    /// Plans a cgroup `name` at the top of the v2 hierarchy `mount` for `pids`, each of
    /// which goes back to its current v2 cgroup on removal; creates nothing.
    fn plan_v2(mount: &CgroupMount, name: &str, pids: &[u32]) -> Cgroup {
        let origins = pids
            .iter()
            .map(|&pid| {
                let home = current_v2_cgroup(pid)
                    .and_then(|cg| mount.dir_of(&cg))
                    .unwrap_or_else(|| mount.dir.clone());
                (pid, home)
            })
            .collect();
        Cgroup {
            dir: mount.dir.join(name),
            origins,
        }
    }

    /// Thaws a v2 cgroup (`cgroup.freeze` 0) and waits for `cgroup.events` to say
    /// `frozen 0`. Nothing to do if the cgroup or its freezer file does not exist.
    fn thaw_v2(&self) -> Result<(), String> {
        if !self.dir.join("cgroup.freeze").exists() {
            return Ok(());
        }
        self.write("cgroup.freeze", "0")?;
        if cmd::wait_until(TAKE_HOLD, || {
            v2_frozen(&self.read("cgroup.events")) != Some(true)
        }) {
            Ok(())
        } else {
            Err(format!(
                "{} still says frozen {TAKE_HOLD:?} after `echo 0 > cgroup.freeze` (see its \
                 cgroup.events)",
                self.dir.display()
            ))
        }
    }
}

// ---- freezer-v2 ----

/// keepalived's processes frozen by the cgroup v2 freezer (`cgroup.freeze`), as
/// `docker pause` and `systemctl freeze` do. Unlike v1, a v2-frozen task is parked in
/// the signal-delivery path: the scheduler shows it switching out in S, outside any
/// syscall, not D; only the recorded freezer state tells it from an idle sleeper.
struct FreezerV2 {
    mount: CgroupMount,
}

impl FreezerV2 {
    fn new() -> Result<FreezerV2, LabError> {
        v2_hierarchy("freezer-v2").map(|mount| FreezerV2 { mount })
    }
}

impl Inject for FreezerV2 {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let fail = |p| fault_error("freezer-v2", p);
        let k = host_keepalived(lab, target, "freezer-v2")?;
        let pids = [k.main_pid(), k.vrrp_pid()?];
        let cg = Cgroup::plan_v2(&self.mount, &unique_name(), &pids);
        let undo = cg.clone();
        let guard = Guard::register(
            format!("the cgroup v2 freeze of {}", cg.dir.display()),
            Phase::BeforeLabs,
            move || {
                // Moving a task out of a frozen cgroup thaws it too: try that whatever
                // the thaw says, and report both.
                let thawed = undo.thaw_v2();
                let removed = undo.remove();
                match (thawed, removed) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
                    (Err(a), Err(b)) => Err(format!("{a}; {b}")),
                }
            },
        )?;
        cg.enter().map_err(fail)?;
        if !cg.dir.join("cgroup.freeze").exists() {
            return Err(fail(format!(
                "{} has no cgroup.freeze: the cgroup v2 freezer needs Linux 5.2 or later (use \
                 kind = \"freezer\", the v1 freezer, on this kernel)",
                cg.dir.display()
            )));
        }
        cg.write("cgroup.freeze", "1").map_err(fail)?;
        let frozen = cmd::wait_until(TAKE_HOLD, || {
            v2_frozen(&cg.read("cgroup.events")) == Some(true)
        });
        if !frozen {
            return Err(fail(format!(
                "{} did not say `frozen 1` in cgroup.events within {TAKE_HOLD:?} (it says {:?})",
                cg.dir.display(),
                cg.read("cgroup.events").trim()
            )));
        }
        Ok(guard)
    }
}

// ---- cpu-hog ----

/// A SCHED_FIFO 99 busy loop on the CPU keepalived is pinned to. With RT throttling on,
/// the kernel would still give SCHED_OTHER tasks 5% of the CPU; it is lifted for the
/// fault only, so keepalived gets nothing at all, as behind a real runaway RT task.
struct CpuHog {
    cpu: u32,
}

impl CpuHog {
    fn new(cpu: Option<u32>) -> Result<CpuHog, LabError> {
        cmd::require(&[
            ("chrt", "util-linux"),
            ("taskset", "util-linux"),
            ("stress-ng", "stress-ng"),
        ])?;
        let online = online_cpus();
        if online.len() < 2 {
            return Err(fault_error(
                "cpu-hog",
                "needs at least 2 online CPUs: the hog takes one whole CPU, and the recorder \
                 and the other routers need another",
            ));
        }
        let cpu = match cpu {
            Some(c) if online.contains(&c) => c,
            Some(c) => {
                return Err(fault_error(
                    "cpu-hog",
                    format!("CPU {c} is not online (online: {online:?}): change `cpu`"),
                ))
            }
            // The last CPU: CPU 0 takes most housekeeping (timers, the recorder's start).
            None => online.last().copied().unwrap_or(1),
        };
        if cpu == 0 {
            return Err(fault_error(
                "cpu-hog",
                "starving CPU 0 would also starve housekeeping the recorder needs: pick another `cpu`",
            ));
        }
        Ok(CpuHog { cpu })
    }

    /// The threads the hog starves, each with its policy before: keepalived's VRRP
    /// process (all its threads, already pinned to the hog's CPU), or a VM's vCPU threads,
    /// moved there at the fault (the host preempting the guest, keepalived inside
    /// untouched).
    fn victims(&self, lab: &Lab, target: &str) -> Result<Vec<Victim>, LabError> {
        let machine = lab.router(target)?.machine();
        let ids: Vec<(u32, bool)> = match (machine.host_keepalived(), machine.vm()) {
            (Some(k), _) => vec![(k.vrrp_pid()?, true)],
            (None, Some(vm)) => {
                let qemu = vm.host_pid()?;
                let vcpus = vcpu_threads(qemu);
                if vcpus.is_empty() {
                    return Err(fault_error(
                        "cpu-hog",
                        format!("no vCPU thread (CPU n/TCG, CPU n/KVM) found in QEMU {qemu}"),
                    ));
                }
                vcpus.into_iter().map(|tid| (tid, false)).collect()
            }
            (None, None) => {
                return Err(fault_error(
                    "cpu-hog",
                    format!("{target} has neither keepalived processes nor a VM on this host"),
                ))
            }
        };
        ids.into_iter()
            .map(|(id, all_threads)| {
                let policy = sched_policy(id).ok_or_else(|| {
                    fault_error(
                        "cpu-hog",
                        format!("cannot read the scheduling policy of {id}"),
                    )
                })?;
                Ok(Victim {
                    id,
                    all_threads,
                    policy,
                })
            })
            .collect()
    }
}

/// A thread (or a process, all its threads) the hog starves, and its policy before.
#[derive(Debug, Clone, Copy)]
struct Victim {
    id: u32,
    /// A process, all of whose threads change policy (keepalived's VRRP process, pinned
    /// since it started); otherwise a vCPU thread, moved onto the hog's CPU at the fault
    /// and back onto every CPU after.
    all_threads: bool,
    policy: SchedPolicy,
}

/// The vCPU threads of QEMU process `pid` (QEMU names them `CPU 0/TCG`, `CPU 1/KVM`
/// when started with `debug-threads=on`).
fn vcpu_threads(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(t.path().join("comm")).ok()?;
            comm.starts_with("CPU ").then_some(tid)
        })
        .collect()
}

/// A scheduling policy and its priority, as `chrt` takes them (`-o 0`, `-r 50`).
#[derive(Debug, Clone, Copy)]
struct SchedPolicy {
    flag: &'static str,
    priority: u32,
}

/// What keepalived's VRRP process (or a guest's vCPU threads) runs at during a cpu-hog
/// fault: SCHED_RR, below the hog's SCHED_FIFO 99.
const VICTIM_RT: SchedPolicy = SchedPolicy {
    flag: "-r",
    priority: 50,
};

/// A process's policy and RT priority, from fields 41 and 40 of /proc/PID/stat.
fn sched_policy(pid: u32) -> Option<SchedPolicy> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(40 - 3);
    let priority = fields.next()?.parse().ok()?;
    let flag = match fields.next()?.parse::<u32>().ok()? {
        0 => "-o",
        1 => "-f",
        2 => "-r",
        3 => "-b",
        5 => "-i",
        _ => return None,
    };
    Some(SchedPolicy { flag, priority })
}

/// Sets the policy of `id`: a thread, or with `all_threads` every thread of a process.
fn set_sched_policy(id: u32, all_threads: bool, policy: SchedPolicy) -> Result<(), LabError> {
    let priority = policy.priority.to_string();
    let id = id.to_string();
    let mut args = vec![policy.flag, "-p", &priority, &id];
    if all_threads {
        args.insert(0, "-a");
    }
    cmd::run("chrt", &args).map(drop)
}

/// Pins thread `tid` to the CPUs `cpus` (`1`, `0-1`).
fn set_affinity(tid: u32, cpus: &str) -> Result<(), LabError> {
    cmd::run("taskset", &["-p", "-c", cpus, &tid.to_string()]).map(drop)
}

/// Online CPUs, from /sys/devices/system/cpu/online (`0-1,4`).
fn online_cpus() -> Vec<u32> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .split(',')
        .filter_map(|part| match part.split_once('-') {
            Some((a, b)) => Some(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => part.parse::<u32>().ok().map(|c| c..=c),
        })
        .flatten()
        .collect()
}

impl Inject for CpuHog {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let victims = self.victims(lab, target)?;
        let undo_victims = victims.clone();
        let all_cpus = {
            let online = online_cpus();
            let (first, last) = (online.first().copied(), online.last().copied());
            format!("{}-{}", first.unwrap_or(0), last.unwrap_or(0))
        };
        let saved = fs::read_to_string(RT_RUNTIME)
            .map_err(|e| fault_error("cpu-hog", format!("{RT_RUNTIME}: {e}")))?
            .trim()
            .to_owned();
        let hog: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
        let undo_hog = Arc::clone(&hog);
        let cpu = self.cpu;
        // What a SIGKILLed run leaves for `sweep_stale`: the value to restore and, once
        // started, the hog's process group.
        let marker = Path::new(DISK_ROOT).join(format!("{}{RT_MARKER}", unique_name()));
        let undo_marker = marker.clone();
        let undo_saved = saved.clone();
        let guard = Guard::register(
            format!("the SCHED_FIFO hog on CPU {cpu} and {RT_RUNTIME} (was {saved})"),
            Phase::BeforeLabs,
            move || {
                let child = undo_hog.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(mut child) = child {
                    // The whole group: stress-ng's worker is the process that spins.
                    cmd::signal_group(child.id(), Signal::KILL);
                    let _ = child.wait();
                }
                // Gone with its lab, or back to how it started (a guest's vCPUs: on every
                // CPU again).
                for v in &undo_victims {
                    if cmd::pid_alive(i32::try_from(v.id).unwrap_or(-1)) {
                        set_sched_policy(v.id, v.all_threads, v.policy)
                            .map_err(|e| e.to_string())?;
                        if !v.all_threads {
                            set_affinity(v.id, &all_cpus).map_err(|e| e.to_string())?;
                        }
                    }
                }
                fs::write(RT_RUNTIME, &undo_saved).map_err(|e| {
                    format!("restoring {RT_RUNTIME}: {e} (run: echo {undo_saved} > {RT_RUNTIME})")
                })?;
                remove_file(&undo_marker)
            },
        )?;
        let write_marker = |hog: Option<u32>| {
            let line = format!("{saved} {}\n", hog.unwrap_or(0));
            fs::create_dir_all(DISK_ROOT)
                .and_then(|()| fs::write(&marker, line))
                .map_err(|source| LabError::Io {
                    path: marker.clone(),
                    source,
                })
        };
        write_marker(None)?;
        // Since Linux 6.12 the fair server gives SCHED_OTHER tasks 50 ms a second whatever
        // RT tasks do, so a SCHED_OTHER keepalived would still advertise every second or
        // two. As with keepalived's own `vrrp_rt_priority`, its VRRP process (or the
        // guest's vCPUs, moved onto the hog's CPU) gets a real-time priority below the
        // hog's: then nothing but the hog runs there.
        for v in &victims {
            if !v.all_threads {
                set_affinity(v.id, &cpu.to_string())?;
            }
            set_sched_policy(v.id, v.all_threads, VICTIM_RT)?;
        }
        fs::write(RT_RUNTIME, "-1")
            .map_err(|e| fault_error("cpu-hog", format!("echo -1 > {RT_RUNTIME}: {e}")))?;
        let mut command = Command::new("chrt");
        command
            .args(["-f", "99", "taskset", "-c", &cpu.to_string()])
            .args(["stress-ng", "--cpu", "1", "--cpu-method", "loop", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: cmd::describe(&command),
            source,
        })?;
        let pid = child.id();
        *hog.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        write_marker(Some(pid))?;
        Ok(guard)
    }
}

// ---- io-stall ----

/// keepalived blocks writing /tmp/keepalived.stats, as in the field report where the guest
/// disk hung: the router's /tmp is a sync-mounted ext4 on a direct-I/O loop device, and
/// the writes to the disk under it are throttled to 1 byte/s in a blkio cgroup until the
/// fault ends. The write really blocks (state D in `write`), the loop device shows the
/// request in flight in /proc/diskstats, and lifting the throttle lets it complete.
///
/// On a namespace router the cgroup holds keepalived's VRRP child, which writes the file.
/// On a QEMU guest it holds the whole QEMU process: the loop device is the guest's second
/// disk (`cache=none`), the guest mounts it on /tmp, and its stats write waits on QEMU's
/// I/O worker thread, which waits on the host's disk: the guest sees its own disk hang,
/// the host sees QEMU in D on the loop device.
struct IoStall {
    tmp: StallTmp,
    /// `MAJ:MIN` of the whole disk holding the image, the one the loop device writes to.
    disk: String,
}

/// Where the stalled /tmp is.
enum StallTmp {
    /// Mounted on the host, bind-mounted over a namespace router's /tmp.
    Mount(PathBuf),
    /// The loop device itself, a guest's /tmp disk, mounted inside the guest.
    Device(PathBuf),
}

impl IoStall {
    /// Builds the disk: image, loop device, ext4, and for a namespace router the sync
    /// mount. The guard removes them.
    fn new(guest: bool) -> Result<(IoStall, Guard), LabError> {
        hierarchy("io-stall", "blkio")?;
        cmd::require(&[
            ("losetup", "util-linux"),
            ("mkfs.ext4", "e2fsprogs"),
            ("umount", "mount"),
        ])?;
        let dir = Path::new(DISK_ROOT).join(unique_name());
        let (image, mount) = disk_paths(&dir);
        let guard = {
            let (dir, image, mount) = (dir.clone(), image.clone(), mount.clone());
            Guard::register(
                format!("the throttled disk {}", dir.display()),
                Phase::AfterLabs,
                move || remove_disk(&dir, &image, &mount),
            )?
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LabError::Io { path, source }
        };
        fs::create_dir_all(DISK_ROOT).map_err(io(Path::new(DISK_ROOT)))?;
        fs::create_dir(&dir).map_err(io(&dir))?;
        fs::File::create(&image)
            .and_then(|f| f.set_len(DISK_MIB << 20))
            .map_err(io(&image))?;
        let disk = whole_disk_of(&image)?;
        let image_s = image.to_string_lossy();
        let loop_dev = cmd::run("losetup", &["--direct-io=on", "-f", "--show", &image_s])?
            .trim()
            .to_owned();
        let dio = Path::new("/sys/block")
            .join(loop_dev.trim_start_matches("/dev/"))
            .join("loop/dio");
        if !fs::read_to_string(&dio).is_ok_and(|s| s.trim() == "1") {
            return Err(fault_error(
                "io-stall",
                format!(
                    "{loop_dev} does not do direct I/O on {} ({} is not 1), so its writes \
                     would go through the page cache and never block: put {DISK_ROOT} on a \
                     filesystem that supports O_DIRECT (ext4, xfs)",
                    image.display(),
                    dio.display()
                ),
            ));
        }
        cmd::run("mkfs.ext4", &["-q", "-F", &loop_dev])?;
        if guest {
            let tmp = StallTmp::Device(PathBuf::from(loop_dev));
            return Ok((IoStall { tmp, disk }, guard));
        }
        fs::create_dir(&mount).map_err(io(&mount))?;
        let mount_s = mount.to_string_lossy();
        // sync: every write(2) waits for its data to reach the disk, as on the reporter's box.
        cmd::run("mount", &["-o", "sync", &loop_dev, &mount_s])?;
        cmd::run("chmod", &["1777", &mount_s])?;
        let tmp = StallTmp::Mount(mount);
        Ok((IoStall { tmp, disk }, guard))
    }

    /// Throttles the writes of `pids` (whole processes) to [`IoStall::disk`] in a new blkio
    /// cgroup; the guard lifts the throttle and removes the cgroup.
    fn throttle(&self, pids: &[u32]) -> Result<Guard, LabError> {
        let cg = Cgroup::plan("io-stall", "blkio", &unique_name(), pids)?;
        let undo = cg.clone();
        let lift = format!("{} 0", self.disk);
        let guard = Guard::register(
            format!("the blkio throttle {}", cg.dir.display()),
            Phase::BeforeLabs,
            move || {
                if undo.dir.exists() {
                    // Lifting the limit dispatches the held write at once.
                    undo.write("blkio.throttle.write_bps_device", &lift)?;
                }
                undo.remove()
            },
        )?;
        let fail = |p| fault_error("io-stall", p);
        cg.enter().map_err(fail)?;
        cg.write(
            "blkio.throttle.write_bps_device",
            &format!("{} 1", self.disk),
        )
        .map_err(fail)?;
        Ok(guard)
    }
}

/// io-stall's image and mount point inside its dir.
fn disk_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("disk.img"), dir.join("tmp"))
}

/// Unmounts and detaches io-stall's disk and removes its dir; whatever of it exists.
fn remove_disk(dir: &Path, image: &Path, mount: &Path) -> Result<(), String> {
    let mount_s = mount.to_string_lossy();
    if cmd::run("mountpoint", &["-q", &mount_s]).is_ok() {
        cmd::run("umount", &[&mount_s]).map_err(|e| e.to_string())?;
    }
    if image.exists() {
        let image_s = image.to_string_lossy();
        let loops = cmd::run("losetup", &["-n", "-O", "NAME", "-j", &image_s])
            .map_err(|e| e.to_string())?;
        for dev in loops.split_whitespace() {
            cmd::run("losetup", &["-d", dev]).map_err(|e| e.to_string())?;
        }
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "rm -r {}: {e} (retry by hand once nothing uses it)",
            dir.display()
        )),
    }
}

/// `MAJ:MIN` of the whole disk holding `path`: blkio throttles whole disks, not partitions.
fn whole_disk_of(path: &Path) -> Result<String, LabError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let dev = meta.dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        return Err(fault_error(
            "io-stall",
            format!(
                "{} is on device {major}:{minor}, which is not a block device (overlayfs, \
                 tmpfs, btrfs subvolume?): blkio can only throttle a real disk; make \
                 {DISK_ROOT} a directory on a disk-backed filesystem",
                path.display()
            ),
        ));
    }
    // A partition's sysfs dir sits inside its disk's, which holds the disk's `dev`.
    let whole = if sys.join("partition").exists() {
        sys.join("../dev")
    } else {
        sys.join("dev")
    };
    fs::read_to_string(&whole)
        .map(|s| s.trim().to_owned())
        .map_err(|source| LabError::Io {
            path: whole,
            source,
        })
}

impl Inject for IoStall {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let machine = lab.router(target)?.machine();
        // keepalived's VRRP child, the process that writes the stats file; or the whole
        // VM, whose I/O threads write the guest's disk.
        let writer = match (machine.host_keepalived(), machine.vm()) {
            (Some(k), _) => Some(k.vrrp_pid()?),
            (None, Some(vm)) => Some(vm.host_pid()?),
            (None, None) => None,
        };
        let writer = writer.ok_or_else(|| {
            fault_error(
                "io-stall",
                format!("{target} has no process on this host whose writes can be throttled"),
            )
        })?;
        let guard = self.throttle(&[writer])?;
        machine.write_stats_blocked()?;
        Ok(guard)
    }
}

// ---- vm-drain ----

/// The seed's case, an idle guest that the host does not run because the host side of
/// the VM is stuck in I/O: a process of the guest (not keepalived) writes to the guest's
/// /tmp disk, whose host disk is throttled as in io-stall, so QEMU's I/O worker waits in
/// D; then the management layer asks QEMU to resize that disk (QMP `block_resize` to
/// its own size, as `virsh blockresize` does), which first drains the disk's requests.
/// The drain runs in QEMU's main loop with the big lock held and waits for the stuck
/// write: no timer of the guest fires, its vCPU sleeps in HLT, keepalived is never
/// woken. Lifting the throttle lets the write, the drain and the resize finish.
struct VmDrain {
    stall: IoStall,
}

/// How long QEMU's answer to `block_resize` is awaited before it counts as held by the
/// drain: without a stuck request the drain is instant.
const DRAIN_HOLDS: Duration = Duration::from_secs(1);

impl Inject for VmDrain {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let vm = vm_of(lab, target, "vm-drain")?;
        let fail = |p: String| fault_error("vm-drain", p);
        let throttle = self.stall.throttle(&[vm.host_pid()?])?;
        vm.fill_tmp_blocked()?;
        let resize = vm.resize_tmp_disk(DISK_MIB << 20)?;
        match resize.recv_timeout(DRAIN_HOLDS) {
            Ok(answer) => {
                return Err(fail(format!(
                    "QEMU answered block_resize at once ({answer:?}): nothing held its drain"
                )))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(fail(
                    "the block_resize thread ended without an answer".into(),
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        Guard::register(
            format!("the drain of {target}'s /tmp disk behind a throttled host disk"),
            Phase::BeforeLabs,
            move || {
                // The stuck write completes, then the drain, then the resize answers.
                throttle.clear().map_err(|e| e.to_string())?;
                match resize.recv_timeout(FINISH_DRAIN) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("block_resize: {e}")),
                    Err(_) => Err(format!(
                        "QEMU did not answer block_resize within {FINISH_DRAIN:?} of the throttle's lift"
                    )),
                }
            },
        )
    }
}

/// How long the drain gets to finish once the host disk is free again.
const FINISH_DRAIN: Duration = Duration::from_secs(20);

// ---- port-disabled ----

/// The target's bridge port stops forwarding: its adverts leave its interface (the carrier
/// is up, keepalived keeps sending) and go no further, as on a switch that drops them.
struct PortDisabled;

impl Inject for PortDisabled {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let port = lab.router(target)?.bridge_port().to_owned();
        let ns = lab.switch_netns().to_owned();
        let guard = {
            let (port, ns) = (port.clone(), ns.clone());
            Guard::register(
                format!("the disabled bridge port {port} in {ns}"),
                Phase::BeforeLabs,
                move || {
                    if cmd::netns_exists(&ns) {
                        cmd::set_port_state(&ns, &port, true).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                },
            )?
        };
        cmd::set_port_state(&ns, &port, false)?;
        Ok(guard)
    }
}

// ---- vrrp-firewall ----

/// A firewall in the target's namespace that drops VRRP, IP protocol 112, on its INPUT
/// chain, as a host firewall nobody opened for VRRP does. The adverts still reach the
/// target's interface (captures see them: packet sockets tap before netfilter) but never
/// its keepalived's raw socket: a backup stops hearing its master and takes over while
/// the master still advertises, a split brain of the receiver's making.
///
/// The rule carries the fault's unique name as a comment, so the undo deletes that rule
/// and no other. It lives in the router's namespace: a run killed with SIGKILL leaves
/// nothing outside it, and the namespace sweep removes it with the namespace.
struct VrrpFirewall {
    /// `iptables`, and `ip6tables` when VRRP runs over IPv6.
    tools: Vec<&'static str>,
}

impl VrrpFirewall {
    fn new(ipv6: bool) -> Result<VrrpFirewall, LabError> {
        let tools = if ipv6 {
            vec!["iptables", "ip6tables"]
        } else {
            vec!["iptables"]
        };
        for &tool in &tools {
            if !cmd::on_path(tool) {
                return Err(LabError::ToolMissing {
                    tool,
                    package: "iptables",
                });
            }
        }
        Ok(VrrpFirewall { tools })
    }
}

/// The rule's match and target, after the chain: `-p 112` is VRRP (and CARP).
fn vrrp_drop_rule(comment: &str) -> [&str; 8] {
    [
        "-p",
        "112",
        "-m",
        "comment",
        "--comment",
        comment,
        "-j",
        "DROP",
    ]
}

/// Runs `tool -w ARGS` in namespace `ns` (`-w`: wait for the xtables lock, which is shared
/// by every namespace, instead of failing while another run holds it).
fn ns_xtables(ns: &str, tool: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", ns, tool, "-w"];
    all.extend_from_slice(args);
    cmd::run("ip", &all)
}

/// How many rules of INPUT in namespace `ns` carry `comment` (from `TOOL -S INPUT`, whose
/// lines read `-A INPUT -p vrrp -m comment --comment NAME -j DROP`).
fn rules_with_comment(ns: &str, tool: &str, comment: &str) -> Result<usize, LabError> {
    let listing = ns_xtables(ns, tool, &["-S", "INPUT"])?;
    Ok(listing
        .lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            words.any(|w| w == "--comment")
                && words.next().is_some_and(|w| w.trim_matches('"') == comment)
        })
        .count())
}

/// Deletes every INPUT rule of `tool` in `ns` commented `comment`; nothing to do if the
/// namespace is gone (the rule went with it) or the rule was never inserted.
fn delete_vrrp_drop(ns: &str, tool: &str, comment: &str) -> Result<(), String> {
    if !cmd::netns_exists(ns) {
        return Ok(());
    }
    let retry = format!(
        "delete it by hand: ip netns exec {ns} {tool} -w -D INPUT {}",
        vrrp_drop_rule(comment).join(" ")
    );
    let present = rules_with_comment(ns, tool, comment).map_err(|e| format!("{e} ({retry})"))?;
    for _ in 0..present {
        let mut args = vec!["-D", "INPUT"];
        args.extend_from_slice(&vrrp_drop_rule(comment));
        ns_xtables(ns, tool, &args).map_err(|e| format!("{e} ({retry})"))?;
    }
    match rules_with_comment(ns, tool, comment) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} rules are still there ({retry})")),
        Err(e) => Err(format!("{e} ({retry})")),
    }
}

impl Inject for VrrpFirewall {
    fn inject(&self, lab: &Lab, target: &str) -> Result<Guard, LabError> {
        let ns = lab.router(target)?.netns().to_owned();
        let comment = unique_name();
        let guard = {
            let (ns, comment, tools) = (ns.clone(), comment.clone(), self.tools.clone());
            Guard::register(
                format!(
                    "the VRRP DROP rule {comment} ({}) on INPUT in {ns}",
                    tools.join(", ")
                ),
                Phase::BeforeLabs,
                move || {
                    let problems: Vec<String> = tools
                        .iter()
                        .filter_map(|tool| delete_vrrp_drop(&ns, tool, &comment).err())
                        .collect();
                    if problems.is_empty() {
                        Ok(())
                    } else {
                        Err(problems.join("; "))
                    }
                },
            )?
        };
        for &tool in &self.tools {
            let mut args = vec!["-I", "INPUT"];
            args.extend_from_slice(&vrrp_drop_rule(&comment));
            ns_xtables(&ns, tool, &args).map_err(|e| {
                fault_error(
                    "vrrp-firewall",
                    format!(
                        "{e}: {tool} could not add a rule in namespace {ns} (does the kernel \
                         have nf_tables, or ip_tables for iptables-legacy? see `{tool} -V`)"
                    ),
                )
            })?;
            match rules_with_comment(&ns, tool, &comment)? {
                1 => {}
                n => {
                    return Err(fault_error(
                        "vrrp-firewall",
                        format!(
                            "after `{tool} -I INPUT` in {ns}, `{tool} -S INPUT` lists {n} rules \
                             commented {comment}, not 1"
                        ),
                    ))
                }
            }
        }
        Ok(guard)
    }
}

fn remove_file(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("rm {}: {e}", path.display())),
    }
}

// ---- leftovers of dead runs ----

/// The pid in a `vmlat-fault-PID-SEQ[.rt]` name.
fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(FAULT_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Names in `dir` of faults whose owning process is gone (never this process's).
fn dead_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, _)| owner_pid(name).is_some_and(|p| p != me && !cmd::pid_alive(p)))
        .collect()
}

/// Undoes what faults of dead runs (killed with SIGKILL, so their cleanups never ran) left:
/// frozen or throttled cgroups, a running hog with RT throttling off, mounted loop disks.
/// Returns what it removed; call it at startup, before building labs, with
/// [`sweep_stale`](crate::sweep_stale) for their namespaces.
pub fn sweep_stale() -> Result<Vec<String>, LabError> {
    if !rustix::process::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    let mut removed = Vec::new();
    let mut problems = Vec::new();
    for controller in ["freezer", "blkio"] {
        for (_, dir) in dead_entries(&Path::new(CGROUP_ROOT).join(controller)) {
            let cg = Cgroup {
                dir: dir.clone(),
                origins: Vec::new(),
            };
            if controller == "freezer" {
                let _ = cg.write("freezer.state", "THAWED");
            }
            for limit in cg.read("blkio.throttle.write_bps_device").lines() {
                if let Some(dev) = limit.split_whitespace().next() {
                    let _ = cg.write("blkio.throttle.write_bps_device", &format!("{dev} 0"));
                }
            }
            match cg.remove() {
                Ok(()) => removed.push(dir.display().to_string()),
                Err(e) => problems.push(e),
            }
        }
    }
    for (name, path) in dead_entries(Path::new(DISK_ROOT)) {
        let result = if name.ends_with(RT_MARKER) {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let mut fields = text.split_whitespace();
            let (saved, hog) = (
                fields.next(),
                fields.next().and_then(|p| p.parse::<u32>().ok()),
            );
            // Only if that pid is still the hog, not a stranger that reused it.
            let is_hog = |p: &u32| {
                fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with("stress-ng"))
            };
            if let Some(hog) = hog.filter(is_hog) {
                cmd::signal_group(hog, Signal::KILL);
            }
            saved
                .map_or(Ok(()), |v| {
                    fs::write(RT_RUNTIME, v).map_err(|e| format!("restoring {RT_RUNTIME}: {e}"))
                })
                .and_then(|()| remove_file(&path))
        } else {
            let (image, mount) = disk_paths(&path);
            remove_disk(&path, &image, &mount)
        };
        match result {
            Ok(()) => removed.push(path.display().to_string()),
            Err(e) => problems.push(e),
        }
    }
    // freezer-v2's cgroups, at the top of the v2 hierarchy.
    if let Some(mount) = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| CgroupMounts::parse(&text).v2)
    {
        for (_, dir) in dead_entries(&mount.dir) {
            let cg = Cgroup {
                dir: dir.clone(),
                origins: Vec::new(),
            };
            let _ = cg.thaw_v2();
            match cg.remove() {
                Ok(()) => removed.push(dir.display().to_string()),
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.is_empty() {
        Ok(removed)
    } else {
        Err(LabError::Teardown {
            run_id: format!("{FAULT_PREFIX}* (stale)"),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn no_v2_mount_names_the_mount_command() {
        let v1_only = HYBRID.lines().take(2).collect::<Vec<_>>().join("\n");
        let e = v2_hierarchy_in("freezer-v2", &v1_only)
            .expect_err("no cgroup2 line")
            .to_string();
        assert!(
            e.contains("mount -t cgroup2 none /sys/fs/cgroup/unified"),
            "{e}"
        );
        assert!(e.contains("freezer-v2"), "{e}");
    }

    #[test]
    fn fault_names_carry_the_owner_pid() {
        let name = unique_name();
        assert_eq!(
            owner_pid(&name),
            i32::try_from(std::process::id()).ok(),
            "{name}"
        );
    }
}
