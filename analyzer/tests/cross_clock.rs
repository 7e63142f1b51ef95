//! A guest's bundle and its host's on one time line: the guest's clock is put on the
//! host's by the adverts both captured, the guest's NIC and the host's tap
//! (`vmlat_analyzer::align`, module documentation).
//!
//! The bundles are generated (`support::bundle`): this machine has no KVM, so a guest
//! whose clock is off its host's, or a VM paused with QMP `stop`/`cont`, is written as
//! the recorders would have seen it. The stage: keepalived's VRRP child 8557 on guest
//! `vm1` is the master 10.10.0.1 of VRID 51, advertising every second, captured at the
//! guest's `eth0@vm1` and 40 µs later at the host's `tap0@hv1`; the backup 10.10.0.2,
//! behind the host's bridge, takes over when the master falls silent, its adverts
//! captured at the tap and 60 µs later in the guest. Each advert carries its sender's
//! IP identification, the same at both capture points.

mod support;

use std::net::Ipv4Addr;

use support::bundle::*;
use support::NS;
use vmlat_analyzer::{
    Analysis, Bound, BundleSummary, CrossMachine, Direction, Gap, Incident, PacketSync, Protocol,
    Verdict,
};
use vmlat_bundle::{Role, TaskKind, VmInfo, VmTap};

const VRRP: i32 = 8557;
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const BACKUP: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
const GUEST_NIC: &str = "eth0@vm1";
const TAP: &str = "tap0@hv1";
/// How long an advert takes from the guest's NIC to the tap, and back.
const OUT: i64 = 40 * US;
const IN: i64 = 60 * US;

fn s(x: f64) -> i64 {
    T0 + (x * NS as f64).round() as i64
}

/// One advert: when it was sent (true time, s), and by whom.
#[derive(Clone, Copy)]
struct Sent {
    at: f64,
    src: Ipv4Addr,
    id: u16,
}

fn master(at: f64) -> Sent {
    Sent {
        at,
        src: MASTER,
        id: at as u16,
    }
}

fn backup(at: f64) -> Sent {
    Sent {
        at,
        src: BACKUP,
        id: 1000 + (at * 100.0) as u16,
    }
}

/// The guest `vm1`: the master's send cycles and both routers' adverts at its NIC.
/// `guest_clock` gives the guest's clock reading (UTC ns) at a true time; `seen_in_guest`
/// when an advert from the backup reached the guest (true time).
fn guest(
    sent: &[Sent],
    guest_clock: impl Fn(i64) -> i64,
    seen_in_guest: impl Fn(i64) -> i64,
) -> BundleBuilder {
    let mut g = BundleBuilder::new("vm1", Role::Guest);
    g.push(task_info(8550, 1, "keepalived"));
    g.push(task_info(VRRP, 8550, "keepalived"));
    let mut at_nic = Vec::new();
    for a in sent {
        let t = s(a.at);
        if a.src == MASTER {
            for r in send_cycle(VRRP, guest_clock(t)) {
                g.push(r);
            }
            at_nic.push((guest_clock(t), a.id, a.src, 150));
        } else {
            at_nic.push((guest_clock(seen_in_guest(t + IN)), a.id, a.src, 100));
        }
    }
    at_nic.sort();
    g.capture_identified(GUEST_NIC, "eth0", &at_nic);
    g
}

/// The host `hv1`: its CPU switching every 100 ms, and the adverts at the VM's tap.
fn host(sent: &[Sent]) -> BundleBuilder {
    let mut h = BundleBuilder::new("hv1", Role::Host);
    for k in 0..240i64 {
        let t = s(-1.0) + k * 100 * MS;
        h.push(switch(t, 1, (0, "swapper/1"), 0, (0, "swapper/1")));
    }
    let at_tap: Vec<_> = sent
        .iter()
        .map(|a| {
            let t = s(a.at);
            match a.src {
                MASTER => (t + OUT, a.id, a.src, 150),
                _ => (t, a.id, a.src, 100),
            }
        })
        .collect();
    h.capture_identified(TAP, "tap0", &at_tap);
    h
}

fn bundle<'a>(a: &'a Analysis, host: &str) -> &'a BundleSummary {
    a.bundles.iter().find(|b| b.host == host).unwrap()
}

fn packets(a: &Analysis) -> &PacketSync {
    match &bundle(a, "vm1").alignment.cross_machine {
        CrossMachine::Packets(p) => p,
        other => panic!("vm1 not lined up by packets: {other:?}"),
    }
}

/// The master's one gap at a capture point.
fn gap<'a>(a: &'a Analysis, capture: &str) -> &'a Gap {
    let gaps: Vec<&Gap> = a
        .gaps
        .iter()
        .filter(|g| g.stream.src == MASTER && g.stream.group.capture == capture)
        .collect();
    assert_eq!(gaps.len(), 1, "{capture}: {:#?}", a.gaps);
    gaps[0]
}

/// The master silent from 4 s to 9 s (its keepalived stopped), the backup advertising
/// at 7.61 s and 8.61 s, before the master preempts it.
fn silent_master() -> Vec<Sent> {
    let mut sent: Vec<Sent> = (0..=4).chain(9..=20).map(|k| master(k as f64)).collect();
    sent.extend([backup(7.61), backup(8.61)]);
    sent.sort_by(|a, b| a.at.total_cmp(&b.at));
    sent
}

const WALL_CLOCK_OFF: i64 = 300 * MS;

/// The guest's wall clock 300 ms ahead of the host's.
fn guest_300_ms_ahead(sent: &[Sent]) -> BundleBuilder {
    let mut g = guest(sent, |t| t, |t| t);
    g.step_realtime(i64::MIN, WALL_CLOCK_OFF);
    g
}

#[test]
fn a_guest_clock_300_ms_off_is_put_on_the_hosts_on_generated_bundles() {
    // Generated: a KVM guest and its host's tap need KVM, which this machine lacks.
    let sent = silent_master();
    let a = analyze_bundles(vec![guest_300_ms_ahead(&sent), host(&sent)]);
    let p = packets(&a);
    assert_eq!(p.reference, "hv1");
    assert_eq!((p.to_reference, p.from_reference), (17, 2), "{p:#?}");
    assert_eq!((p.direction, p.one_sided), (Direction::BothWays, false));
    assert!(p.jumps.is_empty(), "{p:#?}");
    // Within [−300 ms − 60 µs, −300 ms + 40 µs]: the middle, ± 50 µs.
    assert_eq!(p.pieces.len(), 1);
    assert_eq!(p.pieces[0].offset_ns, -WALL_CLOCK_OFF - 10 * US);
    let bound = p.error_bound_ns.unwrap() as i64;
    assert_eq!(bound, 50 * US);
    assert_eq!(
        bundle(&a, "hv1").alignment.cross_machine,
        CrossMachine::Reference {
            aligned: vec!["vm1".into()]
        }
    );

    // The silence lines up at both capture points: the guest's NIC before the tap, by
    // the 40 µs the adverts take, give or take the bound.
    let (nic, tap) = (gap(&a, GUEST_NIC), gap(&a, TAP));
    for (at_nic, at_tap) in [(nic.start.0, tap.start.0), (nic.end.0, tap.end.0)] {
        assert!((at_tap - at_nic - OUT).abs() <= bound, "{nic:#?} {tap:#?}");
    }
    assert!((tap.start.0 - s(4.0) - OUT).abs() <= 1_000);
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);

    // The guest's events take the same correction: the hop table measures each
    // capture from the master's sendmsg, 50 µs before the guest's NIC saw the advert.
    let inc = &a.incidents[0];
    // The tap's delay crosses from the guest's clock to the host's: it carries the
    // alignment's bound; the guest's NIC is on the sender's own clock.
    for (capture, delay, clock_error) in [
        (GUEST_NIC, 50 * US, 0.0),
        (TAP, 50 * US + OUT + 10 * US, bound as f64 / 1e6),
    ] {
        let row = inc.path.iter().find(|r| r.capture == capture).unwrap();
        assert_eq!(row.delay_from.as_deref(), Some("send"), "{row:#?}");
        assert_eq!(row.clock_error_ms, Some(clock_error), "{row:#?}");
        let ms = row.delay_ms.unwrap();
        assert!(
            (ms - delay as f64 / 1e6).abs() < 0.011,
            "{capture}: {ms} ms"
        );
    }
    let text = vmlat_analyzer::report::text::render(&a);
    assert!(
        text.contains("by 19 packets both captured, onto hv1's clock (± 0.05 ms)"),
        "{text}"
    );
    // The pairs of machines, in short: one, vm1 onto hv1.
    let json = serde_json::to_value(&a).unwrap();
    let pairs = json["alignments"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!(pairs[0]["from"], "vm1");
    assert_eq!(pairs[0]["to"], "hv1");
    assert_eq!(pairs[0]["method"], "packets");
    assert_eq!(pairs[0]["error_bound_ns"], 50_000);
    assert_eq!(pairs[0]["matched_packets"], 19);
}

/// The VM paused (QMP `stop`) at 4.6 s and continued at 8.6 s: its clocks stood still
/// meanwhile, so from then on they read 4 s less than the host's for the same instant.
fn paused_guest(t: i64) -> i64 {
    let (stop, cont) = (s(4.6), s(8.6));
    if t < stop {
        t
    } else if t < cont {
        stop
    } else {
        t - (cont - stop)
    }
}

#[test]
fn a_paused_guest_is_a_clock_jump_and_its_silence_lines_up_on_generated_bundles() {
    // Generated: pausing a KVM guest needs KVM. The master sends every second of its
    // own clock: 0 to 4 s, then (4 s later in true time) 9 to 20 s. The backup's two
    // adverts reach the guest when it runs again, the first held in the tap's queue.
    let mut sent: Vec<Sent> = (0..=4).chain(9..=20).map(|k| master(k as f64)).collect();
    sent.extend([backup(7.61), backup(8.61)]);
    sent.sort_by(|a, b| a.at.total_cmp(&b.at));
    let resumed = |t: i64| t.max(s(8.6) + 100 * US);
    let a = analyze_bundles(vec![guest(&sent, paused_guest, resumed), host(&sent)]);
    let p = packets(&a);
    assert_eq!(p.jumps.len(), 1, "{p:#?}");
    let jump = &p.jumps[0];
    assert!((jump.behind_ns - 4 * NS).abs() <= 100 * US, "{jump:#?}");
    assert_eq!(jump.last_before.0, s(4.0) + OUT, "{p:#?}");
    assert!(
        (jump.first_after.0 - (s(8.6) + 100 * US)).abs() <= 100 * US,
        "{p:#?}"
    );
    assert_eq!(p.pieces.len(), 2);
    assert_eq!(p.pieces[0].bound, Bound::NoEarlier);
    assert_eq!(p.pieces[1].bound, Bound::TwoSided);

    // One silence, at the guest's NIC as at the tap: 4 s to 9 s on the host's clock.
    let (nic, tap) = (gap(&a, GUEST_NIC), gap(&a, TAP));
    assert_eq!(nic.start.0, tap.start.0, "{nic:#?} {tap:#?} {p:#?}");
    assert!(
        (nic.end.0 - tap.end.0).abs() <= 100 * US,
        "{nic:#?} {tap:#?}"
    );
    assert!((nic.end.0 - s(9.0)).abs() <= 100 * US);
    // Read by its own clock the guest never went quiet, and the tap's silence looked
    // like the vNIC's: on one time line the guest's clock is seen to stand still.
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    let inc = &a.incidents[0];
    let words = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_eq!(inc.verdict, Verdict::VmPaused, "{words}");
    assert!(!words.contains("on time"), "{words}");
    assert!(
        words.contains("vm1's clock fell 4.000 s behind hv1's"),
        "{words}"
    );
    assert!(inc.path.iter().all(|r| r.silent), "{:#?}", inc.path);

    let text = vmlat_analyzer::report::text::render(&a);
    assert!(
        text.contains("clock jump: vm1's clock fell behind hv1's by 3999.9"),
        "{text}"
    );
}

/// A QEMU process as the host recorder lists it: `-name NAME`, one tap, no MAC given.
fn qemu(pid: i32, name: &str, tap: &str) -> VmInfo {
    VmInfo {
        pid,
        name: Some(name.into()),
        exe: None,
        taps: vec![VmTap {
            ifname: tap.into(),
            netdev: Some("n0".into()),
            mac: None,
        }],
        netns: None,
        tsc_offsets: Vec::new(),
    }
}

/// The host as `vmlat record --role host` records it: QEMU pid 7000 runs `vm1` with its
/// tap `tap0`, its vCPU thread 7001 sampled every 100 ms; the vCPU switches in every
/// 100 ms whenever `runs(t)`.
fn host_with_vm(sent: &[Sent], runs: impl Fn(i64) -> bool) -> BundleBuilder {
    let mut h = host(sent);
    h.vms.push(qemu(7000, "vm1", "tap0"));
    for k in 0..240i64 {
        let t = s(-1.0) + k * 100 * MS + 50 * MS;
        h.push(task_sample(
            t,
            7001,
            "CPU 0/TCG",
            TaskKind::QemuVcpu,
            0,
            'S',
        ));
        if runs(t) {
            h.push(switch(t, 0, (0, "swapper/0"), 0, (7001, "CPU 0/TCG")));
            h.push(switch(t + MS, 0, (7001, "CPU 0/TCG"), 1, (0, "swapper/0")));
        }
    }
    h
}

/// The paused guest of the test above, and its host as `host_with_vm` records it.
fn paused_with_host(runs: impl Fn(i64) -> bool) -> Incident {
    let mut sent: Vec<Sent> = (0..=4).chain(9..=20).map(|k| master(k as f64)).collect();
    sent.sort_by(|a, b| a.at.total_cmp(&b.at));
    let a = analyze_bundles(vec![
        guest(&sent, paused_guest, |t| t),
        host_with_vm(&sent, runs),
    ]);
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    a.incidents[0].clone()
}

#[test]
fn a_pause_the_hosts_scheduler_confirms_is_vm_paused_on_generated_bundles() {
    // Generated (no KVM): QMP stop leaves the vCPU thread asleep in S, never switched
    // in from 4.6 s to 8.6 s.
    let inc = paused_with_host(|t| t < s(4.6) || t > s(8.6));
    let words = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_eq!(inc.verdict, Verdict::VmPaused, "{words}");
    assert!(
        words.contains("vm1's clock fell 4.000 s behind hv1's"),
        "{words}"
    );
    assert!(
        words.contains("no vCPU thread of QEMU pid 7000 ran on hv1"),
        "{words}"
    );
    assert!(words.contains("runs the guest named vm1"), "{words}");
}

#[test]
fn a_clock_that_stood_still_while_the_vcpus_ran_is_no_pause_on_generated_bundles() {
    // Generated: the same jump of the guest's clock, but the host saw the VM's vCPU run
    // all along. Whatever stopped the guest's clock, it was not a pause: no guess.
    let inc = paused_with_host(|_| true);
    let words = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_eq!(inc.verdict, Verdict::Inconclusive, "{words}");
    assert!(
        words.contains("yet its VM's vCPUs ran on the host"),
        "{words}"
    );
}

#[test]
fn bundles_that_share_no_packet_stay_on_their_wall_clocks_on_generated_bundles() {
    // Generated, as above. The host captured another VRID's adverts only.
    let sent = silent_master();
    let elsewhere: Vec<Sent> = (0..=20)
        .map(|k| Sent {
            at: k as f64 + 0.5,
            src: Ipv4Addr::new(10, 20, 0, 1),
            id: 5000 + k,
        })
        .collect();
    let a = analyze_bundles(vec![guest_300_ms_ahead(&sent), host(&elsewhere)]);
    let why = |host: &str| match &bundle(&a, host).alignment.cross_machine {
        CrossMachine::WallClock { why } => why.clone(),
        other => panic!("{host}: {other:?}"),
    };
    assert_eq!(
        why("vm1"),
        "no heartbeat was captured both by it and by the reference machine hv1"
    );
    assert_eq!(why("hv1"), "no other machine captured a packet it captured");
    // Left on its wall clock, the guest's silence starts 300 ms after the true 4 s.
    assert_eq!(gap(&a, GUEST_NIC).start.0, s(4.0) + WALL_CLOCK_OFF);
}

#[test]
fn the_hosts_clock_probes_make_the_bound_two_sided_on_generated_bundles() {
    // Generated, as above: the master's adverts cross one way only; the host recorder's
    // clock probes (--clock-probes, one a second into the tap) cross the other, 60 µs
    // from the tap to the guest's NIC.
    let sent: Vec<Sent> = (0..=20).map(|k| master(k as f64)).collect();
    let probes: Vec<(i64, u16)> = (0..20).map(|k| (s(k as f64 + 0.5), k as u16)).collect();
    let mut g = guest_300_ms_ahead(&sent);
    let at_guest: Vec<(i64, u16)> = probes.iter().map(|&(t, k)| (t + IN, k)).collect();
    g.add_clock_probes(GUEST_NIC, &at_guest);
    let mut h = host(&sent);
    h.add_clock_probes(TAP, &probes);
    let a = analyze_bundles(vec![g, h]);
    let p = packets(&a);
    assert_eq!((p.to_reference, p.from_reference), (21, 20), "{p:#?}");
    assert!(!p.one_sided, "{p:#?}");
    assert_eq!(p.direction, Direction::BothWays);
    // Half the round trip (40 + 60 µs) around the middle, which is 10 µs off the truth.
    let bound = p.error_bound_ns.expect("a two-sided bound");
    assert_eq!(bound, ((OUT + IN) / 2) as u64);
    let truth = -WALL_CLOCK_OFF;
    assert!(
        (p.pieces[0].offset_ns - truth).abs() <= bound as i64,
        "{p:#?}"
    );
    // No stream of probes: they line clocks up and are nothing else.
    assert!(a
        .streams
        .iter()
        .all(|st| st.key.group.protocol != Protocol::Udp));
}

#[test]
fn a_vnic_holding_both_ways_for_4_s_is_no_clock_jump_on_generated_bundles() {
    // Generated from the qemu lab's vnic-delay (a filter-buffer on the guest's netdev):
    // from 5 s to 9 s nothing crosses the tap either way, then the held packets go in a
    // burst. The clocks never moved: bounds that go out and come back are no jump.
    let held = |t: i64| {
        if t >= s(5.0) && t < s(9.0) {
            s(9.0) + (t - s(5.0)) / 1000
        } else {
            t
        }
    };
    let sent: Vec<Sent> = (0..=20).map(|k| master(k as f64)).collect();
    let g = {
        let mut g = guest(&sent, |t| t, |t| t);
        let probes: Vec<(i64, u16)> = (0..20)
            .map(|k| (held(s(k as f64 + 0.5)) + IN, k as u16))
            .collect();
        g.add_clock_probes(GUEST_NIC, &probes);
        g
    };
    let mut h = host(&sent);
    let at_tap: Vec<_> = sent
        .iter()
        .map(|a| (held(s(a.at)) + OUT, a.id, a.src, 150))
        .collect();
    h.capture_identified(TAP, "tap0", &at_tap);
    let probes: Vec<(i64, u16)> = (0..20).map(|k| (s(k as f64 + 0.5), k as u16)).collect();
    h.add_clock_probes(TAP, &probes);
    let a = analyze_bundles(vec![g, h]);
    let p = packets(&a);
    assert!(p.jumps.is_empty(), "{p:#?}");
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    // Sent on time at the guest's NIC, silent at the tap: the tap is the first silent.
    assert_eq!(
        a.incidents[0].first_silent.as_deref(),
        Some(TAP),
        "{:#?}",
        a.incidents[0]
    );
}

#[test]
fn packets_one_way_only_give_a_one_sided_bound_on_generated_bundles() {
    // Generated, as above. The master never falls silent: only its adverts cross, from
    // the guest to the host, all 40 µs late at the tap.
    let sent: Vec<Sent> = (0..=20).map(|k| master(k as f64)).collect();
    let a = analyze_bundles(vec![guest_300_ms_ahead(&sent), host(&sent)]);
    let p = packets(&a);
    assert_eq!((p.to_reference, p.from_reference), (21, 0));
    assert!(p.one_sided);
    assert_eq!(p.error_bound_ns, None);
    // Equal delays lean neither way: the direction is the assumed one.
    assert_eq!(p.direction, Direction::Assumed);
    assert_eq!(p.pieces[0].bound, Bound::NoEarlier);
    // The tightest bound: the guest's times are put 40 µs late, the delay nothing
    // measures one way.
    assert_eq!(p.pieces[0].offset_ns, -WALL_CLOCK_OFF + OUT);
    // Which puts every advert at the guest's NIC on the tap's copy of it.
    let span = |capture: &str| {
        let st = a.streams.iter().find(|st| st.key.group.capture == capture);
        st.map(|st| (st.first.0, st.last.0)).unwrap()
    };
    assert_eq!(span(GUEST_NIC), (s(0.0) + OUT, s(20.0) + OUT));
    assert_eq!(span(GUEST_NIC), span(TAP));
    let text = vmlat_analyzer::report::text::render(&a);
    assert!(
        text.contains("one-sided: off by up to the one-way delay"),
        "{text}"
    );
}

/// A TCG guest's clock, some 3% slow (its TSC mis-calibrated: measured in the qemu
/// lab, `docs/scenarios.md`), and paused from `pause.0` to `pause.1` true time.
fn tcg_guest(t: i64, pause: Option<(i64, i64)>) -> i64 {
    let paused = pause.map_or(0, |(from, to)| (t.min(to) - from).max(0));
    s(0.0) + ((t - paused - s(0.0)) as f64 * 0.97) as i64
}

#[test]
fn a_tcg_guest_clock_3_percent_slow_is_fitted_not_taken_for_jumps_on_generated_bundles() {
    // Generated: the master's adverts one way for 20 s, the guest's clock 3% slow.
    let sent: Vec<Sent> = (0..=20).map(|k| master(k as f64)).collect();
    let a = analyze_bundles(vec![
        guest(&sent, |t| tcg_guest(t, None), |t| t),
        host(&sent),
    ]);
    let p = packets(&a);
    assert!(p.jumps.is_empty(), "{p:#?}");
    assert!((p.pieces[0].drift_ppm - 30_928.0).abs() < 10.0, "{p:#?}");
    let last = |capture: &str| {
        let st = a.streams.iter().find(|st| st.key.group.capture == capture);
        st.map(|st| st.last.0).unwrap()
    };
    // One-sided: each advert at the guest's NIC lands on the tap's copy of it.
    assert!((last(GUEST_NIC) - last(TAP)).abs() <= 10 * US);
}

#[test]
fn a_tcg_guest_paused_is_one_jump_and_vm_paused_despite_its_drift_on_generated_bundles() {
    // Generated: the same slow clock, and a 4 s pause at 10.6 s true time.
    let sent: Vec<Sent> = (0..=10).chain(15..=30).map(|k| master(k as f64)).collect();
    let pause = Some((s(10.6), s(14.6)));
    let a = analyze_bundles(vec![
        guest(&sent, |t| tcg_guest(t, pause), |t| t),
        host(&sent),
    ]);
    let p = packets(&a);
    assert_eq!(p.jumps.len(), 1, "{p:#?}");
    assert!(
        (p.jumps[0].behind_ns - 4 * NS).abs() < 200 * 1_000_000,
        "{p:#?}"
    );
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    assert_eq!(
        a.incidents[0].verdict,
        Verdict::VmPaused,
        "{:#?}",
        a.incidents[0]
    );
}

/// A guest clock 250 ms ahead of its host's at the start and running 200 ppm fast: an
/// unsynchronised VM's clock, off and drifting.
fn off_and_drifting(t: i64) -> i64 {
    t + 250 * MS + ((t - s(0.0)) as f64 * 200e-6) as i64
}

#[test]
fn an_offset_and_a_drift_both_known_are_found_within_the_reported_bound_on_generated_bundles() {
    // Generated, as above: a minute of the master's adverts out of the guest and the
    // host's clock probes into it, the guest's clock off and drifting.
    let sent: Vec<Sent> = (0..=60).map(|k| master(k as f64)).collect();
    let probes: Vec<(i64, u16)> = (0..60).map(|k| (s(k as f64 + 0.5), k as u16)).collect();
    let mut g = guest(&sent, off_and_drifting, |t| t);
    let at_guest: Vec<(i64, u16)> = probes
        .iter()
        .map(|&(t, k)| (off_and_drifting(t + IN), k))
        .collect();
    g.add_clock_probes(GUEST_NIC, &at_guest);
    let mut h = host(&sent);
    h.add_clock_probes(TAP, &probes);
    let a = analyze_bundles(vec![g, h]);
    let p = packets(&a);
    assert!(p.jumps.is_empty() && !p.one_sided, "{p:#?}");
    assert_eq!(p.pieces.len(), 1, "{p:#?}");
    let bound = p.error_bound_ns.expect("a two-sided bound") as i64;
    assert!(bound <= (OUT + IN) / 2 + 10 * US, "{p:#?}");

    // The guest's first and last adverts, put on the host's clock, are where the host's
    // clock (the truth here) says they were sent, within the bound: the offset at the
    // start and the drift over the minute are both right.
    let at_nic = a
        .streams
        .iter()
        .find(|st| st.key.group.capture == GUEST_NIC)
        .unwrap();
    for (aligned, truth) in [(at_nic.first.0, s(0.0)), (at_nic.last.0, s(60.0))] {
        assert!(
            (aligned - truth).abs() <= bound,
            "{} µs off, bound {} µs: {p:#?}",
            (aligned - truth) / US,
            bound / US
        );
    }

    // The JSON says the same: the offset at the first matched packet, and the host's
    // clock running 200 ppm slower than the guest's.
    let json = serde_json::to_value(&a).unwrap();
    let pair = &json["alignments"][0];
    let first = p.pieces[0].first.0;
    let truth = first - off_and_drifting(first);
    let offset = pair["offset_ns"].as_i64().unwrap();
    assert!((offset - truth).abs() <= bound, "{pair:#}");
    let drift = pair["drift_ppm"].as_f64().unwrap();
    assert!((drift + 200.0).abs() < 2.0, "{pair:#}");
    assert_eq!(pair["error_bound_ns"].as_i64(), Some(bound), "{pair:#}");
    assert_eq!(pair["matched_packets"].as_u64(), Some(121), "{pair:#}");
}

#[test]
fn a_guest_no_mac_or_name_ties_is_tied_by_the_tap_that_saw_its_packets_first_on_generated_bundles()
{
    // Generated (no KVM). libvirt names its VMs `instance-…`, not the guest's host name,
    // and this command line gives no MAC: only the packets tell which VM is the guest.
    // A second VM's tap on the same bridge sees the master's multicast adverts too,
    // 20 µs after the master's own tap.
    let mut sent: Vec<Sent> = (0..=4).chain(9..=20).map(|k| master(k as f64)).collect();
    sent.extend([backup(7.61), backup(8.61)]);
    sent.sort_by(|a, b| a.at.total_cmp(&b.at));
    let resumed = |t: i64| t.max(s(8.6) + 100 * US);
    let mut h = host_with_vm(&sent, |t| t < s(4.6) || t > s(8.6));
    h.vms[0].name = Some("instance-0001".into());
    h.vms.push(qemu(7100, "instance-0002", "tap9"));
    let flooded: Vec<_> = sent
        .iter()
        .filter(|a| a.src == MASTER)
        .map(|a| (s(a.at) + OUT + 20 * US, a.id, a.src, 150))
        .collect();
    h.capture_identified("tap9@hv1", "tap9", &flooded);
    let a = analyze_bundles(vec![guest(&sent, paused_guest, resumed), h]);
    let p = packets(&a);
    assert_eq!(p.direction, Direction::BothWays, "{p:#?}");
    assert_eq!(p.sent_first_seen_at.len(), 1, "{p:#?}");
    assert_eq!(p.sent_first_seen_at[0].capture, TAP, "{p:#?}");
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    let inc = &a.incidents[0];
    let words = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_eq!(inc.verdict, Verdict::VmPaused, "{words}");
    assert!(
        words.contains("guest vm1 sent were seen first on tap tap0 of QEMU pid 7000 on hv1"),
        "{words}"
    );
    assert!(!words.contains("7100"), "{words}");
}
