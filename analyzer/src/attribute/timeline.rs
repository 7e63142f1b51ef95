//! Task and CPU timelines rebuilt from scheduler and syscall records.
//!
//! A task's state changes only at its own records: switched in → running; switched out
//! → the state the kernel reported (`prev_state`), refined by the syscall in progress;
//! woken → runnable until switched in. Between records the state holds. A task in D is
//! blocked, whether inside write/fsync/... or inside (or right after) its wait; the
//! scheduler alone cannot tell the cgroup freezer (v1 shows D, v2 S) from a page fault
//! or a lock there, so only the recorded freezer state makes a span frozen
//! ([`overlay_frozen`]; the traps are in `docs/verdicts.md`).

use vmlat_bundle::Record;

use super::collect::Timed;
use crate::model::{CpuLane, CpuSpan, StateSpan, TaskState};
use crate::syscall;
use crate::time::Timestamp;

/// At most this many spans per CPU lane; busier lanes are summarised (see
/// [`cpu_lane`]).
const MAX_CPU_SPANS: usize = 2000;

/// Linux task state bits as sched_switch reports them.
const STATE_S: u64 = 0x1;
const STATE_D: u64 = 0x2;
const STATE_T: u64 = 0x4;
const STATE_TRACED: u64 = 0x8;
const STATE_PARKED: u64 = 0x40;
const STATE_IDLE: u64 = 0x80;

/// `write(fd 15)`, `epoll_wait()`, on a bundle of architecture `arch`.
pub fn describe_call(nr: i64, args: &[u64; 6], arch: &str) -> String {
    match (syscall::takes_fd(nr, arch), args.first()) {
        (true, Some(fd)) => format!("{}(fd {})", syscall::name(nr, arch), *fd as i32),
        _ => format!("{}()", syscall::name(nr, arch)),
    }
}

/// A syscall in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InSyscall {
    pub nr: i64,
    pub args: [u64; 6],
    pub since: i64,
}

/// One span of a task's state, with what the verdict needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    pub state: TaskState,
    /// The CPU it ran on, waited for, or was switched out of.
    pub cpu: Option<u32>,
    /// The syscall it was in when it left the CPU.
    pub syscall: Option<InSyscall>,
    /// Switched out in state D.
    pub uninterruptible: bool,
    /// The task that woke it (runnable spans).
    pub waker: Option<i32>,
    /// The syscall that had just returned (nr, return value) when it left the CPU.
    pub after: Option<(i64, i64)>,
    pub detail: Option<String>,
}

impl Span {
    fn new(start: i64, state: TaskState) -> Self {
        Span {
            start,
            end: start,
            state,
            cpu: None,
            syscall: None,
            uninterruptible: false,
            waker: None,
            after: None,
            detail: None,
        }
    }

    pub fn to_model(&self) -> StateSpan {
        StateSpan {
            start: Timestamp(self.start),
            end: Timestamp(self.end),
            state: self.state,
            detail: self.detail.clone(),
        }
    }
}

/// The states of task `tid` from `from` to `to`, from every record of it in `events`
/// (those before `from` set the state it enters the window in), recorded on `arch`.
pub fn task_spans(events: &[Timed], tid: i32, from: i64, to: i64, arch: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut cur = Span::new(from, TaskState::Unknown);
    let mut in_sys: Option<InSyscall> = None;
    let mut after: Option<(i64, i64)> = None;
    let mut issued_io = false;
    let close = |cur: &mut Span, next: Span, spans: &mut Vec<Span>| {
        let mut done = std::mem::replace(cur, next);
        done.end = cur.start.min(to);
        done.start = done.start.max(from);
        if done.end > done.start {
            spans.push(done);
        }
    };
    for e in events.iter().take_while(|e| e.t <= to) {
        let t = e.t;
        match &e.record {
            Record::SchedSwitch {
                cpu,
                prev_tid,
                prev_state,
                next_tid,
                ..
            } => {
                if *next_tid == tid {
                    let mut s = Span::new(t, TaskState::Running);
                    s.cpu = Some(*cpu);
                    s.detail = Some(format!("on CPU {cpu}"));
                    close(&mut cur, s, &mut spans);
                    issued_io = false;
                } else if *prev_tid == tid {
                    let s = switched_out(t, *cpu, *prev_state, in_sys, after, issued_io, arch);
                    close(&mut cur, s, &mut spans);
                }
            }
            Record::SchedWakeup {
                waker_tid,
                tid: woken,
                target_cpu,
                ..
            } if *woken == tid && cur.state != TaskState::Running => {
                let mut s = Span::new(t, TaskState::Runnable);
                s.cpu = u32::try_from(*target_cpu).ok();
                s.waker = Some(*waker_tid);
                s.syscall = in_sys;
                s.detail = Some(format!(
                    "woken by {waker_tid}, waiting for CPU {target_cpu}"
                ));
                close(&mut cur, s, &mut spans);
            }
            Record::SyscallEnter {
                tid: t_id,
                nr,
                args,
                cpu,
                ..
            } if *t_id == tid => {
                in_sys = Some(InSyscall {
                    nr: *nr,
                    args: *args,
                    since: t,
                });
                after = None;
                if cur.state != TaskState::Running {
                    // It ran: the switch-in was not recorded (lost, or before the first
                    // record).
                    let mut s = Span::new(t, TaskState::Running);
                    s.cpu = Some(*cpu);
                    s.detail = Some(format!("on CPU {cpu}"));
                    close(&mut cur, s, &mut spans);
                }
            }
            Record::SyscallExit {
                tid: t_id, nr, ret, ..
            } if *t_id == tid => {
                in_sys = None;
                after = Some((*nr, *ret));
            }
            Record::BlockIssue { tid: t_id, .. } if *t_id == tid => issued_io = true,
            _ => {}
        }
    }
    let end = Span::new(to, TaskState::Unknown);
    close(&mut cur, end, &mut spans);
    spans
}

impl TaskState {
    /// The state a task switched out in `prev_state` (sched_switch's bits, see
    /// `docs/bundle-format.md`) enters, from the bits alone: none of the low byte set
    /// (the preemption bit at most) runnable; T or t stopped; D blocked; S, I or P
    /// sleeping; anything else (X, Z: exiting) unknown.
    ///
    /// The one decoding of `prev_state`: the task timelines refine it with what the
    /// task was doing ([`switched_out`]), [`crate::trace`] hands it out as is. (An
    /// inherent method, so that it is reachable from outside `attribute`.)
    pub(crate) fn from_prev_state(prev_state: u64) -> TaskState {
        if prev_state & 0xff == 0 {
            TaskState::Runnable
        } else if prev_state & (STATE_T | STATE_TRACED) != 0 {
            TaskState::Stopped
        } else if prev_state & STATE_D != 0 {
            TaskState::Blocked
        } else if prev_state & (STATE_S | STATE_IDLE | STATE_PARKED) != 0 {
            TaskState::Sleeping
        } else {
            TaskState::Unknown
        }
    }
}

/// The span a task enters when switched out in `prev_state`: [`TaskState::from_prev_state`],
/// told apart by what the task was doing (the syscall it is in, block I/O it issued).
fn switched_out(
    t: i64,
    cpu: u32,
    prev_state: u64,
    in_sys: Option<InSyscall>,
    after: Option<(i64, i64)>,
    issued_io: bool,
    arch: &str,
) -> Span {
    let in_other = in_sys.filter(|s| !syscall::is_wait(s.nr, arch));
    let call = |s: &InSyscall| describe_call(s.nr, &s.args, arch);
    let (state, detail) = match TaskState::from_prev_state(prev_state) {
        TaskState::Runnable => (TaskState::Runnable, format!("preempted on CPU {cpu}")),
        TaskState::Stopped => {
            let what = if prev_state & STATE_T != 0 {
                "state T (stopped)"
            } else {
                "state t (traced)"
            };
            (TaskState::Stopped, what.to_string())
        }
        TaskState::Blocked => match (in_other, issued_io) {
            (Some(s), _) => (TaskState::Blocked, format!("in {}, state D", call(&s))),
            (None, true) => (
                TaskState::Blocked,
                "state D after issuing block I/O".to_string(),
            ),
            (None, false) => (TaskState::Blocked, d_in_wait_detail(in_sys, after, arch)),
        },
        TaskState::Sleeping if prev_state & STATE_S != 0 => match in_other {
            Some(s) => (TaskState::Blocked, format!("in {}, state S", call(&s))),
            None => (
                TaskState::Sleeping,
                in_sys.map_or_else(|| "state S".to_string(), |s| format!("in {}", call(&s))),
            ),
        },
        TaskState::Sleeping => (TaskState::Sleeping, "idle".to_string()),
        _ => (
            TaskState::Unknown,
            format!("state {prev_state:#x} (exiting)"),
        ),
    };
    let mut s = Span::new(t, state);
    s.cpu = Some(cpu);
    s.syscall = in_sys;
    s.uninterruptible = prev_state & STATE_D != 0 && prev_state & 0xff != 0;
    s.after = after;
    s.detail = Some(detail);
    s
}

/// A D with no syscall of its own to explain it: in (or right after) its wait, which is
/// how the cgroup v1 freezer holds a task, but so does a page fault or a lock. Only
/// the recorded freezer state tells (see [`overlay_frozen`]).
fn d_in_wait_detail(in_sys: Option<InSyscall>, after: Option<(i64, i64)>, arch: &str) -> String {
    let name = |nr| syscall::name(nr, arch);
    let wait = match (in_sys, after) {
        (Some(s), _) => format!("in its wait {}", name(s.nr)),
        (None, Some((nr, ret))) if syscall::is_wait(nr, arch) => {
            format!("right after its wait {} returned {ret}", name(nr))
        }
        (None, Some((nr, _))) => format!("after {} returned", name(nr)),
        (None, None) => "outside any recorded syscall".to_string(),
    };
    format!("state D {wait}, no block I/O")
}

/// Marks the parts of `spans` inside `frozen` (start, end, what froze it) as
/// [`TaskState::Frozen`]: the recorded freezer state is the only proof of a freeze.
/// A running part stays running (a thread being frozen runs to its freezing point).
pub fn overlay_frozen(spans: Vec<Span>, frozen: &[(i64, i64, String)]) -> Vec<Span> {
    if frozen.is_empty() {
        return spans;
    }
    let mut out = Vec::with_capacity(spans.len() + 2 * frozen.len());
    for span in spans {
        let mut rest = span;
        for (a, b, what) in frozen {
            if rest.state == TaskState::Running || *b <= rest.start || *a >= rest.end {
                continue;
            }
            if *a > rest.start {
                let mut before = rest.clone();
                before.end = *a;
                out.push(before);
                rest.start = *a;
            }
            let mut inside = rest.clone();
            inside.end = rest.end.min(*b);
            inside.state = TaskState::Frozen;
            inside.detail = Some(what.clone());
            out.push(inside);
            rest.start = rest.end.min(*b);
        }
        if rest.end > rest.start {
            out.push(rest);
        }
    }
    out
}

/// The CPU a task spent most of `[a, b]` on, waiting for or asleep after leaving.
pub fn main_cpu(spans: &[Span], a: i64, b: i64) -> Option<u32> {
    let mut by_cpu: std::collections::BTreeMap<u32, i64> = std::collections::BTreeMap::new();
    for s in spans {
        if let Some(cpu) = s.cpu {
            *by_cpu.entry(cpu).or_default() += (s.end.min(b) - s.start.max(a)).max(0);
        }
    }
    by_cpu.into_iter().max_by_key(|(_, ns)| *ns).map(|(c, _)| c)
}

/// Who held CPU `cpu` from `from` to `to` (idle is tid 0).
///
/// A lane with more than [`MAX_CPU_SPANS`] switches (a context-switch storm) is
/// summarised: the window is cut into that many equal slices, each given to the task
/// that held most of it, so the lane stays drawable and its shares stay right to a
/// slice.
pub fn cpu_lane(events: &[Timed], cpu: u32, from: i64, to: i64, host: &str) -> CpuLane {
    let mut spans: Vec<CpuSpan> = Vec::new();
    let mut cur: Option<(i64, i32, String)> = None;
    let push = |spans: &mut Vec<CpuSpan>, start: i64, end: i64, tid: i32, comm: String| {
        let (start, end) = (start.max(from), end.min(to));
        if end <= start {
            return;
        }
        match spans.last_mut() {
            Some(last) if last.tid == tid && last.end.0 == start => last.end = Timestamp(end),
            _ => spans.push(CpuSpan {
                start: Timestamp(start),
                end: Timestamp(end),
                tid,
                comm,
            }),
        }
    };
    for e in events.iter().take_while(|e| e.t <= to) {
        if let Record::SchedSwitch {
            cpu: c,
            prev_tid,
            prev_comm,
            next_tid,
            next_comm,
            ..
        } = &e.record
        {
            if *c != cpu {
                continue;
            }
            let (start, tid, comm) = cur
                .take()
                .unwrap_or((from, *prev_tid, prev_comm.to_string()));
            push(&mut spans, start, e.t, tid, comm);
            cur = Some((e.t, *next_tid, next_comm.to_string()));
        }
    }
    if let Some((start, tid, comm)) = cur {
        push(&mut spans, start, to, tid, comm);
    }
    if spans.len() > MAX_CPU_SPANS {
        spans = summarise(&spans, from, to);
    }
    CpuLane {
        host: host.to_string(),
        cpu,
        spans,
    }
}

fn summarise(spans: &[CpuSpan], from: i64, to: i64) -> Vec<CpuSpan> {
    let slice = ((to - from) / MAX_CPU_SPANS as i64).max(1);
    let mut out: Vec<CpuSpan> = Vec::new();
    let mut i = 0;
    let mut start = from;
    while start < to {
        let end = (start + slice).min(to);
        while spans.get(i).is_some_and(|s| s.end.0 <= start) {
            i += 1;
        }
        let best = shares(spans.get(i..).unwrap_or_default(), start, end)
            .into_iter()
            .next();
        if let Some((tid, comm, _)) = best {
            match out.last_mut() {
                Some(last) if last.tid == tid && last.end.0 == start => last.end = Timestamp(end),
                _ => out.push(CpuSpan {
                    start: Timestamp(start),
                    end: Timestamp(end),
                    tid,
                    comm,
                }),
            }
        }
        start = end;
    }
    out
}

/// Time each task held the CPU between `a` and `b`, most first.
pub fn shares(spans: &[CpuSpan], a: i64, b: i64) -> Vec<(i32, String, i64)> {
    let mut by_tid: Vec<(i32, String, i64)> = Vec::new();
    for s in spans {
        if s.start.0 >= b {
            break;
        }
        let ns = (s.end.0.min(b) - s.start.0.max(a)).max(0);
        if ns == 0 {
            continue;
        }
        match by_tid.iter_mut().find(|(tid, _, _)| *tid == s.tid) {
            Some(entry) => entry.2 += ns,
            None => by_tid.push((s.tid, s.comm.clone(), ns)),
        }
    }
    by_tid.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)));
    by_tid
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::x86_64::Sysno;

    fn switch(t: i64, cpu: u32, prev: i32, state: u64, next: i32) -> Timed {
        Timed {
            t,
            record: Record::SchedSwitch {
                t: 0,
                cpu,
                prev_tid: prev,
                prev_comm: format!("c{prev}").into(),
                prev_prio: 120,
                prev_state: state,
                next_tid: next,
                next_comm: format!("c{next}").into(),
                next_prio: 120,
            },
        }
    }

    fn sys(t: i64, tid: i32, nr: Sysno, exit: Option<i64>) -> Timed {
        let nr = i64::from(nr.id());
        Timed {
            t,
            record: match exit {
                None => Record::SyscallEnter {
                    t: 0,
                    cpu: 0,
                    tid,
                    tgid: tid,
                    nr,
                    args: [9, 0, 0, 0, 0, 0],
                },
                Some(ret) => Record::SyscallExit {
                    t: 0,
                    cpu: 0,
                    tid,
                    tgid: tid,
                    nr,
                    ret,
                },
            },
        }
    }

    #[test]
    fn d_after_an_interrupted_wait_and_d_in_write_are_both_blocked() {
        let frozen = [
            switch(0, 0, 5, 0, 7),
            sys(1, 7, Sysno::epoll_wait, None),
            sys(2, 7, Sysno::epoll_wait, Some(-4)),
            switch(3, 0, 7, STATE_D, 0),
        ];
        let spans = task_spans(&frozen, 7, 0, 10, "x86_64");
        let last = spans.last().unwrap();
        // Only a freezer record may call it frozen (`overlay_frozen`).
        assert_eq!(
            (last.state, last.start, last.end),
            (TaskState::Blocked, 3, 10)
        );
        assert!(last
            .detail
            .as_deref()
            .unwrap()
            .contains("epoll_wait returned -4"));

        let blocked = [
            switch(0, 0, 5, 0, 7),
            sys(1, 7, Sysno::write, None),
            switch(3, 0, 7, STATE_D, 0),
        ];
        let last = task_spans(&blocked, 7, 0, 10, "x86_64").pop().unwrap();
        assert_eq!(last.state, TaskState::Blocked);
        assert_eq!(last.detail.as_deref(), Some("in write(fd 9), state D"));
    }

    #[test]
    fn a_recorded_freeze_overlays_the_spans_inside_it_and_spares_running_ones() {
        let events = [
            switch(0, 0, 5, 0, 7),
            sys(1, 7, Sysno::epoll_wait, None),
            switch(2, 0, 7, STATE_S, 0),
        ];
        let spans = task_spans(&events, 7, 0, 10, "x86_64");
        let out = overlay_frozen(spans, &[(4, 8, "cgroup v2 /x FROZEN".into())]);
        let got: Vec<_> = out.iter().map(|s| (s.start, s.end, s.state)).collect();
        assert_eq!(
            got,
            [
                (0, 2, TaskState::Running),
                (2, 4, TaskState::Sleeping),
                (4, 8, TaskState::Frozen),
                (8, 10, TaskState::Sleeping),
            ]
        );
    }

    #[test]
    fn cpu_lane_names_who_held_the_cpu_and_shares_add_up() {
        let events = [
            switch(10, 1, 0, 0, 42),
            switch(70, 1, 42, 0, 0),
            switch(80, 0, 0, 0, 9),
        ];
        let lane = cpu_lane(&events, 1, 0, 100, "h");
        let got: Vec<_> = lane
            .spans
            .iter()
            .map(|s| (s.start.0, s.end.0, s.tid))
            .collect();
        assert_eq!(got, vec![(0, 10, 0), (10, 70, 42), (70, 100, 0)]);
        let s: Vec<_> = shares(&lane.spans, 0, 100)
            .into_iter()
            .map(|(tid, _, ns)| (tid, ns))
            .collect();
        assert_eq!(s, vec![(42, 60), (0, 40)]);
    }
}
