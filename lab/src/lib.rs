//! vmlat's lab: builds VRRP labs (network namespaces on a bridge running real
//! keepalived), and tears down everything it built.
//!
//! # Topology
//!
//! Every lab gets a run id, `vmlat-PID-SEQ`, and one network namespace per router plus one
//! for the switch. Nothing is created in the root namespace: the bridge lives in its own
//! "switch" namespace and the veth pairs are created straight into their two namespaces, so
//! a lab cannot disturb the machine's own networking (routes, firewall, Docker bridges) and
//! two labs, even with the same addresses, never see each other.
//!
//! ```text
//!   netns vmlat-4242-0-vr1          netns vmlat-4242-0-vr2
//!   keepalived prio 150             keepalived prio 100
//!   eth0 10.10.0.1/24               eth0 10.10.0.2/24
//!   (+ VIP 10.10.0.100 as master)     |
//!       |  veth                         |  veth
//!   +---|-------------------------------|----------+
//!   |  sw-vr1 ------------ br0 ------- sw-vr2      |  netns vmlat-4242-0-sw
//!   +----------------------------------------------+  (bridge, no addresses)
//! ```
//!
//! Capture points, in the recorder's `IFACE@NETNS` form: `eth0@vmlat-4242-0-vr1` (what the
//! router sends and receives), `sw-vr1@vmlat-4242-0-sw` (the router's bridge port, where a
//! disabled port drops its traffic), `br0@vmlat-4242-0-sw` (everything). [`Router`] and
//! [`Lab`] hand these out ready-made.
//!
//! Addresses: 10.10.0.N/24 for router N (in spec order), VIP 10.10.0.100; IPv6 labs add
//! fd00:10:10::N/64 and use VIP fd00:10:10::100. IPv4 labs disable IPv6 in their namespaces
//! so captures hold VRRP and ARP only; the bridge never has IPv6 and floods multicast
//! (no snooping), like a plain switch.
//!
//! Each keepalived runs in the foreground, `keepalived -n -l -D -f CONF -p PID -r VRRP_PID
//! -c CHECKER_PID`, started by `ip netns exec` with its own files under
//! `/run/vmlat/RUN_ID/`: `NAME.conf`, `NAME.log` (stdout and stderr), `NAME.pid`,
//! `NAME.vrrp.pid` (the VRRP child, the process that sends adverts), and `NAME.tmp/`,
//! bind-mounted over /tmp for that keepalived only, so SIGUSR2's `keepalived.stats` of each
//! router is its own (and can be put on a throttled disk with [`RouterSpec::tmp`]).
//!
//! # Use
//!
//! ```no_run
//! use std::time::Duration;
//! use vmlat_lab::{Lab, LabSpec};
//!
//! let lab = Lab::build(&LabSpec::pair())?;
//! lab.wait_for_master("vr1", Duration::from_secs(10))?;
//! let vr1 = lab.router("vr1")?;
//! println!("record with -i {}", vr1.capture_point());      // eth0@vmlat-4242-0-vr1
//! println!("adverts come from pid {}", lab.vrrp_pid("vr1")?);
//! lab.teardown()?; // or just drop it
//! # Ok::<(), vmlat_lab::LabError>(())
//! ```
//!
//! # Teardown, always
//!
//! - Dropping a [`Lab`] (or [`Lab::teardown`], which reports leftovers) stops keepalived with
//!   SIGTERM (it resigns with priority 0, as in a real shutdown), kills anything else left in
//!   the namespaces, deletes them (and with them every interface), and removes the lab dir.
//! - Every lab is also in a process-wide registry. [`cleanup_on_signal`] installs a
//!   SIGINT/SIGTERM/SIGHUP handler that tears all of them down and then dies of the signal;
//!   a program with its own signal handling calls [`teardown_all`] on its way out instead.
//! - A run killed with SIGKILL leaves its namespaces (and a running keepalived) behind;
//!   [`sweep_stale`] removes those of runs whose process is gone.
//!
//! # Backends
//!
//! Where a router runs is its [`Backend`]; what depends on it is behind one interface,
//! [`machine::Machine`], with one implementation module a backend: `netns`
//! ([`HostKeepalived`]: keepalived as processes of this host, in a namespace), [`qemu`]
//! (a QEMU guest on a tap in the bridge, keepalived and a recorder inside) and `vagrant`
//! (the Vagrantfile's VMs, over `vagrant ssh` and `virsh`: `docs/vagrant.md`). The
//! lab builds each router's machine in one place ([`Lab::build`]); faults and the runner
//! ask the machine (stop its VRRP process, make it write its stats file, its VM's host
//! handles, its own bundle) and never match on the backend. [`Backend::faults`] lists the
//! faults each backend takes, which scenario files are checked against.
//!
//! # Scenarios
//!
//! [`scenario`] reads scenario files (a topology, one fault, the expected verdict; the
//! format is in `docs/scenarios.md`), [`fault`] injects real faults (SIGSTOP, freezer,
//! a SCHED_FIFO hog, a blocked disk write, a disabled bridge port) whose undo is in the
//! registry, so [`teardown_all`] clears them before tearing down the labs, and [`runner`]
//! runs a scenario end to end: lab, recording, fault, analysis, charts, check.
//!
//! Everything here needs root; [`Lab::build`] says so ([`LabError::NotRoot`]) rather than
//! failing halfway.

mod cmd;
mod error;
pub mod fault;
mod keepalived;
mod lab;
pub mod machine;
mod netns;
pub mod qemu;
mod qmp;
mod registry;
pub mod runner;
pub mod scenario;
mod spec;
mod sweep;
mod vagrant;

pub use error::LabError;
pub use lab::{Lab, Router, LAB_PREFIX, LAB_ROOT};
pub use netns::HostKeepalived;
pub use registry::{cleanup_on_signal, teardown_all};
pub use spec::{
    Backend, LabSpec, RouterSpec, VrrpVersion, MAX_ROUTERS, MAX_ROUTER_NAME, SUBNET_V4, SUBNET_V6,
    VIP_V4, VIP_V6,
};
pub use sweep::sweep_stale;
