//! Building a lab, the handles tests and the recorder use on it, and its teardown.

use std::fs::{self, File};
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::keepalived;
use crate::qemu::{self, Guest};
use crate::registry::{self, Record};
use crate::spec::{router_v4, router_v6, Backend, LabSpec};
use crate::LabError;

/// Every lab's namespaces and dir start with this, then `PID-SEQ`: `vmlat-4242-0-vr1`.
/// The pid is what lets [`sweep_stale`](crate::sweep_stale) tell dead runs from live ones.
pub const LAB_PREFIX: &str = "vmlat-";

/// Where lab dirs live. Not /tmp: each keepalived gets a private /tmp bind-mounted over the
/// real one, and would then no longer see its config and pid files there.
pub const LAB_ROOT: &str = "/run/vmlat";

/// The switch namespace is `RUN_ID-sw`, so no router may be called `sw`.
pub(crate) const SWITCH_SUFFIX: &str = "sw";

/// The bridge, inside the switch namespace.
const BRIDGE: &str = "br0";

/// The router's interface inside its namespace: what keepalived binds and captures see.
pub(crate) const ROUTER_IFACE: &str = "eth0";

/// How long keepalived gets to fork its VRRP child and write the -r pid file; it takes a
/// few milliseconds, so this only matters on a badly overloaded machine.
const VRRP_CHILD_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines of keepalived's log quoted in errors.
const LOG_TAIL_LINES: usize = 20;

/// Labs built by this process so far, for unique names.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// One router of a built lab: its namespace (or QEMU guest), interfaces, files and
/// keepalived.
#[derive(Debug)]
pub struct Router {
    name: String,
    backend: Backend,
    guest: Option<Guest>,
    priority: u8,
    cpu: Option<u32>,
    netns: String,
    switch_netns: String,
    bridge_port: String,
    addr: IpAddr,
    conf: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    vrrp_pid_file: PathBuf,
    tmp: PathBuf,
    main_pid: u32,
}

impl Router {
    /// The router's name from the spec (`vr1`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its VRRP priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// The CPU keepalived is pinned to, if any.
    pub fn cpu(&self) -> Option<u32> {
        self.cpu
    }
    /// Where it runs.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// The QEMU guest it runs in, for a [`Backend::Qemu`] router.
    pub fn guest(&self) -> Option<&Guest> {
        self.guest.as_ref()
    }
    /// Its network namespace, under /run/netns (`vmlat-4242-0-vr1`); empty for a guest.
    pub fn netns(&self) -> &str {
        &self.netns
    }
    /// Its interface inside the namespace or guest (`eth0`), where keepalived sends and
    /// receives.
    pub fn iface(&self) -> &str {
        ROUTER_IFACE
    }
    /// The capture point of its interface, `eth0@NETNS`, as the recorder's `-i` takes it;
    /// for a guest, `eth0`, as the guest's own recorder names it.
    pub fn capture_point(&self) -> String {
        match self.backend {
            Backend::Netns => format!("{ROUTER_IFACE}@{}", self.netns),
            Backend::Qemu => qemu::GUEST_IFACE.to_owned(),
        }
    }
    /// Its port on the bridge, in the switch namespace: the veth peer of its interface
    /// (`sw-vr1`), or a guest's tap (`tap-vr1`).
    pub fn bridge_port(&self) -> &str {
        &self.bridge_port
    }
    /// The bridge port's capture point, `sw-vr1@SWITCH_NETNS`.
    pub fn bridge_port_capture_point(&self) -> String {
        format!("{}@{}", self.bridge_port, self.switch_netns)
    }
    /// The address VRRP runs from (10.10.0.N, or fd00:10:10::N in IPv6 labs; IPv6 adverts
    /// themselves leave from the link-local address, as RFC 5798 says).
    pub fn addr(&self) -> IpAddr {
        self.addr
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
}

/// A running lab. Dropping it tears everything down; [`Lab::teardown`] does the same and
/// reports what, if anything, was left behind.
#[derive(Debug)]
pub struct Lab {
    id: u64,
    run_id: String,
    dir: PathBuf,
    switch_netns: String,
    spec: LabSpec,
    routers: Vec<Router>,
}

impl Lab {
    /// Builds the lab and starts keepalived on every router. Returns once every keepalived
    /// runs its VRRP child; the election itself takes about 3 × advert_int more (see
    /// [`Lab::wait_for_master`]). On failure, whatever was built is torn down again.
    pub fn build(spec: &LabSpec) -> Result<Lab, LabError> {
        Lab::build_until(spec, &AtomicBool::new(false))
    }

    /// [`Lab::build`], giving up once `stop` is set (a caller's Ctrl-C flag) while a QEMU
    /// guest boots, which takes seconds: what was built is torn down and the error is
    /// [`LabError::Interrupted`].
    pub fn build_until(spec: &LabSpec, stop: &AtomicBool) -> Result<Lab, LabError> {
        if !rustix::process::geteuid().is_root() {
            return Err(LabError::NotRoot);
        }
        spec.validate()?;
        cmd::check_tools(spec.routers.iter().any(|r| r.cpu.is_some()))?;
        // Built (or found in the cache) before anything exists: it takes a few seconds.
        let image = if spec.routers.iter().any(|r| r.backend == Backend::Qemu) {
            qemu::check_qemu()?;
            Some(qemu::image::ensure(&qemu::guest_vmlat()?)?)
        } else {
            None
        };
        let has_ipv6 = Path::new("/proc/sys/net/ipv6").exists();
        if spec.ipv6 && !has_ipv6 {
            return Err(LabError::NoIpv6);
        }

        let run_id = pick_run_id(spec)?;
        let dir = Path::new(LAB_ROOT).join(&run_id);
        let switch_netns = format!("{run_id}-{SWITCH_SUFFIX}");
        let routers: Vec<Router> = spec
            .routers
            .iter()
            .enumerate()
            .map(|(i, r)| Router {
                name: r.name.clone(),
                backend: r.backend,
                guest: None,
                priority: r.priority,
                cpu: r.cpu,
                netns: match r.backend {
                    Backend::Netns => format!("{run_id}-{}", r.name),
                    Backend::Qemu => String::new(),
                },
                switch_netns: switch_netns.clone(),
                bridge_port: match r.backend {
                    Backend::Netns => format!("sw-{}", r.name),
                    Backend::Qemu => format!("{}{}", qemu::TAP_PREFIX, r.name),
                },
                addr: spec.router_addr(i),
                conf: dir.join(format!("{}.conf", r.name)),
                log: dir.join(format!("{}.log", r.name)),
                pid_file: dir.join(format!("{}.pid", r.name)),
                vrrp_pid_file: dir.join(format!("{}.vrrp.pid", r.name)),
                tmp: r
                    .tmp
                    .clone()
                    .unwrap_or_else(|| dir.join(format!("{}.tmp", r.name))),
                main_pid: 0,
            })
            .collect();

        // Recorded before anything exists, so a signal during the build finds all of it.
        // A guest's QEMU and tap live in the switch namespace: its teardown ends them.
        let mut namespaces: Vec<String> = routers
            .iter()
            .filter(|r| r.backend == Backend::Netns)
            .map(|r| r.netns.clone())
            .collect();
        namespaces.push(switch_netns.clone());
        let id = registry::register(Record {
            run_id: run_id.clone(),
            namespaces,
            dir: dir.clone(),
            children: Vec::new(),
        })?;
        let mut lab = Lab {
            id,
            run_id,
            dir,
            switch_netns,
            spec: spec.clone(),
            routers,
        };
        match lab.create(has_ipv6, image.as_ref(), stop) {
            Ok(()) => Ok(lab),
            Err(e) => {
                if let Err(leftover) = lab.teardown() {
                    eprintln!("vmlat-lab: after a failed build: {leftover}");
                }
                Err(e)
            }
        }
    }

    /// Creates the dir, the switch, the routers, and starts keepalived (booting the
    /// guests, whose keepalived starts inside).
    fn create(
        &mut self,
        has_ipv6: bool,
        image: Option<&qemu::image::Image>,
        stop: &AtomicBool,
    ) -> Result<(), LabError> {
        registry::step(|| self.create_dir())?;
        registry::step(|| self.create_switch(has_ipv6))?;
        for i in 0..self.routers.len() {
            registry::step(|| self.create_router(i, has_ipv6))?;
        }
        for i in 0..self.routers.len() {
            match (self.routers.get(i).map(|r| r.backend), image) {
                (Some(Backend::Qemu), Some(image)) => self.start_guest(i, image, stop)?,
                _ => self.start_keepalived(i)?,
            }
        }
        // Waiting for the VRRP child catches a keepalived that dies at startup (bad config,
        // failed mount) here, with its log, rather than as a mysterious missing master.
        // A guest's /init did the same before it answered.
        for r in self.routers.iter().filter(|r| r.guest.is_none()) {
            self.read_vrrp_pid(r, VRRP_CHILD_TIMEOUT)?;
        }
        Ok(())
    }

    /// Boots router `index`'s QEMU guest on its tap and waits until its keepalived and
    /// recorder run.
    fn start_guest(
        &mut self,
        index: usize,
        image: &qemu::image::Image,
        stop: &AtomicBool,
    ) -> Result<(), LabError> {
        let config = keepalived::render_config(&self.spec, index, &self.run_id);
        let Some(r) = self.routers.get(index) else {
            return Ok(());
        };
        let boot = qemu::Boot {
            name: &r.name,
            dir: &self.dir,
            switch_netns: &self.switch_netns,
            tap: &r.bridge_port,
            addr: format!("{}/24", router_v4(index)),
            keepalived_conf: config,
            image,
            mac_suffix: u8::try_from(index + 1).unwrap_or(u8::MAX),
            tmp_disk: self
                .spec
                .routers
                .get(index)
                .and_then(|s| s.tmp_disk.as_deref()),
        };
        let mut command = qemu::command(&boot)?;
        let pid = registry::spawn_child(self.id, &r.name, &mut command)?;
        let (id, name) = (self.id, r.name.clone());
        let qemu_log = self.dir.join(format!("{name}.qemu.log"));
        let alive = || match registry::child_exit(id, &name) {
            _ if stop.load(Ordering::Relaxed) => Err("interrupted while booting".into()),
            // teardown_all (a signal) took the lab, and killed QEMU with it.
            None if !registry::is_live(id) => Err("the lab was torn down while booting".into()),
            None => Ok(()),
            Some(status) => Err(format!(
                "QEMU exited ({status}); {}:\n{}",
                qemu_log.display(),
                cmd::tail(&qemu_log, LOG_TAIL_LINES)
            )),
        };
        let guest = Guest::start(&r.name, &self.dir, pid, alive).map_err(|e| {
            if stop.load(Ordering::Relaxed) {
                LabError::Interrupted
            } else {
                e
            }
        })?;
        if let Some(r) = self.routers.get_mut(index) {
            r.main_pid = pid;
            r.guest = Some(guest);
        }
        Ok(())
    }

    fn create_dir(&self) -> Result<(), LabError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(LAB_ROOT)
            .map_err(io(Path::new(LAB_ROOT)))?;
        // Not recursive: failing on an existing dir is what keeps two labs apart.
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        // Who owns the lab, for sweep_stale: pid and start time (pids get reused).
        // Without a start time the sweeper falls back to "pid alive means owner alive".
        let me = std::process::id();
        let line = match cmd::start_time(me) {
            Some(start) => format!("{me} {start}\n"),
            None => format!("{me}\n"),
        };
        let owner = self.dir.join(crate::sweep::OWNER_FILE);
        fs::write(&owner, line).map_err(io(&owner))
    }

    fn create_switch(&self, has_ipv6: bool) -> Result<(), LabError> {
        let sw = self.switch_netns.as_str();
        cmd::add_netns(sw)?;
        if has_ipv6 {
            // The bridge is a layer-2 switch: without IPv6 it sends no router solicitations
            // or MLD reports of its own, and captures show only the routers' traffic.
            cmd::ns_disable_ipv6(sw)?;
        }
        // No multicast snooping: adverts to 224.0.0.18 / ff02::12 are flooded to every port,
        // as on a plain switch, whatever MLD/IGMP the routers send.
        cmd::run(
            "ip",
            &[
                "-n",
                sw,
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;
        cmd::run("ip", &["-n", sw, "link", "set", BRIDGE, "up"])?;
        Ok(())
    }

    fn create_router(&self, index: usize, has_ipv6: bool) -> Result<(), LabError> {
        let Some(r) = self.routers.get(index) else {
            return Ok(());
        };
        if r.backend == Backend::Qemu {
            return qemu::create_tap(&self.switch_netns, &r.bridge_port, BRIDGE);
        }
        let (ns, sw, port) = (
            r.netns.as_str(),
            self.switch_netns.as_str(),
            r.bridge_port.as_str(),
        );
        cmd::add_netns(ns)?;
        // Set before eth0 exists: a new device takes the namespace's defaults.
        if self.spec.ipv6 {
            // No duplicate address detection: the link-local address keepalived sends from
            // is usable at once instead of after ~1 s of "tentative".
            cmd::ns_sysctl(
                ns,
                &[
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ],
            )?;
        } else if has_ipv6 {
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
                port,
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
            &["-n", sw, "link", "set", port, "master", BRIDGE, "up"],
        )?;
        let v4 = format!("{}/24", router_v4(index));
        cmd::run("ip", &["-n", ns, "addr", "add", &v4, "dev", ROUTER_IFACE])?;
        if self.spec.ipv6 {
            let v6 = format!("{}/64", router_v6(index));
            cmd::run(
                "ip",
                &["-n", ns, "addr", "add", &v6, "dev", ROUTER_IFACE, "nodad"],
            )?;
        }
        cmd::run("ip", &["-n", ns, "link", "set", ROUTER_IFACE, "up"])?;
        Ok(())
    }

    fn start_keepalived(&mut self, index: usize) -> Result<(), LabError> {
        let config = keepalived::render_config(&self.spec, index, &self.run_id);
        let Some(r) = self.routers.get(index) else {
            return Ok(());
        };
        fs::write(&r.conf, config).map_err(io(&r.conf))?;
        if !r.tmp.exists() {
            fs::DirBuilder::new()
                .mode(0o1777)
                .create(&r.tmp)
                .map_err(io(&r.tmp))?;
        }
        let log = File::create(&r.log).map_err(io(&r.log))?;
        let log_err = log.try_clone().map_err(io(&r.log))?;
        let mut command = keepalived::command(r, log, log_err);
        let pid = registry::spawn_child(self.id, &r.name, &mut command)?;
        if let Some(r) = self.routers.get_mut(index) {
            r.main_pid = pid;
        }
        Ok(())
    }

    /// Reads the router's VRRP pid file, waiting up to `timeout` for keepalived to write it.
    fn read_vrrp_pid(&self, r: &Router, timeout: Duration) -> Result<u32, LabError> {
        let mut found = None;
        let mut exited = None;
        cmd::wait_until(timeout, || {
            if let Some(status) = registry::child_exit(self.id, &r.name) {
                exited = Some(status);
                return true;
            }
            found = fs::read_to_string(&r.vrrp_pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|&p| i32::try_from(p).is_ok_and(cmd::pid_alive));
            found.is_some()
        });
        if let Some(status) = exited {
            return Err(self.exited(r, status.to_string()));
        }
        found.ok_or_else(|| LabError::NoVrrpChild {
            router: r.name.clone(),
            pid_file: r.vrrp_pid_file.clone(),
            timeout,
            log: r.log.clone(),
            log_tail: cmd::tail(&r.log, LOG_TAIL_LINES),
        })
    }

    fn exited(&self, r: &Router, status: String) -> LabError {
        LabError::KeepalivedExited {
            router: r.name.clone(),
            status,
            log: r.log.clone(),
            log_tail: cmd::tail(&r.log, LOG_TAIL_LINES),
        }
    }

    /// This run's id, the common prefix of its namespace names (`vmlat-4242-0`).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    /// The lab dir: configs, logs, pid files, private /tmp dirs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The spec the lab was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }
    /// The virtual IP.
    pub fn vip(&self) -> IpAddr {
        self.spec.vip()
    }
    /// The switch namespace, which holds the bridge and its ports.
    pub fn switch_netns(&self) -> &str {
        &self.switch_netns
    }
    /// The bridge's name inside the switch namespace (`br0`).
    pub fn bridge(&self) -> &str {
        BRIDGE
    }
    /// The bridge's capture point, `br0@SWITCH_NETNS`: every advert crosses it.
    pub fn bridge_capture_point(&self) -> String {
        format!("{BRIDGE}@{}", self.switch_netns)
    }
    /// All routers, in spec order.
    pub fn routers(&self) -> &[Router] {
        &self.routers
    }
    /// The router called `name`.
    pub fn router(&self, name: &str) -> Result<&Router, LabError> {
        self.routers
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| LabError::UnknownRouter(name.to_owned()))
    }
    /// keepalived's main pid on router `name`.
    pub fn main_pid(&self, name: &str) -> Result<u32, LabError> {
        self.router(name).map(Router::main_pid)
    }
    /// The pid of the VRRP child on router `name` (the process that sends adverts), from the
    /// `-r` pid file; waits briefly if keepalived is (re)starting it.
    pub fn vrrp_pid(&self, name: &str) -> Result<u32, LabError> {
        let r = self.router(name)?;
        if r.guest.is_some() {
            return Err(LabError::InvalidSpec(format!(
                "{name} is a QEMU guest: its keepalived's pids are the guest's, not the host's"
            )));
        }
        self.read_vrrp_pid(r, VRRP_CHILD_TIMEOUT)
    }

    /// The QEMU guest router `name` runs in.
    pub fn guest(&self, name: &str) -> Result<&Guest, LabError> {
        self.router(name)?.guest.as_ref().ok_or_else(|| {
            LabError::InvalidSpec(format!("{name} is not a QEMU guest (backend netns)"))
        })
    }

    /// Whether router `name` currently holds the VIP on its interface (that is, is master).
    pub fn holds_vip(&self, name: &str) -> Result<bool, LabError> {
        let r = self.router(name)?;
        if let Some(guest) = &r.guest {
            return guest.holds(self.vip());
        }
        let out = cmd::run(
            "ip",
            &["-n", &r.netns, "-o", "addr", "show", "dev", ROUTER_IFACE],
        )?;
        let vip = format!("{}/", self.vip());
        // `-o` lines read "2: eth0    inet 10.10.0.100/24 scope global secondary eth0 ...".
        Ok(out.split_whitespace().any(|tok| tok.starts_with(&vip)))
    }

    /// Waits until router `name` is the only master: it holds the VIP and no other router
    /// does. At startup a backup can hold the VIP for a moment too, when the master's first
    /// advert reaches it late, so this is the "lab has settled" check to run before
    /// recording. Returns how long it waited. Fails early if `name`'s keepalived exits, and
    /// with its log tail if `timeout` passes first.
    pub fn wait_for_master(&self, name: &str, timeout: Duration) -> Result<Duration, LabError> {
        self.wait_vip(name, timeout, true)
    }

    /// Waits until router `name` holds the VIP, whatever the others do: for split brain,
    /// where a cut-off master keeps the VIP while the backup takes over.
    pub fn wait_for_vip(&self, name: &str, timeout: Duration) -> Result<Duration, LabError> {
        self.wait_vip(name, timeout, false)
    }

    fn wait_vip(&self, name: &str, timeout: Duration, sole: bool) -> Result<Duration, LabError> {
        let r = self.router(name)?;
        let start = Instant::now();
        loop {
            if let Some(status) = registry::child_exit(self.id, name) {
                return Err(self.exited(r, status.to_string()));
            }
            let holds = self.holds_vip(name)?;
            let mut others = Vec::new();
            if sole {
                for other in self.routers.iter().filter(|o| o.name != name) {
                    if self.holds_vip(&other.name)? {
                        others.push(other.name.as_str());
                    }
                }
            }
            if holds && others.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= timeout {
                let vip = self.vip();
                let state = if !holds {
                    format!("it never held {vip}")
                } else {
                    format!("{} also held {vip}", others.join(", "))
                };
                return Err(LabError::NoMaster {
                    router: name.to_owned(),
                    timeout,
                    state,
                    log: r.log.clone(),
                    log_tail: cmd::tail(&r.log, LOG_TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets router `name`'s bridge port forwarding (`true`) or disabled (`false`), the
    /// network fault this machine can make: the carrier stays up, so keepalived keeps
    /// sending, but nothing crosses the bridge to or from that router.
    pub fn set_port_forwarding(&self, name: &str, forwarding: bool) -> Result<(), LabError> {
        let r = self.router(name)?;
        cmd::set_port_state(&self.switch_netns, &r.bridge_port, forwarding)
    }

    /// Copies every namespace router's keepalived log (its console log, `-l -D`) into
    /// `dir` as `keepalived-ROUTER.log` ([`saved_log_path`]), for teardown deletes the lab
    /// dir with the originals. The copies are what keepalived had written so far; returns
    /// them. A guest's log comes out with its bundle ([`Guest::finish`]).
    pub fn save_logs(&self, dir: &Path) -> Result<Vec<PathBuf>, LabError> {
        self.routers
            .iter()
            .filter(|r| r.guest.is_none())
            .map(|r| {
                let to = saved_log_path(dir, &r.name);
                fs::copy(&r.log, &to).map_err(io(&r.log))?;
                Ok(to)
            })
            .collect()
    }

    /// Tears the lab down now: stops keepalived (it resigns with priority 0), kills anything
    /// else in the namespaces, deletes them (and with them every interface) and removes the
    /// lab dir. Reports anything that could not be removed, with the command to finish by hand.
    pub fn teardown(self) -> Result<(), LabError> {
        // Drop then finds nothing left to do.
        match registry::take(self.id) {
            Some(record) => record.teardown(),
            None => Ok(()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Drop cannot return the error; losing it silently would hide leaked namespaces.
        if let Some(record) = registry::take(self.id) {
            if let Err(e) = record.teardown() {
                eprintln!("vmlat-lab: {e}");
            }
        }
    }
}

/// Where [`Lab::save_logs`] puts the log of router `router` in `dir`.
pub fn saved_log_path(dir: &Path, router: &str) -> PathBuf {
    dir.join(format!("keepalived-{router}.log"))
}

/// Maps an I/O error on `path` to [`LabError::Io`].
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.to_path_buf();
    move |source| LabError::Io { path, source }
}

/// A run id whose names are all unused: `vmlat-PID-SEQ`, skipping leftovers of a dead run
/// that had the same pid.
fn pick_run_id(spec: &LabSpec) -> Result<String, LabError> {
    let pid = std::process::id();
    for _ in 0..100 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let run_id = format!("{LAB_PREFIX}{pid}-{seq}");
        let taken = cmd::netns_exists(&format!("{run_id}-{SWITCH_SUFFIX}"))
            || spec
                .routers
                .iter()
                .any(|r| cmd::netns_exists(&format!("{run_id}-{}", r.name)))
            || Path::new(LAB_ROOT).join(&run_id).exists();
        if !taken {
            return Ok(run_id);
        }
    }
    Err(LabError::NamesExhausted {
        pid,
        prefix: LAB_PREFIX,
    })
}
