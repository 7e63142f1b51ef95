//! Which tasks' syscalls are recorded, as an in-kernel ftrace filter.
//!
//! `raw_syscalls` fire for every syscall on the machine; recording them all would
//! swamp the rings. vmlat attaches a filter to each `sys_enter`/`sys_exit` counter
//! (PERF_EVENT_IOC_SET_FILTER), so that the kernel drops the others before they are
//! written. The filter is a disjunction of
//!
//! - `comm == "NAME"` for every `--comm`: ftrace's special `comm` field is the current
//!   task's name, so this also catches processes of that name started later. A name
//!   ending in `*` is a prefix (`comm ~ "keepalived*"`, ftrace's glob): keepalived's
//!   `process_names` renames its children `keepalived_vrrp`, `keepalived_bfd`, ...;
//! - `common_pid == TID` for every thread of every `--pid` (from `/proc/PID/task` at
//!   start). [`SyscallTargets::observe`] keeps this set current: a thread created later
//!   by a traced process is added when its `sched_process_fork` is decoded, and an
//!   exited thread is removed (so that a reused tid is not traced). Until the filter is
//!   updated, at most one drain interval (~50 ms) after the thread was created, that
//!   thread's syscalls are not recorded; the update itself may record a syscall twice
//!   (see `PerfCollector::follow_threads`). Child *processes* of a `--pid` are not
//!   followed: they are other processes.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use vmlat_bundle::Record;

/// The longest filter the kernel takes: `perf_event_set_filter` copies at most a page.
const MAX_FILTER_LEN: usize = 4095;
/// A task name is at most TASK_COMM_LEN − 1 bytes; longer names never match.
const COMM_LEN: usize = 15;

/// A `--comm` that cannot be put into a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--comm {comm:?} {reason}")]
pub struct BadComm {
    pub comm: String,
    pub reason: &'static str,
}

/// The traced processes and the threads of `--pid`s currently alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallTargets {
    comms: Vec<String>,
    pids: Vec<i32>,
    tids: BTreeSet<i32>,
}

impl SyscallTargets {
    /// Targets for `comms` and the threads `tids` of `pids`. Names longer than the
    /// kernel keeps are cut to its 15 bytes, as the kernel cut the task's own name.
    pub fn new(
        comms: &[String],
        pids: &[i32],
        tids: impl IntoIterator<Item = i32>,
    ) -> Result<Self, BadComm> {
        let comms = comms
            .iter()
            .map(|comm| {
                let bad = |reason| BadComm {
                    comm: comm.clone(),
                    reason,
                };
                if comm.is_empty() {
                    return Err(bad("is empty"));
                }
                // The filter language has no escapes we could rely on across kernels.
                if !comm
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
                {
                    return Err(bad("must be printable ASCII without quotes or backslashes"));
                }
                // Only a trailing `*` (a prefix): other glob characters would be taken
                // as a pattern by the kernel, and are no part of a task name anyway.
                let body = comm.strip_suffix('*').unwrap_or(comm);
                if body.is_empty() || body.contains(['*', '?', '[', ']']) {
                    return Err(bad(
                        "may end in * (a prefix, e.g. keepalived*) but hold no other * ? [ ]",
                    ));
                }
                if let Some(prefix) = comm.strip_suffix('*') {
                    return Ok(format!("{}*", prefix.get(..COMM_LEN).unwrap_or(prefix)));
                }
                Ok(comm.get(..COMM_LEN).unwrap_or(comm).to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SyscallTargets {
            comms,
            pids: pids.to_vec(),
            tids: tids.into_iter().collect(),
        })
    }

    /// The ftrace filter selecting the targets' syscalls. With no target left (every
    /// thread of the `--pid`s exited, no `--comm`) it is `common_pid < 0`, which
    /// matches nothing: an empty filter would not be "nothing" but "everything".
    pub fn filter(&self) -> String {
        let comms = self.comms.iter().map(|c| {
            if c.ends_with('*') {
                format!("comm ~ \"{c}\"")
            } else {
                format!("comm == \"{c}\"")
            }
        });
        let tids = self.tids.iter().map(|t| format!("common_pid == {t}"));
        let terms: Vec<_> = comms.chain(tids).collect();
        if terms.is_empty() {
            return "common_pid < 0".into();
        }
        terms.join(" || ")
    }

    /// Whether [`Self::filter`] fits in what the kernel accepts.
    pub fn fits(filter: &str) -> bool {
        filter.len() <= MAX_FILTER_LEN
    }

    /// Whether there are threads of `--pid`s to follow: with `--comm` alone the filter
    /// never changes, and records need not be looked at.
    pub fn follows_threads(&self) -> bool {
        !self.pids.is_empty()
    }

    /// Follows the threads of the traced pids through a decoded record; returns true
    /// when the set changed and the filter must be set again.
    pub fn observe(&mut self, record: &Record) -> bool {
        match record {
            Record::ProcessFork {
                parent_tgid,
                child_tid,
                ..
            } if self.pids.contains(parent_tgid) => {
                // sched_process_fork does not say whether the child is a thread (it
                // joins the parent's /proc/PID/task) or a new process (it does not).
                let thread = Path::new(&format!("/proc/{parent_tgid}/task/{child_tid}")).exists();
                thread && self.tids.insert(*child_tid)
            }
            Record::ProcessExit { tid, .. } => self.tids.remove(tid),
            _ => false,
        }
    }
}

/// Every thread of process `pid`, from `/proc/PID/task`.
pub fn threads_of(pid: i32) -> io::Result<Vec<i32>> {
    let mut tids = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) {
            tids.push(tid);
        }
    }
    Ok(tids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fork(parent_tgid: i32, child_tid: i32) -> Record {
        Record::ProcessFork {
            t: 0,
            cpu: 0,
            parent_tid: parent_tgid,
            parent_tgid,
            parent_comm: Default::default(),
            child_tid,
            child_comm: Default::default(),
        }
    }

    fn exit(tid: i32) -> Record {
        Record::ProcessExit {
            t: 0,
            cpu: 0,
            tid,
            tgid: tid,
            comm: Default::default(),
            prio: 120,
        }
    }

    #[test]
    fn renders_comms_then_threads() {
        let t = SyscallTargets::new(
            &["keepalived".into(), "a-name-longer-than-15".into()],
            &[5],
            [7, 5],
        )
        .unwrap();
        assert_eq!(
            t.filter(),
            r#"comm == "keepalived" || comm == "a-name-longer-t" || common_pid == 5 || common_pid == 7"#
        );
        assert!(SyscallTargets::fits(&t.filter()));
    }

    #[test]
    fn rejects_names_a_filter_cannot_hold() {
        for bad in [
            "",
            "a\"b",
            "back\\slash",
            "tab\there",
            "caf\u{e9}",
            "*",
            "a*b",
            "keep?",
            "x[1]",
        ] {
            assert!(
                SyscallTargets::new(&[bad.into()], &[], []).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_trailing_star_is_a_prefix_glob() {
        let t = SyscallTargets::new(&["keepalived*".into()], &[], []).unwrap();
        assert_eq!(t.filter(), r#"comm ~ "keepalived*""#);
    }

    #[test]
    fn a_thousand_threads_do_not_fit() {
        let t = SyscallTargets::new(&[], &[1], 100_000..101_000).unwrap();
        assert!(!SyscallTargets::fits(&t.filter()));
    }

    #[test]
    fn follows_threads_of_traced_pids_only() {
        let me = std::process::id() as i32;
        let my_tid = rustix::thread::gettid().as_raw_nonzero().get();
        let mut t = SyscallTargets::new(&[], &[me], [me]).unwrap();
        // A fork by an untraced process changes nothing.
        assert!(!t.observe(&fork(me + 1, my_tid)));
        // A thread of ours (this test's thread is in /proc/me/task) is added once.
        let added = my_tid != me;
        assert_eq!(t.observe(&fork(me, my_tid)), added);
        assert!(!t.observe(&fork(me, my_tid)));
        // A child that is not in our task list (another process) is not.
        assert!(!t.observe(&fork(me, i32::MAX)));
        // Exits remove; with no thread left the filter matches nothing.
        assert!(t.observe(&exit(me)));
        assert!(!t.observe(&exit(me)));
        if added {
            assert!(t.observe(&exit(my_tid)));
        }
        assert_eq!(t.filter(), "common_pid < 0");
    }

    #[test]
    fn lists_our_own_threads() {
        let me = std::process::id() as i32;
        assert!(threads_of(me).unwrap().contains(&me));
        assert!(threads_of(i32::MAX).is_err());
    }
}
