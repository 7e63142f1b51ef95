//! Suspects: what else happened on the machines during an incident's window. The
//! forensic questions of every postmortem: who started what, who signalled or killed
//! what, and who held the sender's CPU while it was silent.
//!
//! Listed for every bundle with scheduler data: processes exec'd, forked and exited in
//! the window (with the exit code when the process's `exit_group` was recorded, the
//! fatal signal sent to it when one was, and the parent chain),
//! signals sent to the keepalived processes, and the top users of the CPUs the sender
//! ran on. Each kind is capped at [`MAX_PER_KIND`] entries, and a last entry counts what
//! was left out: nothing is dropped silently.

use std::collections::HashMap;

use vmlat_bundle::Record;

use super::collect::BundleData;
use super::windows::Window;
use super::{at, dur, pct, signal_name, timeline};
use crate::model::{GapContext, Suspect, SuspectKind};
use crate::time::Timestamp;

/// Entries of one kind listed per machine; the rest are counted.
const MAX_PER_KIND: usize = 10;
/// Top CPU users listed per CPU.
const TOP_CPU_USERS: usize = 3;
/// Signals whose default action ends the process.
const FATAL: [i32; 10] = [1, 2, 3, 4, 6, 8, 9, 11, 13, 15];
/// The tracepoint that records exit codes (bundles before it have none).
const EXIT_GROUP: &str = "syscalls:sys_enter_exit_group";

/// The suspects of one incident's window `w`; `silence` is when the sender was silent.
pub fn find(
    bundles: &[BundleData],
    context: &GapContext,
    w: Window,
    silence: (i64, i64),
) -> Vec<Suspect> {
    let mut out = Vec::new();
    for data in bundles.iter().filter(|b| b.recorded("sched:sched_switch")) {
        let host = data.host().to_string();
        let mut per_kind: Vec<(SuspectKind, Vec<Suspect>)> = Vec::new();
        let mut push = |kind: SuspectKind, t: i64, tid: i32, text: String| {
            let entry = match per_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some(e) => e,
                None => {
                    per_kind.push((kind, Vec::new()));
                    let Some(e) = per_kind.last_mut() else { return };
                    e
                }
            };
            entry.1.push(Suspect {
                kind,
                host: host.clone(),
                at: Some(Timestamp(t)),
                tid,
                text,
            });
        };
        let events = data.events_in(w.start, w.end);
        let codes_recorded = data.recorded(EXIT_GROUP);
        // Each process's last exit_group code since its pid last exited: a pid is not
        // reused before its process has exited, so the code is this process's.
        let mut codes: HashMap<i32, i64> = HashMap::new();
        for e in events {
            match &e.record {
                Record::ExitGroup { tgid, code, .. } => {
                    codes.insert(*tgid, *code);
                }
                Record::ProcessExec { tid, filename, .. } => push(
                    SuspectKind::Exec,
                    e.t,
                    *tid,
                    format!(
                        "{} ran {filename} at {}",
                        data.tasks.describe(*tid),
                        at(e.t)
                    ),
                ),
                // A new thread of a running process is no suspect; a new process is.
                Record::ProcessFork {
                    parent_tid,
                    child_tid,
                    child_comm,
                    ..
                } if data.tasks.tgid(*child_tid).is_none_or(|g| g == *child_tid) => push(
                    SuspectKind::Fork,
                    e.t,
                    *child_tid,
                    format!(
                        "{} forked {child_tid} ({child_comm}) at {}",
                        data.tasks.describe(*parent_tid),
                        at(e.t)
                    ),
                ),
                Record::ProcessExit {
                    tid, tgid, comm, ..
                } if tid == tgid => {
                    let killed = events.iter().rev().find_map(|s| match &s.record {
                        Record::Signal {
                            sig,
                            sender_tid,
                            target_tid,
                            ..
                        } if s.t <= e.t && *target_tid == *tid && FATAL.contains(sig) => {
                            Some(format!(
                                ", after {} from {} at {}",
                                signal_name(*sig),
                                data.tasks.describe(*sender_tid),
                                at(s.t)
                            ))
                        }
                        _ => None,
                    });
                    let how = match codes.remove(tgid) {
                        Some(code) => {
                            let status = code & 0xff;
                            let raw = if status == code {
                                String::new()
                            } else {
                                format!(" (exit_group({code}))")
                            };
                            format!(" with code {status}{raw} at {}", at(e.t))
                        }
                        None if killed.is_none() && codes_recorded => {
                            format!(" at {}, exit code not recorded", at(e.t))
                        }
                        None => format!(" at {}", at(e.t)),
                    };
                    push(
                        SuspectKind::Exit,
                        e.t,
                        *tid,
                        format!("{comm} {tid} exited{how}{}", killed.unwrap_or_default()),
                    );
                }
                Record::Signal {
                    sig,
                    sender_tid,
                    target_tid,
                    target_comm,
                    ..
                } if is_keepalived(data, *target_tid, target_comm)
                    || is_sender(context, *target_tid) =>
                {
                    push(
                        SuspectKind::Signal,
                        e.t,
                        *target_tid,
                        format!(
                            "{} to {target_comm} {target_tid} from {} at {}",
                            signal_name(*sig),
                            data.tasks.describe(*sender_tid),
                            at(e.t)
                        ),
                    )
                }
                _ => {}
            }
        }
        // The most telling first: who signalled keepalived, then who ran what.
        per_kind.sort_by_key(|(k, _)| match k {
            SuspectKind::Signal => 0,
            SuspectKind::Exec => 1,
            SuspectKind::Exit => 2,
            SuspectKind::Fork => 3,
            SuspectKind::Cpu => 4,
        });
        for (kind, list) in per_kind {
            let left_out = list.len().saturating_sub(MAX_PER_KIND);
            out.extend(list.into_iter().take(MAX_PER_KIND));
            if left_out > 0 {
                out.push(Suspect {
                    kind,
                    host: host.clone(),
                    at: None,
                    tid: 0,
                    text: format!("and {left_out} more of this kind on {host}"),
                });
            }
        }
        out.extend(cpu_users(data, context, silence));
    }
    out
}

/// The top users of each CPU the sender ran on, during the silence.
fn cpu_users(data: &BundleData, context: &GapContext, (a, b): (i64, i64)) -> Vec<Suspect> {
    let mut out = Vec::new();
    for lane in context.cpus.iter().filter(|l| l.host == data.host()) {
        let shares = timeline::shares(&lane.spans, a, b);
        let total: i64 = shares.iter().map(|s| s.2).sum();
        let sender = context.sender.as_ref().map(|s| s.tid);
        let others = shares.iter().filter(|s| s.0 != 0 && Some(s.0) != sender);
        for (tid, comm, ns) in others.take(TOP_CPU_USERS) {
            out.push(Suspect {
                kind: SuspectKind::Cpu,
                host: data.host().to_string(),
                at: None,
                tid: *tid,
                text: format!(
                    "{comm} {tid} held CPU {} for {} ({:.1}% of the silence): {}",
                    lane.cpu,
                    dur(*ns),
                    pct(*ns, total),
                    data.tasks.describe(*tid)
                ),
            });
        }
    }
    out
}

/// The sender's own task or process, whatever its name.
fn is_sender(context: &GapContext, tid: i32) -> bool {
    context
        .sender
        .as_ref()
        .is_some_and(|s| s.tid == tid || s.tgid == tid)
}

/// keepalived's processes: by name, or as a thread of a process of that name.
fn is_keepalived(data: &BundleData, tid: i32, comm: &str) -> bool {
    let named = |c: &str| c.starts_with("keepalived");
    named(comm)
        || data
            .tasks
            .tgid(tid)
            .and_then(|g| data.tasks.comm(g))
            .is_some_and(named)
}
