//! Colours and names shared by the charts, so that a state, a verdict or a failover
//! kind looks the same in every chart, the HTML report and its legends.

use plotters::style::RGBColor;
use vmlat_analyzer::{FailoverKind, TaskState, Verdict};

pub const INK: RGBColor = RGBColor(33, 33, 33);
pub const MUTED: RGBColor = RGBColor(110, 110, 110);
pub const GRID: RGBColor = RGBColor(225, 225, 225);
pub const ADVERT: RGBColor = RGBColor(31, 119, 180);
/// The gap itself, in the close-up: the silence between two adverts.
pub const GAP_FILL: RGBColor = RGBColor(255, 214, 214);
/// The master-down threshold: a limit, not an event, so neutral and dashed.
pub const MASTER_DOWN: RGBColor = RGBColor(60, 60, 60);
pub const ADVERTISED: RGBColor = RGBColor(31, 119, 180);
pub const IDLE: RGBColor = RGBColor(238, 238, 238);

/// Tableau 10: distinct, colour-blind tolerable series colours.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A task state's colour: green runs, amber waits for a CPU, pale blue sleeps as
/// expected, red is blocked, purple stopped: the eye goes to the abnormal ones.
pub fn state_color(state: TaskState) -> RGBColor {
    match state {
        TaskState::Running => RGBColor(46, 160, 67),
        TaskState::Runnable => RGBColor(245, 166, 35),
        TaskState::Sleeping => RGBColor(198, 219, 239),
        TaskState::Blocked => RGBColor(214, 39, 40),
        TaskState::Stopped => RGBColor(130, 60, 170),
        TaskState::Frozen => RGBColor(23, 150, 170),
        TaskState::Unknown => RGBColor(230, 230, 230),
    }
}

pub fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Running => "running",
        TaskState::Runnable => "runnable (waiting for a CPU)",
        TaskState::Sleeping => "sleeping (its usual wait)",
        TaskState::Blocked => "blocked (other syscall / D)",
        TaskState::Stopped => "stopped (T)",
        TaskState::Frozen => "frozen (cgroup freezer)",
        TaskState::Unknown => "unknown",
    }
}

/// Every state, in legend order.
pub const STATES: [TaskState; 7] = [
    TaskState::Running,
    TaskState::Runnable,
    TaskState::Sleeping,
    TaskState::Blocked,
    TaskState::Stopped,
    TaskState::Frozen,
    TaskState::Unknown,
];

/// A verdict's colour, by family (`docs/verdicts.md`): reds for the guest, oranges for the
/// host, blues for the network, grey when it could not be told.
pub fn verdict_color(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::GuestKernel => RGBColor(214, 39, 40),
        Verdict::GuestCpu => RGBColor(240, 90, 90),
        Verdict::GuestIo => RGBColor(170, 20, 60),
        Verdict::AppBlocked => RGBColor(200, 70, 120),
        Verdict::AppStopped => RGBColor(130, 60, 170),
        Verdict::VcpuPreempted => RGBColor(255, 127, 14),
        Verdict::VmPaused => RGBColor(200, 110, 0),
        Verdict::HostIo => RGBColor(160, 90, 40),
        Verdict::Vnic => RGBColor(188, 160, 34),
        Verdict::Network => RGBColor(31, 119, 180),
        Verdict::Receiver => RGBColor(23, 160, 190),
        Verdict::Inconclusive => RGBColor(127, 127, 127),
    }
}

pub fn failover_color(kind: FailoverKind) -> RGBColor {
    match kind {
        FailoverKind::MasterDown => RGBColor(200, 30, 30),
        FailoverKind::Preempted => RGBColor(44, 160, 44),
        FailoverKind::Resigned => RGBColor(255, 127, 14),
    }
}

/// Tasks on a CPU lane beyond the ones with a colour of their own.
pub const OTHER_TASKS: RGBColor = RGBColor(165, 165, 165);

/// Colours for the busiest tasks of a CPU lane, in rank order: the palette without
/// its green (the sender's, as in "running") and its grey (other tasks).
pub const TASK_COLORS: [RGBColor; 8] = [
    PALETTE[0], PALETTE[1], PALETTE[3], PALETTE[4], PALETTE[5], PALETTE[6], PALETTE[8], PALETTE[9],
];

/// `#rrggbb`, for the HTML report.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// `vr1:eth0 · vrrp 51 · vlan 10`: where a group was heard.
pub fn group_label(g: &vmlat_analyzer::GroupKey) -> String {
    let vlan = g.vlan.map(|v| format!(" · vlan {v}")).unwrap_or_default();
    format!("{} · {} {}{vlan}", g.capture, g.protocol.name(), g.vrid)
}

/// `vr1:eth0 · vrrp 51 · 10.10.0.1`: one stream.
pub fn stream_label(k: &vmlat_analyzer::StreamKey) -> String {
    format!("{} · {}", group_label(&k.group), k.src)
}
