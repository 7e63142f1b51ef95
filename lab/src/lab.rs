//! Building a lab, the handles tests and the recorder use on it, and its teardown.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::machine::Machine;
use crate::netns::{self, HostKeepalived};
use crate::qemu::{self, router::QemuRouter, Guest};
use crate::registry::{self, Record};
use crate::spec::{Backend, LabSpec};
use crate::vagrant;
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

/// Lines of keepalived's log (or a guest's console) quoted in errors.
pub(crate) const LOG_TAIL_LINES: usize = 20;

/// Labs built by this process so far, for unique names.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// One router of a built lab: its place on the bridge and the [`Machine`] it runs on
/// (a namespace, a QEMU guest), which answers everything that depends on where it runs.
#[derive(Debug)]
pub struct Router {
    name: String,
    backend: Backend,
    priority: u8,
    bridge_port: String,
    port_capture_point: String,
    addr: IpAddr,
    machine: Box<dyn Machine>,
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
    /// Where it runs.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// The machine it runs on.
    pub fn machine(&self) -> &dyn Machine {
        self.machine.as_ref()
    }
    /// Its keepalived as processes of this host (a namespace router).
    pub fn host_keepalived(&self) -> Option<&HostKeepalived> {
        self.machine.host_keepalived()
    }
    /// The QEMU guest it runs in, for a [`Backend::Qemu`] router.
    pub fn guest(&self) -> Option<&Guest> {
        self.machine
            .as_any()
            .downcast_ref::<QemuRouter>()
            .map(|q| &q.guest)
    }
    /// The CPU keepalived is pinned to, if any.
    pub fn cpu(&self) -> Option<u32> {
        self.host_keepalived().and_then(HostKeepalived::cpu)
    }
    /// Its network namespace, under /run/netns (`vmlat-4242-0-vr1`); empty for a guest.
    pub fn netns(&self) -> &str {
        self.host_keepalived().map_or("", HostKeepalived::netns)
    }
    /// Its interface inside the namespace or guest (`eth0`), where keepalived sends and
    /// receives.
    pub fn iface(&self) -> &str {
        ROUTER_IFACE
    }
    /// The capture point of its interface, `eth0@NETNS`, as the recorder's `-i` takes it;
    /// for a guest, `eth0`, as the guest's own recorder names it.
    pub fn capture_point(&self) -> String {
        self.machine.capture_point()
    }
    /// Its port on the bridge, in the switch namespace: the veth peer of its interface
    /// (`sw-vr1`), or a guest's tap (`tap-vr1`); a Vagrant VM's libvirt tap (`vnet1`).
    pub fn bridge_port(&self) -> &str {
        &self.bridge_port
    }
    /// The bridge port's capture point, `sw-vr1@SWITCH_NETNS` (a Vagrant VM's tap is in
    /// this host's namespace: `vnet1`).
    pub fn bridge_port_capture_point(&self) -> String {
        self.port_capture_point.clone()
    }
    /// The address VRRP runs from (10.10.0.N, or fd00:10:10::N in IPv6 labs; IPv6 adverts
    /// themselves leave from the link-local address, as RFC 5798 says).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// keepalived's main process (the parent; it does not send adverts); for a guest, its
    /// QEMU process.
    pub fn main_pid(&self) -> u32 {
        match (self.host_keepalived(), self.machine.vm()) {
            (Some(k), _) => k.main_pid(),
            (None, Some(vm)) => vm.host_pid().unwrap_or(0),
            (None, None) => 0,
        }
    }
    /// keepalived's config file (a namespace router's; empty for a guest).
    pub fn conf_path(&self) -> &Path {
        self.host_keepalived()
            .map_or(Path::new(""), HostKeepalived::conf_path)
    }
    /// keepalived's stdout and stderr (`-l -D`: detailed log to the console); a guest's
    /// console log.
    pub fn log_path(&self) -> &Path {
        self.machine.log()
    }
    /// The `-p` pid file (main process; a namespace router's, empty for a guest).
    pub fn pid_file(&self) -> &Path {
        self.host_keepalived()
            .map_or(Path::new(""), HostKeepalived::pid_file)
    }
    /// The `-r` pid file (the VRRP child, which sends the adverts; a namespace router's,
    /// empty for a guest).
    pub fn vrrp_pid_file(&self) -> &Path {
        self.host_keepalived()
            .map_or(Path::new(""), HostKeepalived::vrrp_pid_file)
    }
    /// The directory keepalived sees as /tmp (SIGUSR2 writes `keepalived.stats` there; a
    /// namespace router's, empty for a guest).
    pub fn tmp_dir(&self) -> &Path {
        self.host_keepalived()
            .map_or(Path::new(""), HostKeepalived::tmp_dir)
    }
}

/// What a backend needs of the lab to build one router's machine.
pub(crate) struct Site<'a> {
    /// The lab's registry id: its machines' processes are registered under it.
    pub id: u64,
    pub run_id: &'a str,
    /// The lab dir, for the machines' files.
    pub dir: &'a Path,
    pub switch_netns: &'a str,
    /// The bridge in the switch namespace.
    pub bridge: &'a str,
    pub spec: &'a LabSpec,
    /// Whether the kernel has IPv6 (an IPv4 lab disables it in its namespaces).
    pub has_ipv6: bool,
}

/// A running lab. Dropping it tears everything down; [`Lab::teardown`] does the same and
/// reports what, if anything, was left behind.
#[derive(Debug)]
pub struct Lab {
    id: u64,
    run_id: String,
    dir: PathBuf,
    switch_netns: String,
    /// Where every advert crosses: `br0@SWITCH_NETNS`, or a Vagrant lab's libvirt bridge.
    bridge_capture_point: String,
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
        let vagrant = spec.is_vagrant();
        if vagrant {
            vagrant::check_tools()?;
        } else {
            cmd::check_tools(spec.routers.iter().any(|r| r.cpu.is_some()))?;
        }
        // Built (or found in the cache) before anything exists: it takes a few seconds.
        let image = if spec.routers.iter().any(|r| r.backend == Backend::Qemu) {
            Some(qemu::router::prepare()?)
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
        // Recorded before anything exists, so a signal during the build finds all of it.
        // A guest's QEMU and tap live in the switch namespace: its teardown ends them.
        let mut namespaces: Vec<String> = spec
            .routers
            .iter()
            .filter(|r| r.backend == Backend::Netns)
            .map(|r| netns::namespace(&run_id, &r.name))
            .collect();
        // A vagrant lab builds no network: its VMs are on libvirt's.
        if !vagrant {
            namespaces.push(switch_netns.clone());
        }
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
            bridge_capture_point: format!("{BRIDGE}@{switch_netns}"),
            switch_netns,
            spec: spec.clone(),
            routers: Vec::new(),
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

    /// Creates the dir and the switch, then each router's machine (which starts its
    /// keepalived), then waits until every keepalived runs.
    fn create(
        &mut self,
        has_ipv6: bool,
        image: Option<&qemu::image::Image>,
        stop: &AtomicBool,
    ) -> Result<(), LabError> {
        registry::step(|| self.create_dir())?;
        let vagrant = self.spec.is_vagrant();
        if vagrant {
            vagrant::check_running(&self.spec, &self.dir.join("vagrant-status.log"))?;
        } else {
            registry::step(|| self.create_switch(has_ipv6))?;
        }
        for (index, r) in self.spec.routers.iter().enumerate() {
            let site = Site {
                id: self.id,
                run_id: &self.run_id,
                dir: &self.dir,
                switch_netns: &self.switch_netns,
                bridge: BRIDGE,
                spec: &self.spec,
                has_ipv6,
            };
            let on_bridge = |port: String| {
                let capture = format!("{port}@{}", self.switch_netns);
                (port, capture, self.spec.router_addr(index))
            };
            // The one place that knows which module builds which backend.
            let (machine, (bridge_port, port_capture_point, addr)): (Box<dyn Machine>, _) =
                match (r.backend, image) {
                    (Backend::Qemu, Some(image)) => (
                        Box::new(qemu::router::create(&site, index, image, stop)?),
                        on_bridge(qemu::router::bridge_port(&r.name)),
                    ),
                    (Backend::Vagrant, _) => {
                        let vm = vagrant::create(&site, index)?;
                        // Every VM's tap hangs off the same libvirt bridge.
                        self.bridge_capture_point = vm.bridge().to_owned();
                        let port = vm.tap().to_owned();
                        let addr = vm.addr();
                        (Box::new(vm), (port.clone(), port, addr))
                    }
                    _ => (
                        Box::new(netns::create(&site, index)?),
                        on_bridge(netns::bridge_port(&r.name)),
                    ),
                };
            self.routers.push(Router {
                name: r.name.clone(),
                backend: r.backend,
                priority: r.priority,
                bridge_port,
                port_capture_point,
                addr,
                machine,
            });
        }
        // A guest's /init waited for its keepalived before it answered.
        for k in self.routers.iter().filter_map(Router::host_keepalived) {
            k.wait_started()?;
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
        self.bridge_capture_point.clone()
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
        self.host_keepalived(name)?.vrrp_pid()
    }

    /// Router `name`'s keepalived as processes of this host, or an error saying that
    /// router's keepalived runs elsewhere.
    pub fn host_keepalived(&self, name: &str) -> Result<&HostKeepalived, LabError> {
        let r = self.router(name)?;
        r.host_keepalived().ok_or_else(|| {
            LabError::InvalidSpec(format!(
                "{name} runs on backend {}: its keepalived's pids are the guest's, not this host's",
                r.backend.name()
            ))
        })
    }

    /// The QEMU guest router `name` runs in.
    pub fn guest(&self, name: &str) -> Result<&Guest, LabError> {
        let r = self.router(name)?;
        r.guest().ok_or_else(|| {
            LabError::InvalidSpec(format!(
                "{name} is not a QEMU guest (backend {})",
                r.backend.name()
            ))
        })
    }

    /// Whether router `name` currently holds the VIP on its interface (that is, is master).
    pub fn holds_vip(&self, name: &str) -> Result<bool, LabError> {
        self.router(name)?.machine.holds_vip(self.vip())
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
        let machine = self.router(name)?.machine();
        let start = Instant::now();
        loop {
            machine.check_alive()?;
            let holds = machine.holds_vip(self.vip())?;
            let mut others = Vec::new();
            if sole {
                for other in self.routers.iter().filter(|o| o.name != name) {
                    if other.machine.holds_vip(self.vip())? {
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
                    log: machine.log().to_path_buf(),
                    log_tail: cmd::tail(machine.log(), LOG_TAIL_LINES),
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
