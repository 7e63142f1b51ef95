//! The process-wide registry of live labs, so that a signal handler (or a CLI on its way
//! out) can tear down every lab the process built, not only the ones whose `Lab` value
//! gets dropped.
//!
//! Faults register here too ([`register_cleanup`]): the undo of a fault (thaw, SIGCONT,
//! restore a sysctl) runs before the labs are torn down, because a frozen or stopped
//! keepalived cannot exit; the removal of what a fault built around a lab (a loop device
//! mounted as a router's /tmp) runs after, once nothing uses it.
//!
//! Invariant: everything a lab creates is recorded here *before* it is created, and every
//! creation step runs under the read side of [`GATE`]. Teardown-all takes the write side,
//! flips it to "terminating" and only then drains the registry, so a build racing with
//! Ctrl-C either finished its step (and the step's resource is in the record) or sees the
//! flag and stops without creating anything more.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rustix::process::Signal;

use crate::cmd;
use crate::LabError;

/// How long keepalived gets to resign (send priority 0) and exit after SIGTERM; it takes
/// about one second on this kind of machine.
const KEEPALIVED_GRACE: Duration = Duration::from_secs(3);

/// How long stray processes in a namespace get after SIGTERM before SIGKILL.
const STRAY_GRACE: Duration = Duration::from_millis(500);

/// What teardown needs to undo one lab.
pub(crate) struct Record {
    /// The lab's run id, for messages.
    pub run_id: String,
    /// Namespaces to delete, routers first (the switch goes last: it holds the bridge).
    pub namespaces: Vec<String>,
    /// The lab dir to remove.
    pub dir: PathBuf,
    /// keepalived main processes, by router name; kept here so teardown can reap them.
    pub children: Vec<(String, Child)>,
}

/// When a registered cleanup runs in [`teardown_all`], relative to the labs' teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Undoing a fault: keepalived must be able to run again before it is asked to stop.
    BeforeLabs,
    /// Removing something the lab used (a mounted disk): only once keepalived is gone.
    AfterLabs,
}

/// A registered cleanup: what it undoes (for messages), when, and how.
struct Cleanup {
    what: String,
    phase: Phase,
    undo: Box<dyn FnOnce() -> Result<(), String> + Send>,
}

/// Pending cleanups by id, from the same id sequence as labs.
static CLEANUPS: Mutex<BTreeMap<u64, Cleanup>> = Mutex::new(BTreeMap::new());

fn cleanups() -> MutexGuard<'static, BTreeMap<u64, Cleanup>> {
    CLEANUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records how to undo something *before* it is done, so that a signal in between still
/// finds it; `undo` must therefore cope with the thing not existing (yet). Fails once the
/// process is terminating.
pub(crate) fn register_cleanup(
    what: String,
    phase: Phase,
    undo: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<u64, LabError> {
    step(|| {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let undo = Box::new(undo);
        cleanups().insert(id, Cleanup { what, phase, undo });
        Ok(id)
    })
}

/// Runs the cleanup `id` now, unless it already ran (or [`teardown_all`] took it).
pub(crate) fn run_cleanup(id: u64) -> Result<(), LabError> {
    let taken = cleanups().remove(&id);
    taken.map_or(Ok(()), Cleanup::run)
}

impl Cleanup {
    fn run(self) -> Result<(), LabError> {
        let what = self.what;
        (self.undo)().map_err(|problem| LabError::Cleanup { what, problem })
    }
}

/// Live labs by id.
static REGISTRY: Mutex<BTreeMap<u64, Record>> = Mutex::new(BTreeMap::new());
/// `true` once the process is tearing everything down for good.
static GATE: RwLock<bool> = RwLock::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The registry, even if a thread panicked while holding it: the records stay valid.
fn registry() -> MutexGuard<'static, BTreeMap<u64, Record>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one creation step unless the process is terminating.
pub(crate) fn step<T>(f: impl FnOnce() -> Result<T, LabError>) -> Result<T, LabError> {
    let terminating = GATE.read().unwrap_or_else(|e| e.into_inner());
    if *terminating {
        return Err(LabError::Interrupted);
    }
    f()
}

/// Records a lab about to be built; returns its id.
pub(crate) fn register(record: Record) -> Result<u64, LabError> {
    step(|| {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        registry().insert(id, record);
        Ok(id)
    })
}

/// Starts a keepalived under the gate and records it in the same step, so a signal never
/// sees a started keepalived that teardown does not know about.
pub(crate) fn spawn_child(
    id: u64,
    router: &str,
    cmd: &mut std::process::Command,
) -> Result<u32, LabError> {
    step(|| {
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: cmd::describe(cmd),
            source,
        })?;
        let pid = child.id();
        match registry().get_mut(&id) {
            Some(rec) => rec.children.push((router.to_owned(), child)),
            // The lab was torn down under us (teardown_all); don't leave this one running.
            None => {
                kill_and_reap(child);
                return Err(LabError::Interrupted);
            }
        }
        Ok(pid)
    })
}

/// Whether the router's keepalived has exited, and how. `None` while it runs.
pub(crate) fn child_exit(id: u64, router: &str) -> Option<ExitStatus> {
    let mut reg = registry();
    let (_, child) = reg
        .get_mut(&id)?
        .children
        .iter_mut()
        .find(|(name, _)| name == router)?;
    child.try_wait().ok().flatten()
}

/// Whether lab `id` is still registered, i.e. not torn down (nor being torn down).
pub(crate) fn is_live(id: u64) -> bool {
    registry().contains_key(&id)
}

/// Removes a lab from the registry; whoever gets the record tears it down.
pub(crate) fn take(id: u64) -> Option<Record> {
    registry().remove(&id)
}

fn kill_and_reap(mut child: Child) {
    // kill() fails only if the child was already reaped, which cannot be: we own it.
    let _ = child.kill();
    let _ = child.wait();
}

impl Record {
    /// Stops keepalived (gracefully, so it resigns), kills anything else in the lab's
    /// namespaces, deletes them and removes the lab dir. Keeps going after a failure and
    /// reports every leftover at the end.
    pub(crate) fn teardown(self) -> Result<(), LabError> {
        let Record {
            run_id,
            namespaces,
            dir,
            mut children,
        } = self;
        let mut problems = Vec::new();

        // All at once: each keepalived takes about a second to stop.
        for (_, child) in &children {
            if let Ok(pid) = i32::try_from(child.id()) {
                cmd::signal(pid, Signal::TERM);
                cmd::signal(pid, Signal::CONT);
            }
        }
        cmd::wait_until(KEEPALIVED_GRACE, || {
            children
                .iter_mut()
                .all(|(_, c)| matches!(c.try_wait(), Ok(Some(_))))
        });
        for (name, mut child) in children.drain(..) {
            if let Ok(None) = child.try_wait() {
                problems.push(format!(
                    "keepalived on {name} (pid {}) ignored SIGTERM for {KEEPALIVED_GRACE:?}; killed it",
                    child.id()
                ));
                kill_and_reap(child);
            }
        }

        for ns in &namespaces {
            if let Err(e) = cmd::kill_netns_processes(ns, STRAY_GRACE) {
                problems.push(format!("killing processes in {ns}: {e}"));
            }
        }
        for ns in &namespaces {
            if let Err(e) = cmd::delete_netns(ns) {
                problems.push(format!("{e} (retry: ip netns del {ns})"));
            }
        }

        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!(
                "removing {}: {e} (retry: rm -r {})",
                dir.display(),
                dir.display()
            )),
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(LabError::Teardown { run_id, problems })
        }
    }
}

/// Tears down every lab this process still has, after undoing its faults and before
/// removing what they built around it, and refuses new ones from now on
/// ([`LabError::Interrupted`]). For a process on its way out: a CLI with its own signal
/// handling calls this before exiting. Returns one error per lab that left something behind.
pub fn teardown_all() -> Vec<LabError> {
    let mut terminating = GATE.write().unwrap_or_else(|e| e.into_inner());
    *terminating = true;
    // Builds wait on the gate while we hold it; the records are complete now.
    let records: Vec<Record> = std::mem::take(&mut *registry()).into_values().collect();
    let pending: Vec<Cleanup> = std::mem::take(&mut *cleanups()).into_values().collect();
    drop(terminating);
    let (before, after): (Vec<Cleanup>, Vec<Cleanup>) = pending
        .into_iter()
        .partition(|c| c.phase == Phase::BeforeLabs);
    let mut errors: Vec<LabError> = before.into_iter().filter_map(|c| c.run().err()).collect();
    errors.extend(records.into_iter().filter_map(|r| r.teardown().err()));
    errors.extend(after.into_iter().filter_map(|c| c.run().err()));
    errors
}

/// Whether [`cleanup_on_signal`] already installed its handler.
static SIGNAL_HANDLER: Mutex<bool> = Mutex::new(false);

/// Installs, once per process, a SIGINT/SIGTERM/SIGHUP handler that tears down every lab
/// ([`teardown_all`]) and then lets the signal kill the process as it would have.
///
/// The work runs on an ordinary thread fed by signal-hook, not in the signal handler, so it
/// may run `ip` and wait for keepalived. Calling it again is a no-op. Use it in programs
/// whose only reaction to Ctrl-C is to stop; a program that must also flush something (the
/// recorder) should handle the signal itself and call [`teardown_all`] on its way out.
pub fn cleanup_on_signal() -> Result<(), LabError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    let mut installed = SIGNAL_HANDLER.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return Ok(());
    }
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(LabError::Signal)?;
    std::thread::Builder::new()
        .name("vmlat-lab-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                eprintln!("vmlat-lab: caught signal {sig}, tearing down labs");
                for e in teardown_all() {
                    eprintln!("vmlat-lab: {e}");
                }
                // Die of the signal so the parent sees the real cause; exit() if that fails.
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        })
        .map_err(LabError::Signal)?;
    *installed = true;
    Ok(())
}
