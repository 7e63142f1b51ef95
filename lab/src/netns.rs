//! The `netns` backend: a router is a network namespace on the lab's bridge running
//! keepalived as a process of this host (the module doc of the crate draws it). Its
//! [`Machine`] is [`HostKeepalived`], whose pids, files and namespace the faults that work
//! on host processes use (freezer, cgroups, affinity, a firewall in its namespace).

use std::fs::{self, File};
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;

use crate::cmd;
use crate::fault::{self, Guard};
use crate::keepalived;
use crate::lab::{io, Site, LOG_TAIL_LINES, ROUTER_IFACE};
use crate::machine::{saved_log_path, Finished, Machine, Recorder};
use crate::registry::{self, Phase};
use crate::spec::{router_v4, router_v6};
use crate::LabError;

/// The faults a namespace router takes.
pub(crate) const FAULTS: &[&str] = &[
    "sigstop",
    "freezer",
    "freezer-v2",
    "cpu-hog",
    "io-stall",
    "port-disabled",
    "vrrp-firewall",
];

/// Why a namespace router does not take the other faults.
pub(crate) const REFUSAL: &str = "vm-pause, vnic-delay and vm-drain need a QEMU guest: set backend = \"qemu\" in [topology] (the first router is the guest)";

/// How long keepalived gets to fork its VRRP child and write the -r pid file; it takes a
/// few milliseconds, so this only matters on a badly overloaded machine.
const VRRP_CHILD_TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace of router `name` in lab `run_id`: `vmlat-4242-0-vr1`.
pub(crate) fn namespace(run_id: &str, name: &str) -> String {
    format!("{run_id}-{name}")
}

/// Router `name`'s bridge port, the veth peer of its interface: `sw-vr1`.
pub(crate) fn bridge_port(name: &str) -> String {
    format!("sw-{name}")
}

/// keepalived running in a namespace of this host: its namespace, files and processes.
#[derive(Debug)]
pub struct HostKeepalived {
    name: String,
    lab: u64,
    netns: String,
    cpu: Option<u32>,
    conf: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    vrrp_pid_file: PathBuf,
    tmp: PathBuf,
    main_pid: u32,
}

/// Creates router `index`'s namespace and its veth pair into the bridge, and starts its
/// keepalived. [`HostKeepalived::wait_started`] then waits for its VRRP child.
pub(crate) fn create(site: &Site<'_>, index: usize) -> Result<HostKeepalived, LabError> {
    let spec = site
        .spec
        .routers
        .get(index)
        .ok_or_else(|| LabError::UnknownRouter(format!("#{index}")))?;
    let name = spec.name.clone();
    let path = |suffix: &str| site.dir.join(format!("{name}.{suffix}"));
    let mut k = HostKeepalived {
        lab: site.id,
        netns: namespace(site.run_id, &name),
        cpu: spec.cpu,
        conf: path("conf"),
        log: path("log"),
        pid_file: path("pid"),
        vrrp_pid_file: path("vrrp.pid"),
        tmp: spec.tmp.clone().unwrap_or_else(|| path("tmp")),
        main_pid: 0,
        name,
    };
    registry::step(|| k.create_namespace(site, index))?;
    k.start(site, index)?;
    Ok(k)
}

impl HostKeepalived {
    /// Its network namespace, under /run/netns.
    pub fn netns(&self) -> &str {
        &self.netns
    }
    /// The CPU keepalived is pinned to, if any.
    pub fn cpu(&self) -> Option<u32> {
        self.cpu
    }
    /// keepalived's main process (the parent; it does not send adverts).
    pub fn main_pid(&self) -> u32 {
        self.main_pid
    }
    /// keepalived's config file.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }
    /// keepalived's stdout and stderr (`-l -D`: detailed log to the console).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    /// The `-p` pid file (main process).
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }
    /// The `-r` pid file (the VRRP child, which sends the adverts).
    pub fn vrrp_pid_file(&self) -> &Path {
        &self.vrrp_pid_file
    }
    /// The directory keepalived sees as /tmp (SIGUSR2 writes `keepalived.stats` there).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The VRRP child's pid (the process that sends adverts), from the `-r` pid file;
    /// waits briefly if keepalived is (re)starting it.
    pub fn vrrp_pid(&self) -> Result<u32, LabError> {
        let mut found = None;
        let mut exited = None;
        cmd::wait_until(VRRP_CHILD_TIMEOUT, || {
            if let Some(status) = registry::child_exit(self.lab, &self.name) {
                exited = Some(status);
                return true;
            }
            found = fs::read_to_string(&self.vrrp_pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|&p| i32::try_from(p).is_ok_and(cmd::pid_alive));
            found.is_some()
        });
        if let Some(status) = exited {
            return Err(self.exited(status.to_string()));
        }
        found.ok_or_else(|| LabError::NoVrrpChild {
            router: self.name.clone(),
            pid_file: self.vrrp_pid_file.clone(),
            timeout: VRRP_CHILD_TIMEOUT,
            log: self.log.clone(),
            log_tail: cmd::tail(&self.log, LOG_TAIL_LINES),
        })
    }

    /// Waits for the VRRP child: a keepalived that dies at startup (bad config, failed
    /// mount) fails here, with its log, rather than as a mysterious missing master.
    pub(crate) fn wait_started(&self) -> Result<(), LabError> {
        self.vrrp_pid().map(drop)
    }

    fn exited(&self, status: String) -> LabError {
        LabError::KeepalivedExited {
            router: self.name.clone(),
            status,
            log: self.log.clone(),
            log_tail: cmd::tail(&self.log, LOG_TAIL_LINES),
        }
    }

    fn create_namespace(&self, site: &Site<'_>, index: usize) -> Result<(), LabError> {
        let (ns, sw) = (self.netns.as_str(), site.switch_netns);
        let port = bridge_port(&self.name);
        cmd::add_netns(ns)?;
        // Set before eth0 exists: a new device takes the namespace's defaults.
        if site.spec.ipv6 {
            // No duplicate address detection: the link-local address keepalived sends from
            // is usable at once instead of after ~1 s of "tentative".
            cmd::ns_sysctl(
                ns,
                &[
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ],
            )?;
        } else if site.has_ipv6 {
            // An IPv4 lab stays IPv4: no ND/MLD chatter in the captures.
            cmd::ns_disable_ipv6(ns)?;
        }
        // Created straight into the two namespaces: nothing ever appears in the root namespace.
        cmd::run(
            "ip",
            &[
                "-n",
                sw,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_IFACE,
                "netns",
                ns,
            ],
        )?;
        cmd::run(
            "ip",
            &["-n", sw, "link", "set", &port, "master", site.bridge, "up"],
        )?;
        let v4 = format!("{}/24", router_v4(index));
        cmd::run("ip", &["-n", ns, "addr", "add", &v4, "dev", ROUTER_IFACE])?;
        if site.spec.ipv6 {
            let v6 = format!("{}/64", router_v6(index));
            cmd::run(
                "ip",
                &["-n", ns, "addr", "add", &v6, "dev", ROUTER_IFACE, "nodad"],
            )?;
        }
        cmd::run("ip", &["-n", ns, "link", "set", ROUTER_IFACE, "up"])?;
        Ok(())
    }

    fn start(&mut self, site: &Site<'_>, index: usize) -> Result<(), LabError> {
        let config = keepalived::render_config(site.spec, index, site.run_id);
        fs::write(&self.conf, config).map_err(io(&self.conf))?;
        if !self.tmp.exists() {
            fs::DirBuilder::new()
                .mode(0o1777)
                .create(&self.tmp)
                .map_err(io(&self.tmp))?;
        }
        let log = File::create(&self.log).map_err(io(&self.log))?;
        let log_err = log.try_clone().map_err(io(&self.log))?;
        let mut command = keepalived::command(self, log, log_err);
        self.main_pid = registry::spawn_child(self.lab, &self.name, &mut command)?;
        Ok(())
    }
}

/// Waits for a process to reach one of `states` (the letter of /proc/PID/stat); returns
/// the last state seen.
fn wait_for_state(pid: u32, states: &[char]) -> Option<char> {
    let mut last = None;
    cmd::wait_until(fault::TAKE_HOLD, || {
        last = process_state(pid);
        last.is_some_and(|s| states.contains(&s))
    });
    last
}

/// A process's state letter (R, S, D, T...), from /proc/PID/stat.
fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised comm, which may itself hold spaces.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        cmd::signal(pid, sig);
    }
}

impl Machine for HostKeepalived {
    fn name(&self) -> &str {
        &self.name
    }

    fn capture_point(&self) -> String {
        format!("{ROUTER_IFACE}@{}", self.netns)
    }

    fn recorder(&self) -> Recorder {
        Recorder::Host
    }

    fn log(&self) -> &Path {
        &self.log
    }

    fn check_alive(&self) -> Result<(), LabError> {
        match registry::child_exit(self.lab, &self.name) {
            Some(status) => Err(self.exited(status.to_string())),
            None => Ok(()),
        }
    }

    fn holds_vip(&self, vip: IpAddr) -> Result<bool, LabError> {
        let out = cmd::run(
            "ip",
            &["-n", &self.netns, "-o", "addr", "show", "dev", ROUTER_IFACE],
        )?;
        let vip = format!("{vip}/");
        // `-o` lines read "2: eth0    inet 10.10.0.100/24 scope global secondary eth0 ...".
        Ok(out.split_whitespace().any(|tok| tok.starts_with(&vip)))
    }

    fn stop_vrrp(&self) -> Result<Guard, LabError> {
        let pid = self.vrrp_pid()?;
        let guard = Guard::register(
            format!(
                "the SIGSTOP of {}'s keepalived VRRP process {pid}",
                self.name
            ),
            Phase::BeforeLabs,
            move || {
                signal(pid, Signal::CONT);
                Ok(())
            },
        )?;
        signal(pid, Signal::STOP);
        match wait_for_state(pid, &['T']) {
            Some('T') => Ok(guard),
            state => Err(fault::fault_error(
                "sigstop",
                format!("keepalived's VRRP process {pid} did not stop (state {state:?})"),
            )),
        }
    }

    fn write_stats_blocked(&self) -> Result<(), LabError> {
        let vrrp = self.vrrp_pid()?;
        // keepalived's main process passes SIGUSR2 on to the VRRP child, which writes
        // /tmp/keepalived.stats: what monitoring exporters ask for.
        signal(self.main_pid, Signal::USR2);
        match wait_for_state(vrrp, &['D']) {
            Some('D') => Ok(()),
            state => Err(fault::fault_error(
                "io-stall",
                format!(
                    "keepalived's VRRP process {vrrp} did not block writing \
                     /tmp/keepalived.stats (state {state:?}, not D): the throttle on its \
                     disk does not hold its writes"
                ),
            )),
        }
    }

    fn host_keepalived(&self) -> Option<&HostKeepalived> {
        Some(self)
    }

    /// Copies keepalived's log (what it wrote so far), for teardown deletes the lab dir
    /// with the original. A failed copy is only a note: the log adds to the evidence, it
    /// is not the recording.
    fn finish(&self, out_dir: &Path) -> Result<Finished, LabError> {
        let to = saved_log_path(out_dir, &self.name);
        let mut finished = Finished::default();
        if let Err(e) = fs::copy(&self.log, &to) {
            finished.notes.push(format!(
                "{}'s keepalived log not kept: {}: {e}",
                self.name,
                self.log.display()
            ));
        }
        Ok(finished)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
