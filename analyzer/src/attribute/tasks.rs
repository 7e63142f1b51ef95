//! Names and parents of the tasks a recording mentions, for evidence like
//! "SIGSTOP from pid 9001 (bash, parent sshd 8990)".
//!
//! Fed with every `TaskInfo` (each task alive at start), fork, exec and exit, and the
//! comms that scheduler records carry. Exited tasks are kept, because a signal's sender
//! is often a short-lived `kill`, but only the most recent [`KEEP_EXITED`] of them:
//! memory grows with the number of live tasks, not with process churn.

use std::collections::{HashMap, VecDeque};

use vmlat_bundle::Record;

/// Exited tasks remembered, oldest forgotten first.
const KEEP_EXITED: usize = 4096;
/// Parents named in a chain, at most.
const CHAIN_DEPTH: usize = 3;
/// The kernel's thread daemon: every kernel thread is its child.
const KTHREADD: i32 = 2;

#[derive(Debug, Clone, Default)]
struct Task {
    tgid: i32,
    ppid: Option<i32>,
    comm: String,
}

/// The tasks a scheduler record names, with their comms: sched_switch's previous and
/// next task, sched_wakeup's woken one.
pub fn scheduled(record: &Record) -> impl Iterator<Item = (i32, &str)> {
    let (first, second) = match record {
        Record::SchedSwitch {
            prev_tid,
            prev_comm,
            next_tid,
            next_comm,
            ..
        } => (
            Some((*prev_tid, prev_comm.as_str())),
            Some((*next_tid, next_comm.as_str())),
        ),
        Record::SchedWakeup { tid, comm, .. } => (Some((*tid, comm.as_str())), None),
        _ => (None, None),
    };
    first.into_iter().chain(second)
}

/// What is known of every task seen.
#[derive(Debug, Default)]
pub struct Tasks {
    tasks: HashMap<i32, Task>,
    exited: VecDeque<i32>,
}

impl Tasks {
    /// Learns from one record; records that name no task are ignored.
    pub fn observe(&mut self, record: &Record) {
        match record {
            Record::TaskInfo {
                tid,
                tgid,
                ppid,
                comm,
                ..
            } => {
                self.tasks.insert(
                    *tid,
                    Task {
                        tgid: *tgid,
                        ppid: Some(*ppid),
                        comm: comm.to_string(),
                    },
                );
            }
            Record::ProcessFork {
                parent_tgid,
                child_tid,
                child_comm,
                ..
            } => {
                // A new thread or a new process: the fork record does not say. Taken as
                // a process (its own group, parent = the forking process) until an exec
                // or a TaskInfo says otherwise; a thread's parent is then its process,
                // which names it just as well.
                self.tasks.insert(
                    *child_tid,
                    Task {
                        tgid: *child_tid,
                        ppid: Some(*parent_tgid),
                        comm: child_comm.to_string(),
                    },
                );
            }
            Record::ProcessExec {
                tid, tgid, comm, ..
            } => {
                let task = self.tasks.entry(*tid).or_default();
                task.tgid = *tgid;
                task.comm = comm.to_string();
            }
            Record::ProcessExit { tid, .. } => {
                self.exited.push_back(*tid);
                if self.exited.len() > KEEP_EXITED {
                    if let Some(old) = self.exited.pop_front() {
                        self.tasks.remove(&old);
                    }
                }
            }
            Record::SchedSwitch { .. } | Record::SchedWakeup { .. } => {
                for (tid, comm) in scheduled(record) {
                    self.learn_comm(tid, comm);
                }
            }
            Record::Signal {
                target_tid,
                target_comm,
                ..
            } => self.learn_comm(*target_tid, target_comm),
            _ => {}
        }
    }

    /// Names a task first seen in a scheduler record, without overriding what /proc or
    /// an exec said.
    fn learn_comm(&mut self, tid: i32, comm: &str) {
        if tid > 0 && !self.tasks.contains_key(&tid) {
            self.tasks.insert(
                tid,
                Task {
                    tgid: tid,
                    ppid: None,
                    comm: comm.to_string(),
                },
            );
        }
    }

    pub fn comm(&self, tid: i32) -> Option<&str> {
        self.tasks.get(&tid).map(|t| t.comm.as_str())
    }

    pub fn tgid(&self, tid: i32) -> Option<i32> {
        self.tasks.get(&tid).map(|t| t.tgid)
    }

    pub fn ppid(&self, tid: i32) -> Option<i32> {
        let task = self.tasks.get(&tid)?;
        task.ppid
            .or_else(|| self.tasks.get(&task.tgid).and_then(|t| t.ppid))
    }

    /// `pid 9001 (bash, parent sshd 8990, parent systemd 1)`.
    pub fn describe(&self, tid: i32) -> String {
        let Some(task) = self.tasks.get(&tid) else {
            return format!("pid {tid} (not seen in the recording)");
        };
        let mut text = format!("pid {} ({}", task.tgid, task.comm);
        if task.tgid != tid {
            text = format!("pid {} thread {tid} ({}", task.tgid, task.comm);
        }
        let mut at = self.ppid(tid);
        for _ in 0..CHAIN_DEPTH {
            let Some(parent) = at.filter(|&p| p > 0) else {
                break;
            };
            let comm = self.comm(parent).unwrap_or("?");
            text.push_str(&format!(", parent {comm} {parent}"));
            at = self.ppid(parent);
        }
        text.push(')');
        text
    }

    /// Kernel threads: kthreadd's children, and by name the ones /proc did not list.
    pub fn is_kernel_thread(&self, tid: i32, comm: &str) -> bool {
        if tid == 0 || tid == KTHREADD {
            return true;
        }
        if let Some(ppid) = self.ppid(tid) {
            return ppid == KTHREADD;
        }
        const KERNEL: [&str; 9] = [
            "kworker/",
            "ksoftirqd/",
            "migration/",
            "rcu_",
            "cpuhp/",
            "kthreadd",
            "swapper/",
            "irq/",
            "watchdog/",
        ];
        KERNEL.iter().any(|k| comm.starts_with(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(tid: i32, ppid: i32, comm: &str) -> Record {
        Record::TaskInfo {
            t: 0,
            tid,
            tgid: tid,
            ppid,
            comm: comm.into(),
        }
    }

    #[test]
    fn parents_are_named_up_the_chain_and_kernel_threads_known() {
        let mut tasks = Tasks::default();
        for r in [
            info(1, 0, "systemd"),
            info(2, 0, "kthreadd"),
            info(8990, 1, "sshd"),
            info(9001, 8990, "bash"),
            info(40, 2, "kworker/1:2"),
        ] {
            tasks.observe(&r);
        }
        assert_eq!(
            tasks.describe(9001),
            "pid 9001 (bash, parent sshd 8990, parent systemd 1)"
        );
        assert!(tasks.is_kernel_thread(40, "kworker/1:2"));
        assert!(!tasks.is_kernel_thread(9001, "bash"));
        assert!(tasks.is_kernel_thread(77, "ksoftirqd/0"));
    }
}
