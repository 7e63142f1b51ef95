//! Constructed trace bundles: a manifest, an event stream written with the real
//! `EventWriter`, and pcaps, on a made-up time line where UTC and CLOCK_MONOTONIC differ
//! by a constant (with a clock anchor every second). Records are given in UTC.
//!
//! The wall clock of a bundle can be stepped ([`BundleBuilder::step_realtime`]), as NTP
//! does: from then on its anchors and packet stamps read CLOCK_REALTIME off by the
//! step, while its time line (monotonic) goes on.

use std::net::Ipv4Addr;
use std::path::Path;

use vmlat_bundle::{
    CaptureInfo, CgroupHierarchy, ClockAnchor, CpuSample, DiskSample, EventWriter, FreezerSample,
    FreezerState, Losses, Manifest, Record, RecordedSet, Role, Status, TaskKind, TaskSample,
    VmInfo,
};

use super::{ethernet_ipv4, vrrp_message, write_pcap, NS, VRRP_GROUP};

/// UTC of the scenarios' time 0.
pub const T0: i64 = 1_700_000_000 * NS;
/// CLOCK_MONOTONIC at T0.
const MONO0: i64 = 1_000 * NS;
pub const MS: i64 = 1_000_000;
pub const US: i64 = 1_000;

/// A clock anchor at monotonic `t`, on the constructed time line.
pub fn anchor(t: u64) -> Record {
    Record::Clock(ClockAnchor {
        realtime_ns: t as i64 - MONO0 + T0,
        monotonic_ns: t,
        uncertainty_ns: 50,
    })
}

/// Every tracepoint a full recording has.
pub const ALL_TRACEPOINTS: [&str; 11] = [
    "sched:sched_switch",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "signal:signal_generate",
    "raw_syscalls:sys_enter",
    "raw_syscalls:sys_exit",
    "block:block_rq_issue",
    "syscalls:sys_enter_exit_group",
];

pub fn mono(t: i64) -> u64 {
    (t - T0 + MONO0) as u64
}

/// A capture point: name, interface, and its (UTC, frame) packets.
type Capture = (String, String, Vec<(i64, Vec<u8>)>);

/// A bundle being built.
pub struct BundleBuilder {
    pub host: String,
    pub role: Role,
    pub records: Vec<Record>,
    pub tracepoints: Vec<String>,
    captures: Vec<Capture>,
    pub losses: Losses,
    /// Wall-clock steps: (UTC at which realtime jumps, by how many ns).
    pub realtime_steps: Vec<(i64, i64)>,
    /// The manifest's `arch`.
    pub arch: String,
    /// A host's QEMU processes (`recorded.vms`).
    pub vms: Vec<VmInfo>,
    /// Hardware addresses of capture points: (capture name, MAC).
    pub capture_macs: Vec<(String, String)>,
    /// `recorded.unsupported`: what the recorder could not record, with the reason.
    pub unsupported: Vec<String>,
    /// `recorded.warnings`: what went wrong while recording.
    pub warnings: Vec<String>,
}

/// Writes each bundle (into a temporary directory, in order) and analyzes them all
/// together with the default options.
pub fn analyze_bundles(bundles: Vec<BundleBuilder>) -> vmlat_analyzer::Analysis {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for (i, b) in bundles.into_iter().enumerate() {
        let path = dir.path().join(format!("b{i}"));
        b.write(&path);
        inputs.push(path);
    }
    vmlat_analyzer::analyze(&inputs, &vmlat_analyzer::AnalyzeOptions::default()).unwrap()
}

/// CLOCK_REALTIME at UTC `t` of a machine whose wall clock was stepped by `steps`.
fn stepped(steps: &[(i64, i64)], t: i64) -> i64 {
    t + steps
        .iter()
        .filter(|(at, _)| t >= *at)
        .map(|(_, step)| step)
        .sum::<i64>()
}

impl BundleBuilder {
    pub fn new(host: &str, role: Role) -> Self {
        BundleBuilder {
            host: host.to_string(),
            role,
            records: Vec::new(),
            tracepoints: ALL_TRACEPOINTS.iter().map(|s| s.to_string()).collect(),
            captures: Vec::new(),
            losses: Losses::default(),
            realtime_steps: Vec::new(),
            arch: "x86_64".into(),
            vms: Vec::new(),
            capture_macs: Vec::new(),
            unsupported: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The same recording made on aarch64: its syscalls carry aarch64's numbers
    /// (sendmsg 211, and epoll_pwait 22, since aarch64 has no epoll_wait).
    pub fn recorded_on_aarch64(mut self) -> Self {
        let nr = |nr: i64| match nr {
            SYS_SENDMSG => 211,
            SYS_EPOLL_WAIT => 22,
            other => panic!("no aarch64 number for x86_64 syscall {other} in this helper"),
        };
        for r in &mut self.records {
            match r {
                Record::SyscallEnter { nr: n, .. } | Record::SyscallExit { nr: n, .. } => {
                    *n = nr(*n)
                }
                _ => {}
            }
        }
        self.arch = "aarch64".into();
        self
    }

    /// The recording as a vmlat that did not record exit codes made it: no
    /// `syscalls:sys_enter_exit_group`, no `ExitGroup` records.
    pub fn without_exit_codes(mut self) -> Self {
        self.records
            .retain(|r| !matches!(r, Record::ExitGroup { .. }));
        self.tracepoints
            .retain(|t| t != "syscalls:sys_enter_exit_group");
        self
    }

    /// The recording without syscalls, as `vmlat record` without `--comm`/`--pid`.
    pub fn without_syscalls(mut self) -> Self {
        self.records
            .retain(|r| !matches!(r, Record::SyscallEnter { .. } | Record::SyscallExit { .. }));
        self.tracepoints.retain(|t| !t.starts_with("raw_syscalls"));
        self
    }

    /// Steps the wall clock by `step` ns at UTC `at`: the anchors from then on pair
    /// monotonic with the stepped realtime, and packets captured from then on are
    /// stamped with it.
    pub fn step_realtime(&mut self, at: i64, step: i64) {
        self.realtime_steps.push((at, step));
    }

    pub fn push(&mut self, r: Record) {
        self.records.push(r);
    }

    /// A capture point `name` on `interface` with these VRRPv2 adverts (UTC, source,
    /// priority), VRID 51, interval 1 s.
    pub fn capture(&mut self, name: &str, interface: &str, adverts: &[(i64, Ipv4Addr, u8)]) {
        let with_vrid: Vec<_> = adverts.iter().map(|&(t, src, p)| (t, src, p, 51)).collect();
        self.capture_vrids(name, interface, &with_vrid);
    }

    /// A capture point with adverts of several VRIDs: (UTC, source, priority, VRID),
    /// interval 1 s. A capture of the same name is replaced. An advert's IP
    /// identification is the sender's, the same at every capture point: here its time
    /// in 10 ms steps, which the few hundred µs between capture points do not change.
    pub fn capture_vrids(
        &mut self,
        name: &str,
        interface: &str,
        adverts: &[(i64, Ipv4Addr, u8, u8)],
    ) {
        let frames = adverts
            .iter()
            .map(|&(t, src, prio, vrid)| (t, ((t - T0) / (10 * MS)) as u16, src, prio, vrid))
            .collect::<Vec<_>>();
        self.capture_frames(name, interface, &frames);
    }

    /// A capture point with VRRPv2 adverts of VRID 51 whose IP identification is given:
    /// (time on this machine's clock, identification, source, priority). For a machine
    /// whose clock is not the true time, where the same advert is captured at another
    /// time than elsewhere.
    pub fn capture_identified(
        &mut self,
        name: &str,
        interface: &str,
        adverts: &[(i64, u16, Ipv4Addr, u8)],
    ) {
        let frames = adverts
            .iter()
            .map(|&(t, id, src, prio)| (t, id, src, prio, 51))
            .collect::<Vec<_>>();
        self.capture_frames(name, interface, &frames);
    }

    fn capture_frames(
        &mut self,
        name: &str,
        interface: &str,
        adverts: &[(i64, u16, Ipv4Addr, u8, u8)],
    ) {
        let frames = adverts
            .iter()
            .map(|&(t, id, src, prio, vrid)| {
                let m = vrrp_message(2, vrid, prio, 1, src);
                (t, ethernet_ipv4(src, VRRP_GROUP, id, 112, &m))
            })
            .collect();
        self.captures.retain(|(n, _, _)| n != name);
        self.captures
            .push((name.to_string(), interface.to_string(), frames));
    }

    /// Adds to capture `name` the clock probes of `vmlat record --clock-probes` (a
    /// broadcast UDP datagram from 0.0.0.0 to port 47474, its IPv4 id the probe's
    /// number) seen at `(time, number)`.
    pub fn add_clock_probes(&mut self, name: &str, probes: &[(i64, u16)]) {
        let (_, _, frames) = self
            .captures
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .expect("the capture exists");
        for &(t, seq) in probes {
            let port = vmlat_bundle::CLOCK_PROBE_PORT.to_be_bytes();
            let mut udp = [port, port].concat();
            udp.extend_from_slice(&(8u16 + 8).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(&u64::from(seq).to_be_bytes());
            let any = Ipv4Addr::UNSPECIFIED;
            frames.push((t, ethernet_ipv4(any, Ipv4Addr::BROADCAST, seq, 17, &udp)));
        }
        frames.sort_by_key(|(t, _)| *t);
    }

    /// Writes the bundle into `dir` (created), anchors every second over its span.
    pub fn write(mut self, dir: &Path) {
        std::fs::create_dir_all(dir.join("pcap")).unwrap();
        let (first, last) = self
            .records
            .iter()
            .map(|r| r.time())
            .fold((mono(T0), mono(T0)), |(a, b), t| (a.min(t), b.max(t)));
        let mut t = first - first % NS as u64;
        while t <= last + NS as u64 {
            let mut a = anchor(t);
            if let Record::Clock(c) = &mut a {
                c.realtime_ns = stepped(&self.realtime_steps, c.realtime_ns);
            }
            self.records.push(a);
            t += NS as u64;
        }
        self.records.sort_by_key(|r| r.time());
        let mut w = EventWriter::create(&dir.join("events.vmlat")).unwrap();
        for r in &self.records {
            w.append(r).unwrap();
        }
        w.flush().unwrap();
        self.finish(dir);
    }

    /// Writes the pcaps and the manifest into `dir`, whose `events.vmlat` the caller
    /// wrote (a generator streaming more records than fit in memory).
    pub fn finish(self, dir: &Path) {
        std::fs::create_dir_all(dir.join("pcap")).unwrap();
        // The recorder stopped half a second after the last packet, as a real one does
        // shortly after it is told to: a sender silent then is not an open silence.
        let last_packet = self
            .captures
            .iter()
            .flat_map(|(_, _, frames)| frames.iter().map(|f| f.0))
            .max();
        let stopped = last_packet.map_or(T0 + 60 * NS, |t| t + NS / 2);
        let steps = self.realtime_steps;
        let mut captures = Vec::new();
        for (name, iface, frames) in self.captures {
            let frames: Vec<(i64, Vec<u8>)> = frames
                .into_iter()
                .map(|(t, f)| (stepped(&steps, t), f))
                .collect();
            let file = format!("pcap/{name}.pcap");
            let mac = self
                .capture_macs
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, m)| m.clone());
            captures.push(CaptureInfo {
                name,
                interface: iface,
                netns: None,
                filter: "vrrp".into(),
                file: file.clone(),
                linktype: 1,
                packets: frames.len() as u64,
                mac,
                probes_sent: None,
            });
            write_pcap(&dir.join(file), frames);
        }
        let manifest = Manifest {
            format_version: 1,
            vmlat_version: "test".into(),
            hostname: self.host,
            role: self.role,
            kernel: "6.1.0".into(),
            arch: self.arch,
            cpus: 2,
            boot_id: "b".into(),
            command_line: vec!["vmlat".into(), "record".into()],
            started_realtime_ns: stepped(&steps, T0 - 10 * NS),
            started_monotonic_ns: mono(T0 - 10 * NS),
            stopped_realtime_ns: Some(stepped(&steps, stopped)),
            stopped_monotonic_ns: Some(mono(stopped)),
            status: Status::Complete,
            recorded: RecordedSet {
                captures,
                tracepoints: self.tracepoints,
                unsupported: self.unsupported,
                comms: vec!["keepalived".into()],
                pids: Vec::new(),
                syscall_filter: Some("comm == \"keepalived\"".into()),
                heartbeat_ports: Vec::new(),
                disk_interval_ms: 100,
                keepalived_journal: Default::default(),
                user: None,
                vms: self.vms,
                warnings: self.warnings,
            },
            losses: self.losses,
        };
        manifest.store(dir).unwrap();
    }
}

pub fn switch(t: i64, cpu: u32, prev: (i32, &str), state: u64, next: (i32, &str)) -> Record {
    Record::SchedSwitch {
        t: mono(t),
        cpu,
        prev_tid: prev.0,
        prev_comm: prev.1.into(),
        prev_prio: 120,
        prev_state: state,
        next_tid: next.0,
        next_comm: next.1.into(),
        next_prio: 120,
    }
}

pub fn wakeup(t: i64, waker: i32, tid: i32, comm: &str, cpu: i32) -> Record {
    Record::SchedWakeup {
        t: mono(t),
        cpu: cpu as u32,
        waker_tid: waker,
        tid,
        comm: comm.into(),
        prio: 120,
        target_cpu: cpu,
        new_task: false,
    }
}

pub fn enter(t: i64, tid: i32, nr: i64, fd: u64) -> Record {
    Record::SyscallEnter {
        t: mono(t),
        cpu: 0,
        tid,
        tgid: tid,
        nr,
        args: [fd, 0, 0, 0, 0, 0],
    }
}

pub fn exit(t: i64, tid: i32, nr: i64, ret: i64) -> Record {
    Record::SyscallExit {
        t: mono(t),
        cpu: 0,
        tid,
        tgid: tid,
        nr,
        ret,
    }
}

pub fn signal(t: i64, from: i32, sig: i32, to: i32) -> Record {
    Record::Signal {
        t: mono(t),
        cpu: 0,
        sender_tid: from,
        sender_tgid: from,
        sig,
        code: 0,
        target_tid: to,
        target_comm: "keepalived".into(),
        group: true,
        result: 0,
    }
}

/// Thread `tid` of process `tgid` calls `exit_group(code)` at `t`.
pub fn exit_group(t: i64, tid: i32, tgid: i32, code: i64) -> Record {
    Record::ExitGroup {
        t: mono(t),
        cpu: 0,
        tid,
        tgid,
        code,
    }
}

/// Task `tid` of process `tgid` exits (`sched_process_exit`) at `t`.
pub fn process_exit(t: i64, tid: i32, tgid: i32, comm: &str) -> Record {
    Record::ProcessExit {
        t: mono(t),
        cpu: 0,
        tid,
        tgid,
        comm: comm.into(),
        prio: 120,
    }
}

pub fn task_info(tid: i32, ppid: i32, comm: &str) -> Record {
    Record::TaskInfo {
        t: mono(T0 - 10 * NS),
        tid,
        tgid: tid,
        ppid,
        comm: comm.into(),
    }
}

/// A /proc/diskstats line of `device` (254:minor): writes and their ms, in flight,
/// io_ticks.
pub fn disk(
    t: i64,
    device: &str,
    minor: u32,
    writes: u64,
    write_ms: u64,
    in_flight: u64,
    ticks: u64,
) -> Record {
    Record::Disk(Box::new(DiskSample {
        t: mono(t),
        device: device.into(),
        major: 254,
        minor,
        reads: 0,
        reads_merged: 0,
        sectors_read: 0,
        read_ms: 0,
        writes,
        writes_merged: 0,
        sectors_written: writes * 8,
        write_ms,
        in_flight,
        io_ticks_ms: ticks,
        time_in_queue_ms: ticks,
        discards: 0,
        discard_ms: 0,
        flushes: 0,
        flush_ms: 0,
    }))
}

/// The aggregate /proc/stat line: `busy` and `steal` ticks so far, the rest idle, at
/// 100 ticks/s on 2 CPUs.
/// A `/proc/stat` line at `t`: CPU `cpu`'s (`None`: the machine's, two CPUs), with
/// `busy` user ticks and `steal` ticks since 100 s before T0, at 100 ticks a second.
pub fn cpu_line(t: i64, cpu: Option<u32>, busy: u64, steal: u64) -> Record {
    let cpus = if cpu.is_some() { 1 } else { 2 };
    let total = ((t - T0 + 100 * NS) / (NS / 100)) as u64 * cpus;
    Record::Cpu(Box::new(CpuSample {
        t: mono(t),
        cpu,
        user: busy,
        nice: 0,
        system: 0,
        idle: total.saturating_sub(busy + steal),
        iowait: 0,
        irq: 0,
        softirq: 0,
        steal,
        guest: 0,
        guest_nice: 0,
        ticks_per_second: 100,
    }))
}

/// A schedstat sample of thread `tid` of QEMU process `tid / 100 * 100` (7001 → 7000).
pub fn task_sample(
    t: i64,
    tid: i32,
    comm: &str,
    kind: TaskKind,
    wait_ns: u64,
    state: char,
) -> Record {
    Record::Task(TaskSample {
        t: mono(t),
        tgid: tid / 100 * 100,
        tid,
        comm: comm.into(),
        kind,
        run_ns: 0,
        wait_ns,
        timeslices: 0,
        state,
    })
}

pub fn block_issue(t: i64, minor: u32, sector: u64, tid: i32, comm: &str) -> Record {
    Record::BlockIssue {
        t: mono(t),
        cpu: 0,
        dev: 254 << 20 | minor,
        sector,
        nr_sector: 8,
        bytes: 4096,
        rwbs: "WS".into(),
        tid,
        comm: comm.into(),
    }
}

pub fn block_complete(t: i64, minor: u32, sector: u64) -> Record {
    Record::BlockComplete {
        t: mono(t),
        cpu: 0,
        dev: 254 << 20 | minor,
        sector,
        nr_sector: 8,
        error: 0,
        rwbs: "WS".into(),
    }
}

/// The freezer state of thread `tid`'s cgroup `/vmlat-test` at `t` (UTC): the
/// sampler's record, with its previous reading 100 ms before.
pub fn freezer(t: i64, tid: i32, hierarchy: CgroupHierarchy, state: FreezerState) -> Record {
    Record::Freezer(FreezerSample {
        t: mono(t),
        tgid: tid,
        tid,
        hierarchy,
        cgroup: "/vmlat-test".into(),
        state,
        previous_t: Some(mono(t - 100 * MS)),
    })
}

pub fn losses(t: i64, losses: Losses) -> Record {
    Record::Losses { t: mono(t), losses }
}

/// keepalived's VRRP child `tid` on CPU 0: woken by its timer, sends one advert (on
/// the wire at `p`, inside its sendmsg on fd 14), back to its epoll_wait.
pub fn send_cycle(tid: i32, p: i64) -> Vec<Record> {
    let ka = (tid, "keepalived");
    let idle = (0, "swapper/0");
    vec![
        wakeup(p - 300 * US, 0, tid, "keepalived", 0),
        switch(p - 200 * US, 0, idle, 0, ka),
        exit(p - 150 * US, tid, SYS_EPOLL_WAIT, 1),
        enter(p - 50 * US, tid, SYS_SENDMSG, 14),
        exit(p + 30 * US, tid, SYS_SENDMSG, 40),
        enter(p + 60 * US, tid, SYS_EPOLL_WAIT, 4),
        switch(p + 80 * US, 0, ka, 1, idle),
    ]
}

/// `from` stops `tid` with SIGSTOP at `at` (it leaves its wait and the CPU in state
/// T) and continues it with SIGCONT at `until`.
pub fn sigstop(tid: i32, from: i32, at: i64, until: i64) -> Vec<Record> {
    let ka = (tid, "keepalived");
    let idle = (0, "swapper/0");
    vec![
        wakeup(at, from, tid, "keepalived", 0),
        signal(at + 10 * US, from, 19, tid),
        switch(at + 100 * US, 0, idle, 0, ka),
        exit(at + 150 * US, tid, SYS_EPOLL_WAIT, -4),
        switch(at + 200 * US, 0, ka, 4, idle),
        signal(until, from, 18, tid),
        wakeup(until + 10 * US, from, tid, "keepalived", 0),
    ]
}

/// x86_64 syscall numbers.
pub const SYS_SENDMSG: i64 = 46;
pub const SYS_EPOLL_WAIT: i64 = 232;
