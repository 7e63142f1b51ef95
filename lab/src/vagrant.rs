//! The `vagrant` backend: the routers are the VMs of the repository's `Vagrantfile`
//! (`docs/vagrant.md`), `lb1` and `lb2` under the libvirt provider, running keepalived as
//! provisioned. Nothing is built: the lab checks that the machines run, starts `vmlat
//! record` in each over `vagrant ssh MACHINE -c '...'` (sudo inside), and records their
//! libvirt taps and bridge on this host, in-process like every lab.
//!
//! Everything on a VM goes over `vagrant ssh` (run in the current directory, or
//! `VAGRANT_CWD`: where the Vagrantfile is); everything about a VM as a whole over `virsh`
//! on this host (its domain is `vmlat_NAME`):
//!
//! | step | command |
//! |---|---|
//! | build | `vagrant status --machine-readable` (every router's machine running, provider libvirt); per machine `vagrant ssh NAME -c 'sudo sh -c "..."'`: keepalived active, vmlat installed, eth1's MAC and address, `vmlat record -o /var/tmp/RUN_ID/bundle -i eth1 --comm "keepalived*"` started in the background; `virsh domiflist vmlat_NAME` (its tap, by that MAC) and `virsh net-info NETWORK` (the bridge) |
//! | holds the VIP | `vagrant ssh NAME -c 'ip -o -4 addr show dev eth1'` |
//! | sigstop | `vagrant ssh NAME -c 'sudo sh -c "..."'`: SIGSTOP to keepalived's VRRP process (the child of the oldest keepalived), checked to reach state T; undone by SIGCONT to every keepalived |
//! | cpu-hog | as for a QEMU guest ([`crate::fault`]): the VM's vCPU threads (of its QEMU process, from libvirt's `/run/libvirt/qemu/vmlat_NAME.pid`) moved onto a CPU of this host that a SCHED_FIFO hog takes: the host preempting the guest |
//! | vm-pause | `virsh suspend vmlat_NAME`, checked with `virsh domstate`; undone by `virsh resume` |
//! | finish | `vagrant ssh NAME -c 'sudo sh -c "..."'`: SIGINT to the recorder, wait for it, then a tar of its bundle on stdout, unpacked into `bundle-NAME/` |
//! | teardown | `vagrant ssh NAME -c 'sudo sh -c "..."'`: the recorder stopped if it still runs, /var/tmp/RUN_ID removed |
//!
//! The other faults need what these VMs do not give: keepalived's processes are the
//! guest's (freezer, cgroups, a firewall in a namespace of this host), there is no lab
//! bridge port to disable, the Vagrantfile gives the VMs no disk of their own to stall,
//! and QEMU's NIC backend belongs to libvirt. [`REFUSAL`] says so.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::fault::{fault_error, Guard};
use crate::lab::{io, Site};
use crate::machine::{own_bundle_dir, Finished, Machine, Recorder, Vm};
use crate::registry::Phase;
use crate::spec::{Backend, LabSpec, VrrpVersion};
use crate::LabError;

/// The faults a Vagrant machine takes.
pub(crate) const FAULTS: &[&str] = &["sigstop", "cpu-hog", "vm-pause"];

/// Why a Vagrant machine does not take the other faults.
pub(crate) const REFUSAL: &str = "a Vagrant machine takes only sigstop (over `vagrant ssh`), \
     cpu-hog (on its vCPU threads on this host) and vm-pause (`virsh suspend`/`resume` on this \
     host): its keepalived runs in the VM, not as processes of this host, it has no lab bridge \
     port, and the Vagrantfile gives it no disk of its own to stall";

/// The Vagrantfile's machines and the priorities it gives their keepalived, in order.
pub(crate) const MACHINES: &[(&str, u8)] = &[("lb1", 150), ("lb2", 100)];

/// The Vagrantfile's VRRP instance: VRID, VIP, one advert a second, VRRPv2 multicast.
const VRID: u8 = 51;
/// The virtual address keepalived moves between the VMs.
pub(crate) const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 56, 100));

/// libvirt names each domain after its machine with this prefix (`default_prefix`).
const DOMAIN_PREFIX: &str = "vmlat_";

/// The VMs' interface on the private network, where keepalived runs.
const IFACE: &str = "eth1";

/// Where libvirt writes each running domain's QEMU pid.
const LIBVIRT_PIDS: &str = "/run/libvirt/qemu";

/// How long a VM gets to stop or resume, as `virsh domstate` reports it.
const VIRSH_SETTLE: Duration = Duration::from_secs(5);

/// The error of a Vagrant machine, naming the fix.
fn vagrant_error(machine: &str, problem: impl Into<String>) -> LabError {
    LabError::Vagrant {
        machine: machine.to_owned(),
        problem: problem.into(),
    }
}

/// Checks a vagrant spec against the Vagrantfile before anything runs.
pub(crate) fn validate(spec: &LabSpec) -> Result<(), LabError> {
    let bad = |msg: String| Err(LabError::InvalidSpec(msg));
    let machines = MACHINES
        .iter()
        .map(|(m, _)| *m)
        .collect::<Vec<_>>()
        .join(", ");
    for r in &spec.routers {
        if r.backend != Backend::Vagrant {
            return bad(format!(
                "router {} is not a Vagrant machine: a vagrant lab is the Vagrantfile's VMs only",
                r.name
            ));
        }
        match MACHINES.iter().find(|(m, _)| *m == r.name) {
            None => {
                return bad(format!(
                    "router {}: a vagrant lab's routers are the Vagrantfile's machines ({machines}); rename it",
                    r.name
                ))
            }
            Some((m, priority)) if *priority != r.priority => {
                return bad(format!(
                    "router {m}: the Vagrantfile's keepalived runs it at priority {priority}, not {}: set priority = {priority}",
                    r.priority
                ))
            }
            Some(_) => {}
        }
        if r.cpu.is_some() || r.tmp.is_some() || r.tmp_disk.is_some() {
            return bad(format!(
                "router {}: a Vagrant machine runs keepalived as provisioned (no pinning, its own /tmp)",
                r.name
            ));
        }
    }
    let as_provisioned = spec.vrid == VRID
        && spec.advert_int == Duration::from_secs(1)
        && spec.version == VrrpVersion::V2
        && !spec.unicast
        && !spec.ipv6;
    if !as_provisioned {
        return bad(format!(
            "a vagrant lab runs the Vagrantfile's keepalived: vrid = {VRID}, advert_int = 1, \
             version = 2, multicast; remove the other [topology] settings"
        ));
    }
    Ok(())
}

/// Fails with the package to install when a tool of this backend is missing.
pub(crate) fn check_tools() -> Result<(), LabError> {
    cmd::require(&[
        ("vagrant", "vagrant"),
        ("virsh", "libvirt-clients"),
        ("tar", "tar"),
    ])
}

/// What a logged command did: its command line, its output, its stderr trimmed.
struct Ran {
    line: String,
    out: std::process::Output,
    stderr: String,
}

/// Runs `program ARGS`, appending the command and what it said to `log`, a machine's
/// command log. The log helps only when something fails, so a failed write to it is not
/// itself an error.
fn run_logged(program: &str, args: &[&str], log: &Path) -> Result<Ran, LabError> {
    let mut command = Command::new(program);
    // Vagrant would otherwise ask HashiCorp for a newer version on every command.
    command.args(args).env("VAGRANT_CHECKPOINT_DISABLE", "1");
    let line = cmd::describe(&command);
    let out = command.output().map_err(|source| LabError::Spawn {
        command: line.clone(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let shown = if out.stdout.len() > 4096 {
            format!("({} bytes)", out.stdout.len())
        } else {
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let _ = writeln!(f, "$ {line}\n{shown}{stderr}");
    }
    Ok(Ran { line, out, stderr })
}

/// Runs `vagrant ARGS` for `machine`, logged ([`run_logged`]); returns its stdout, or an
/// error naming the fix.
fn vagrant(machine: &str, args: &[&str], log: &Path) -> Result<Vec<u8>, LabError> {
    let Ran { line, out, stderr } = run_logged("vagrant", args, log)?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let said = if stderr.is_empty() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        stderr
    };
    let problem = if said.contains("A Vagrant environment or target machine is required") {
        format!(
            "`{line}` found no Vagrantfile in {}: run from the directory that holds the \
             repository's Vagrantfile, or set VAGRANT_CWD to it",
            std::env::current_dir().unwrap_or_default().display()
        )
    } else if [
        "not created",
        "not running",
        "poweroff",
        "shutoff",
        "not yet ready for SSH",
    ]
    .iter()
    .any(|s| said.contains(s))
    {
        format!("is not running (vagrant says: {said}): start it with `vagrant up {machine}` next to the Vagrantfile (docs/vagrant.md)")
    } else if out.status.code() == Some(255) {
        format!(
            "ssh failed (`{line}` exited 255: {said}): check that `vagrant ssh {machine}` works"
        )
    } else {
        format!("`{line}` failed ({}): {said}", out.status)
    };
    Err(vagrant_error(machine, problem))
}

/// Runs `virsh ARGS` about `machine`, logged like [`vagrant`].
fn virsh(machine: &str, args: &[&str], log: &Path) -> Result<String, LabError> {
    let Ran { line, out, stderr } = run_logged("virsh", args, log)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(vagrant_error(
            machine,
            format!(
                "`{line}` failed ({}): {stderr} (the vagrant backend needs the libvirt provider \
                 and root's virsh on qemu:///system)",
                out.status
            ),
        ))
    }
}

/// `sudo sh -c 'SCRIPT'` for `vagrant ssh -c`: single quotes keep the VM's login shell off
/// the script, which therefore holds none.
fn sudo(script: &str) -> String {
    format!("sudo sh -c '{script}'")
}

/// The machines' states from `vagrant status --machine-readable`, which reads
/// `TIMESTAMP,MACHINE,state,STATE` and `TIMESTAMP,MACHINE,provider-name,PROVIDER`.
fn status_field<'a>(status: &'a str, machine: &str, field: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let mut parts = line.splitn(4, ',');
        let (_, m, f, value) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        (m == machine && f == field).then_some(value.trim())
    })
}

/// Checks that every machine of the spec runs under libvirt, once for the whole lab.
pub(crate) fn check_running(spec: &LabSpec, log: &Path) -> Result<(), LabError> {
    let first = spec.routers.first().map_or("lb1", |r| r.name.as_str());
    let out = vagrant(first, &["status", "--machine-readable"], log)?;
    let status = String::from_utf8_lossy(&out);
    for r in &spec.routers {
        let name = r.name.as_str();
        match status_field(&status, name, "state") {
            None => {
                return Err(vagrant_error(
                    name,
                    "is not in `vagrant status`: run from the directory of the repository's \
                     Vagrantfile (or set VAGRANT_CWD), whose machines are lb1 and lb2",
                ))
            }
            Some("running") => {}
            Some(state) => {
                let said = status_field(&status, name, "state-human-short").unwrap_or(state);
                return Err(vagrant_error(
                    name,
                    format!(
                        "is {said}, not running: start it with `vagrant up {name}` (docs/vagrant.md)"
                    ),
                ));
            }
        }
        match status_field(&status, name, "provider-name") {
            Some("libvirt") | None => {}
            Some(provider) => {
                return Err(vagrant_error(
                    name,
                    format!(
                        "runs under {provider}: the vagrant backend needs the libvirt provider \
                         (virsh suspend, its tap and bridge on this host); `vagrant up --provider=libvirt`"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// A router that is one of the Vagrantfile's VMs.
#[derive(Debug)]
pub(crate) struct VagrantMachine {
    name: String,
    domain: String,
    /// The lab's files for it: its command log, the fetched tar.
    dir: PathBuf,
    log: PathBuf,
    /// Its dir inside the VM: `/var/tmp/RUN_ID`.
    remote: String,
    addr: IpAddr,
    tap: String,
    bridge: String,
    host_pid: Option<u32>,
    /// Stops the VM's recorder and removes its dir when the lab goes.
    _cleanup: Guard,
}

/// Checks machine `index` answers with keepalived and vmlat, starts its recorder and
/// finds its tap and bridge on this host.
pub(crate) fn create(site: &Site<'_>, index: usize) -> Result<VagrantMachine, LabError> {
    let name = site
        .spec
        .routers
        .get(index)
        .map(|r| r.name.clone())
        .ok_or_else(|| LabError::UnknownRouter(format!("#{index}")))?;
    let log = site.dir.join(format!("{name}.vagrant.log"));
    let remote = format!("/var/tmp/{}", site.run_id);
    let cleanup = {
        let (name, log, remote) = (name.clone(), log.clone(), remote.clone());
        Guard::register(
            format!("the recorder and {remote} in Vagrant machine {name}"),
            Phase::BeforeLabs,
            move || {
                let script = format!(
                    "p=$(cat {remote}/record.pid 2>/dev/null) && kill -INT $p 2>/dev/null; rm -rf {remote}"
                );
                vagrant(&name, &["ssh", &name, "-c", &sudo(&script)], &log)
                    .map(drop)
                    .map_err(|e| format!("{e} (remove it by hand: vagrant ssh {name} -c \"sudo rm -rf {remote}\")"))
            },
        )?
    };
    let script = format!(
        "set -e; d={remote}; rm -rf $d; mkdir -p $d; \
         systemctl is-active --quiet keepalived || {{ echo keepalived is not running: sudo systemctl start keepalived >&2; exit 3; }}; \
         command -v vmlat >/dev/null || {{ echo vmlat is not installed: vagrant provision >&2; exit 3; }}; \
         cat /sys/class/net/{IFACE}/address; ip -o -4 addr show dev {IFACE}; \
         nohup vmlat record -o $d/bundle -i {IFACE} --comm \"keepalived*\" >$d/record.log 2>&1 </dev/null & echo $! >$d/record.pid; \
         sleep 2; kill -0 $(cat $d/record.pid) || {{ echo vmlat record exited: >&2; cat $d/record.log >&2; exit 3; }}"
    );
    let out = vagrant(&name, &["ssh", &name, "-c", &sudo(&script)], &log)?;
    let out = String::from_utf8_lossy(&out);
    let mut lines = out.lines();
    let mac = lines.next().unwrap_or_default().trim().to_ascii_lowercase();
    let addr = lines
        .filter_map(inet_of)
        .find(|a| *a != VIP)
        .ok_or_else(|| {
            vagrant_error(&name, format!("{IFACE} has no IPv4 address besides the VIP: is it on the Vagrantfile's private network?"))
        })?;
    let domain = format!("{DOMAIN_PREFIX}{name}");
    let (tap, network) =
        tap_of(&virsh(&name, &["domiflist", &domain], &log)?, &mac).ok_or_else(|| {
            vagrant_error(
                &name,
                format!("`virsh domiflist {domain}` lists no interface with {IFACE}'s MAC {mac}"),
            )
        })?;
    let bridge = virsh(&name, &["net-info", &network], &log)?
        .lines()
        .find_map(|l| l.strip_prefix("Bridge:"))
        .map(|b| b.trim().to_owned())
        .ok_or_else(|| {
            vagrant_error(&name, format!("`virsh net-info {network}` names no bridge"))
        })?;
    let host_pid = fs::read_to_string(Path::new(LIBVIRT_PIDS).join(format!("{domain}.pid")))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    Ok(VagrantMachine {
        name,
        domain,
        dir: site.dir.to_path_buf(),
        log,
        remote,
        addr,
        tap,
        bridge,
        host_pid,
        _cleanup: cleanup,
    })
}

/// The address of an `ip -o -4 addr` line (`3: eth1    inet 192.168.56.11/24 brd ...`).
fn inet_of(line: &str) -> Option<IpAddr> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "inet")?;
    words.next()?.split('/').next()?.parse().ok()
}

/// The tap and network of the `virsh domiflist` row whose MAC is `mac`. Rows read
/// `vnet1   network   vagrant-private   virtio   52:54:00:aa:bb:cc`.
fn tap_of(domiflist: &str, mac: &str) -> Option<(String, String)> {
    domiflist.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.as_slice() {
            [tap, _, source, _, m] if m.eq_ignore_ascii_case(mac) => {
                Some(((*tap).to_owned(), (*source).to_owned()))
            }
            _ => None,
        }
    })
}

impl VagrantMachine {
    /// Its address on the private network.
    pub(crate) fn addr(&self) -> IpAddr {
        self.addr
    }
    /// Its libvirt tap on this host (`vnet1`).
    pub(crate) fn tap(&self) -> &str {
        &self.tap
    }
    /// The bridge of its private network on this host (`virbr1`).
    pub(crate) fn bridge(&self) -> &str {
        &self.bridge
    }

    fn ssh(&self, script: &str) -> Result<Vec<u8>, LabError> {
        vagrant(&self.name, &["ssh", &self.name, "-c", script], &self.log)
    }

    fn domstate(&self) -> Result<String, LabError> {
        Ok(virsh(&self.name, &["domstate", &self.domain], &self.log)?
            .trim()
            .to_owned())
    }
}

impl Machine for VagrantMachine {
    fn name(&self) -> &str {
        &self.name
    }

    /// `eth1`, as the VM's own recorder names it.
    fn capture_point(&self) -> String {
        IFACE.to_owned()
    }

    fn recorder(&self) -> Recorder {
        Recorder::Own
    }

    /// Every command the lab ran about this machine, with what it answered.
    fn log(&self) -> &Path {
        &self.log
    }

    /// A VM or keepalived that stopped shows as a failing `vagrant ssh` or a VIP that never
    /// comes; asking `vagrant status` on every poll would take seconds each time.
    fn check_alive(&self) -> Result<(), LabError> {
        Ok(())
    }

    fn holds_vip(&self, vip: IpAddr) -> Result<bool, LabError> {
        let out = self.ssh(&format!("ip -o -4 addr show dev {IFACE}"))?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(inet_of)
            .any(|a| a == vip))
    }

    fn stop_vrrp(&self) -> Result<Guard, LabError> {
        let guard = {
            let (name, log) = (self.name.clone(), self.log.clone());
            Guard::register(
                format!("the SIGSTOP of keepalived's VRRP process in Vagrant machine {name}"),
                Phase::BeforeLabs,
                move || {
                    vagrant(
                        &name,
                        &["ssh", &name, "-c", &sudo("pkill -CONT -x keepalived")],
                        &log,
                    )
                    .map(drop)
                    .map_err(|e| {
                        format!(
                            "{e} (then: vagrant ssh {name} -c \"sudo pkill -CONT -x keepalived\")"
                        )
                    })
                },
            )?
        };
        // The VRRP process is the oldest keepalived's child (no virtual servers, so no
        // checker child).
        let script = "p=$(pgrep -P $(pgrep -o -x keepalived) -x keepalived | head -n 1); \
             [ -n \"$p\" ] || { echo no keepalived VRRP process >&2; exit 3; }; kill -STOP $p; \
             for i in 1 2 3 4 5 6 7 8 9 10; do grep -q \"^State:[[:space:]]*T\" /proc/$p/status && exit 0; sleep 0.2; done; \
             echo keepalived VRRP process $p did not stop >&2; exit 3";
        self.ssh(&sudo(script))
            .map_err(|e| fault_error("sigstop", e.to_string()))?;
        Ok(guard)
    }

    fn write_stats_blocked(&self) -> Result<(), LabError> {
        Err(fault_error("io-stall", format!("{}: {REFUSAL}", self.name)))
    }

    fn vm(&self) -> Option<&dyn Vm> {
        Some(self)
    }

    /// Stops the VM's recorder (SIGINT: its last flush, with keepalived's journal lines,
    /// which are this machine's keepalived log) and forgets its pid, so that the cleanup
    /// never signals a process that reused it, then unpacks its bundle, fetched as a tar over `vagrant ssh`, into `bundle-NAME`.
    fn finish(&self, out_dir: &Path) -> Result<Finished, LabError> {
        let script = format!(
            "d={}; p=$(cat $d/record.pid); kill -INT $p; i=0; \
             while kill -0 $p 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || {{ echo vmlat record did not stop in 60 s >&2; exit 3; }}; sleep 0.2; done; \
             rm -f $d/record.pid; tar -C $d -cf - bundle",
            self.remote
        );
        let tar = self.ssh(&sudo(&script))?;
        let file = self.dir.join(format!("{}.bundle.tar", self.name));
        fs::write(&file, tar).map_err(io(&file))?;
        let unpack = self.dir.join(format!("{}.out", self.name));
        fs::create_dir_all(&unpack).map_err(io(&unpack))?;
        cmd::run(
            "tar",
            &[
                "-xf",
                &file.to_string_lossy(),
                "-C",
                &unpack.to_string_lossy(),
            ],
        )?;
        let bundle = out_dir.join(own_bundle_dir(&self.name));
        fs::rename(unpack.join("bundle"), &bundle).map_err(io(&bundle))?;
        Ok(Finished {
            notes: vec![format!(
                "{}'s own bundle in {}",
                self.name,
                bundle.display()
            )],
            bundle: Some(bundle),
            findings: Vec::new(),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Vm for VagrantMachine {
    /// From libvirt's pid file, read when the lab started.
    fn host_pid(&self) -> Result<u32, LabError> {
        self.host_pid.ok_or_else(|| {
            vagrant_error(
                &self.name,
                format!(
                    "its QEMU process is not known: {LIBVIRT_PIDS}/{}.pid could not be read (is \
                     the VM run by this host's libvirt, qemu:///system?)",
                    self.domain
                ),
            )
        })
    }

    /// `virsh suspend`, what libvirt's snapshot and backup tools do; the guard resumes it.
    fn pause(&self) -> Result<Guard, LabError> {
        let guard = {
            let (name, domain, log) = (self.name.clone(), self.domain.clone(), self.log.clone());
            Guard::register(
                format!("the suspension of {domain}"),
                Phase::BeforeLabs,
                move || {
                    virsh(&name, &["resume", &domain], &log)
                        .map(drop)
                        .map_err(|e| format!("{e} (then: virsh resume {domain})"))
                },
            )?
        };
        virsh(&self.name, &["suspend", &self.domain], &self.log)?;
        let mut state = String::new();
        cmd::wait_until(VIRSH_SETTLE, || {
            state = self.domstate().unwrap_or_default();
            state == "paused"
        });
        if state != "paused" {
            return Err(fault_error(
                "vm-pause",
                format!(
                    "after `virsh suspend {}` it is {state:?}, not paused",
                    self.domain
                ),
            ));
        }
        Ok(guard)
    }

    fn hold_nic(&self, _every: Duration) -> Result<Guard, LabError> {
        Err(fault_error(
            "vnic-delay",
            format!("{}: {REFUSAL}", self.name),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants above are the Vagrantfile's: a change there must show here.
    #[test]
    fn constants_match_the_vagrantfile() {
        let file = include_str!("../../Vagrantfile");
        for (name, priority) in MACHINES {
            let line = format!("\"{name}\" => {{ ip: \"#{{NETWORK}}.");
            assert!(file.contains(&line), "no machine {name} in the Vagrantfile");
            assert!(
                file.contains(&format!("priority: {priority} }}")),
                "{name}'s priority"
            );
        }
        assert!(file.contains("VIP = \"#{NETWORK}.100\""));
        assert!(file.contains("NETWORK = \"192.168.56\""));
        assert_eq!(VIP.to_string(), "192.168.56.100");
        assert!(file.contains(&format!("virtual_router_id {VRID}")));
        assert!(file.contains(&format!("default_prefix = \"{DOMAIN_PREFIX}\"")));
        assert!(file.contains(&format!("interface {IFACE}")));
    }

    #[test]
    fn reads_status_domiflist_and_addresses() {
        let status = "1700000000,lb1,provider-name,libvirt\n1700000000,lb1,state,running\n\
                      1700000000,lb2,state,not_created\n1700000000,lb2,state-human-short,not created\n";
        assert_eq!(status_field(status, "lb1", "state"), Some("running"));
        assert_eq!(status_field(status, "lb2", "state"), Some("not_created"));
        assert_eq!(
            status_field(status, "lb2", "state-human-short"),
            Some("not created")
        );
        assert_eq!(status_field(status, "lb3", "state"), None);
        let domiflist = " Interface   Type      Source            Model    MAC\n\
            -----------------------------------------------------------------\n \
            vnet0       network   vagrant-libvirt   virtio   52:54:00:11:11:11\n \
            vnet1       network   vmlat-private     virtio   52:54:00:AA:BB:CC\n";
        assert_eq!(
            tap_of(domiflist, "52:54:00:aa:bb:cc"),
            Some(("vnet1".into(), "vmlat-private".into()))
        );
        assert_eq!(tap_of(domiflist, "52:54:00:00:00:00"), None);
        assert_eq!(
            inet_of("3: eth1    inet 192.168.56.11/24 brd 192.168.56.255 scope global eth1"),
            Some("192.168.56.11".parse().unwrap())
        );
    }
}
