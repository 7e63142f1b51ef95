//! Scenario files: a lab topology, one fault, and what the analysis must find, in TOML.
//!
//! The format is documented for users in `docs/scenarios.md`. Parsing is strict: an unknown
//! or misspelt key, a value of the wrong type, or a value that makes no sense (a fault on a
//! router that does not exist, a recording that stops before the fault is over) is an
//! error that names the file and line, because a typo silently ignored would make a
//! scenario test something other than what its author meant.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use vmlat_analyzer::{IncidentKind, Verdict};

use crate::spec::{Backend, LabSpec, RouterSpec, VrrpVersion};

/// Time the recording must go on after the fault ends, in advert intervals, on top of
/// [`SETTLE_EXTRA`]: the master-down interval (about 3 intervals) for a takeover to show,
/// one more for the preemption back.
const SETTLE_INTERVALS: u32 = 4;
/// Fixed extra settle time: the gap's closing advert and the recorder's last flush.
const SETTLE_EXTRA: Duration = Duration::from_secs(2);
/// Time the recording must run before the fault, in advert intervals: enough adverts for
/// the analyzer to know the stream's interval before it goes silent.
const LEAD_INTERVALS: u32 = 3;

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not a valid scenario; `line` is 1-based when the problem has a place.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The scenario file.
        path: PathBuf,
        /// The line of the offending key or value.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file's stem (`master-sigstop`): names the output directory.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// One line saying what the scenario does.
    pub description: String,
    /// The lab to build.
    pub lab: LabSpec,
    /// How long to record, from the moment the recorder runs.
    pub duration: Duration,
    /// The fault to inject; `None` for a baseline.
    pub fault: Option<FaultSpec>,
    /// What the analysis must show.
    pub expect: Expect,
}

/// One fault: what, on which router, when and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// What kind of fault, with its parameters.
    pub kind: FaultKind,
    /// The router it hits.
    pub target: String,
    /// When, counted from the start of the recording.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

/// The faults a netns lab can really cause (`docs/scenarios.md`: what this machine can
/// inject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGSTOP the target's VRRP process, SIGCONT at the end.
    Sigstop,
    /// Freeze the target's keepalived in a cgroup v1 freezer, thaw at the end.
    Freezer,
    /// Freeze the target's keepalived with the cgroup v2 freezer (`cgroup.freeze`, what
    /// `docker pause` and `systemctl freeze` do), thaw at the end.
    FreezerV2,
    /// A SCHED_FIFO busy loop pinned to `cpu`, where the target's keepalived is pinned too.
    /// `None`: the last online CPU, chosen when the scenario runs.
    CpuHog {
        /// The CPU to starve.
        cpu: Option<u32>,
    },
    /// keepalived writes its stats file to a throttled disk and blocks there.
    IoStall,
    /// The target's bridge port stops forwarding (carrier up, so keepalived keeps sending).
    PortDisabled,
    /// A firewall in the target's namespace drops VRRP (IP protocol 112) on INPUT: the
    /// adverts reach its interface but not its keepalived.
    VrrpFirewall,
    /// QMP `stop` of the target's QEMU guest, `cont` at the end.
    VmPause,
    /// The target QEMU guest's NIC traffic held in QEMU's network backend (a
    /// `filter-buffer`) for the fault's length.
    VnicDelay,
    /// A write of the target guest stuck on the host's disk while the management layer
    /// drains the guest's disk (QMP `block_resize`): QEMU's main loop waits with the big
    /// lock held, and the whole VM stands still, keepalived idle inside it.
    VmDrain,
}

impl FaultKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Sigstop => "sigstop",
            FaultKind::Freezer => "freezer",
            FaultKind::FreezerV2 => "freezer-v2",
            FaultKind::CpuHog { .. } => "cpu-hog",
            FaultKind::IoStall => "io-stall",
            FaultKind::PortDisabled => "port-disabled",
            FaultKind::VrrpFirewall => "vrrp-firewall",
            FaultKind::VmPause => "vm-pause",
            FaultKind::VnicDelay => "vnic-delay",
            FaultKind::VmDrain => "vm-drain",
        }
    }

    /// Whether the lab can make this fault on a router that runs on `backend`
    /// ([`Backend::faults`]; [`Backend::refusal`] says why not).
    pub fn reaches(self, backend: Backend) -> bool {
        backend.faults().contains(&self.name())
    }
}

/// A capture point, relative to a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureSite {
    /// The router's own interface (`eth0@NETNS`): what it really sent.
    Interface,
    /// The router's port on the bridge (`sw-NAME@SWITCH`).
    Port,
    /// The bridge (`br0@SWITCH`): what the other routers could hear.
    Bridge,
}

impl CaptureSite {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            CaptureSite::Interface => "interface",
            CaptureSite::Port => "port",
            CaptureSite::Bridge => "bridge",
        }
    }
}

/// What the analysis must show.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// `true`: a backup takes over and the master takes the VIP back before the end;
    /// `false`: the master never changes.
    pub failover: bool,
    /// The one incident the fault must cause; without one, the recording must have
    /// no incident at all.
    pub incident: Option<IncidentExpect>,
    /// Routers whose adverts must show no gap at any capture point (so no verdict can
    /// blame them).
    pub quiet: Vec<String>,
}

/// The incident a fault must cause.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentExpect {
    pub kind: IncidentKind,
    /// The router it is about: the silent sender of a silence, the backup that took over
    /// in a takeover or split-brain.
    pub router: String,
    /// Where on the path the silence must begin (silences only).
    pub first_silent: Option<CaptureSite>,
    /// The verdict the analyzer must give it.
    pub verdict: Verdict,
    /// Its length, when it matters.
    pub length: Option<Duration>,
    /// How far the length may be off, either way.
    pub tolerance: Duration,
    /// Text the verdict's evidence must contain (the hog's name, the syscall...).
    pub evidence: Vec<String>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks scenario text; `path` names it in errors and gives its name.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let ctx = Ctx { path, text };
        let file: FileDoc = toml::from_str(text).map_err(|e| {
            // serde says "field"; the file has keys.
            let message = e.message().trim().replace("unknown field", "unknown key");
            ctx.error(e.span(), message)
        })?;
        ctx.check(file)
    }

    /// One line for `vmlat lab list`: the fault and what it must produce.
    pub fn summary(&self) -> String {
        let mut s = match &self.fault {
            None => format!("no fault, {} s", secs(self.duration)),
            Some(f) => format!(
                "{} on {} at {} s for {} s",
                f.kind.name(),
                f.target,
                secs(f.start),
                secs(f.length)
            ),
        };
        s.push_str(" → ");
        if let Some(i) = &self.expect.incident {
            let _ = write!(
                s,
                "one {} {} of {}",
                i.verdict.name(),
                i.kind.name(),
                i.router
            );
            if let Some(length) = i.length {
                let _ = write!(s, " of {}±{} s", secs(length), secs(i.tolerance));
            }
            if let Some(site) = i.first_silent {
                let _ = write!(s, " first silent at its {}", site.name());
            }
            s.push_str(", ");
        }
        if !self.expect.quiet.is_empty() {
            let _ = write!(s, "no gap from {}, ", self.expect.quiet.join(", "));
        }
        s.push_str(if self.expect.failover {
            "failover and back"
        } else {
            "no failover"
        });
        s
    }
}

/// Seconds for messages: `4`, `0.5`.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

// ---- The file as written. Spanned fields are the ones checked after parsing, so that
// ---- their errors can name a line too.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    description: String,
    duration: Spanned<f64>,
    topology: Spanned<TopologyDoc>,
    fault: Option<FaultDoc>,
    expect: ExpectDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyDoc {
    #[serde(default = "default_advert_int")]
    advert_int: Spanned<f64>,
    #[serde(default = "default_version")]
    version: Spanned<u8>,
    #[serde(default)]
    unicast: bool,
    #[serde(default = "default_vrid")]
    vrid: u8,
    #[serde(default)]
    backend: BackendDoc,
    router: Vec<Spanned<RouterDoc>>,
}

/// `qemu`: the first router is a QEMU guest, the others stay namespaces. `vagrant`: every
/// router is the Vagrantfile's VM of that name.
#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
enum BackendDoc {
    #[default]
    Netns,
    Qemu,
    Vagrant,
}

fn default_advert_int() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}
fn default_version() -> Spanned<u8> {
    Spanned::new(0..0, 2)
}
fn default_vrid() -> u8 {
    51
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterDoc {
    name: String,
    priority: u8,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum KindDoc {
    Sigstop,
    Freezer,
    FreezerV2,
    CpuHog,
    IoStall,
    PortDisabled,
    VrrpFirewall,
    VmPause,
    VnicDelay,
    VmDrain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultDoc {
    kind: Spanned<KindDoc>,
    target: Spanned<String>,
    start: Spanned<f64>,
    length: Spanned<f64>,
    cpu: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectDoc {
    failover: bool,
    incident: Option<Spanned<IncidentDoc>>,
    #[serde(default)]
    quiet: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentDoc {
    #[serde(default = "default_kind")]
    kind: Spanned<String>,
    router: Option<Spanned<String>>,
    first_silent: Option<CaptureSite>,
    verdict: Spanned<String>,
    length: Option<Spanned<f64>>,
    #[serde(default = "default_tolerance")]
    tolerance: Spanned<f64>,
    #[serde(default)]
    evidence: Vec<String>,
}

fn default_kind() -> Spanned<String> {
    Spanned::new(0..0, "silence".to_string())
}
fn default_tolerance() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}

/// Every verdict the analyzer gives, to check names against its own spelling.
const INCIDENT_KINDS: [IncidentKind; 4] = [
    IncidentKind::Silence,
    IncidentKind::Open,
    IncidentKind::Takeover,
    IncidentKind::SplitBrain,
];

const VERDICTS: [Verdict; 12] = [
    Verdict::GuestKernel,
    Verdict::GuestCpu,
    Verdict::GuestIo,
    Verdict::AppBlocked,
    Verdict::AppStopped,
    Verdict::VcpuPreempted,
    Verdict::VmPaused,
    Verdict::HostIo,
    Verdict::Vnic,
    Verdict::Network,
    Verdict::Receiver,
    Verdict::Inconclusive,
];

/// The file being checked, for errors that name a line.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ScenarioError {
        // A defaulted value has the empty span 0..0: no line to point at.
        let line = span.filter(|s| !s.is_empty()).map(|s| {
            let before = self.text.get(..s.start).unwrap_or(self.text);
            before.bytes().filter(|&b| b == b'\n').count() + 1
        });
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.error(Some(value.span()), message)
    }

    /// A duration in seconds that must be positive and finite.
    fn seconds(&self, value: &Spanned<f64>, key: &str) -> Result<Duration, ScenarioError> {
        let s = *value.get_ref();
        if s.is_finite() && s > 0.0 && s < 3600.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(self.at(
                value,
                format!("`{key}` is {s}: give a positive number of seconds, below an hour"),
            ))
        }
    }

    fn router<'s>(
        &self,
        lab: &'s LabSpec,
        name: &Spanned<String>,
        key: &str,
    ) -> Result<&'s str, ScenarioError> {
        lab.routers
            .iter()
            .find(|r| &r.name == name.get_ref())
            .map(|r| r.name.as_str())
            .ok_or_else(|| {
                let known: Vec<&str> = lab.routers.iter().map(|r| r.name.as_str()).collect();
                self.at(
                    name,
                    format!(
                        "`{key}` names router {:?}, which is not in the topology (routers: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })
    }

    fn check(&self, file: FileDoc) -> Result<Scenario, ScenarioError> {
        let duration = self.seconds(&file.duration, "duration")?;
        let lab = self.lab(&file.topology)?;
        let fault = file
            .fault
            .as_ref()
            .map(|f| self.fault(f, &lab, duration))
            .transpose()?;

        let incident = match &file.expect.incident {
            None => None,
            Some(g) => Some(self.incident(g, &lab, fault.as_ref())?),
        };
        let quiet = file
            .expect
            .quiet
            .iter()
            .map(|r| self.router(&lab, r, "quiet").map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let name = self
            .path
            .file_stem()
            .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
        Ok(Scenario {
            name,
            path: self.path.to_path_buf(),
            description: file.description,
            lab,
            duration,
            fault,
            expect: Expect {
                failover: file.expect.failover,
                incident,
                quiet,
            },
        })
    }

    fn lab(&self, topo: &Spanned<TopologyDoc>) -> Result<LabSpec, ScenarioError> {
        let t = topo.get_ref();
        let version = match *t.version.get_ref() {
            2 => VrrpVersion::V2,
            3 => VrrpVersion::V3,
            v => {
                return Err(self.at(&t.version, format!("`version` is {v}: VRRP is 2 or 3")));
            }
        };
        let advert_int = self.seconds(&t.advert_int, "advert_int")?;
        let lab = LabSpec {
            routers: t
                .router
                .iter()
                .enumerate()
                .map(|(i, r)| RouterSpec {
                    backend: match (t.backend, i) {
                        (BackendDoc::Qemu, 0) => Backend::Qemu,
                        (BackendDoc::Vagrant, _) => Backend::Vagrant,
                        _ => Backend::Netns,
                    },
                    ..RouterSpec::new(r.get_ref().name.clone(), r.get_ref().priority)
                })
                .collect(),
            vrid: t.vrid,
            advert_int,
            version,
            unicast: t.unicast,
            ipv6: false,
        };
        if lab.routers.len() < 2 {
            return Err(self.at(
                topo,
                "a scenario needs at least two [[topology.router]]: a master and a backup",
            ));
        }
        lab.validate().map_err(|e| self.at(topo, e.to_string()))?;
        Ok(lab)
    }

    fn fault(
        &self,
        f: &FaultDoc,
        lab: &LabSpec,
        duration: Duration,
    ) -> Result<FaultSpec, ScenarioError> {
        let kind = match *f.kind.get_ref() {
            KindDoc::Sigstop => FaultKind::Sigstop,
            KindDoc::Freezer => FaultKind::Freezer,
            KindDoc::FreezerV2 => FaultKind::FreezerV2,
            KindDoc::CpuHog => FaultKind::CpuHog {
                cpu: f.cpu.as_ref().map(|c| *c.get_ref()),
            },
            KindDoc::IoStall => FaultKind::IoStall,
            KindDoc::PortDisabled => FaultKind::PortDisabled,
            KindDoc::VrrpFirewall => FaultKind::VrrpFirewall,
            KindDoc::VmPause => FaultKind::VmPause,
            KindDoc::VnicDelay => FaultKind::VnicDelay,
            KindDoc::VmDrain => FaultKind::VmDrain,
        };
        if let (Some(cpu), false) = (&f.cpu, matches!(kind, FaultKind::CpuHog { .. })) {
            return Err(self.at(
                cpu,
                format!(
                    "`cpu` does not apply to a {} fault (only to cpu-hog)",
                    kind.name()
                ),
            ));
        }
        let target = self.router(lab, &f.target, "target")?.to_owned();
        let backend = lab
            .routers
            .iter()
            .find(|r| r.name == target)
            .map_or(Backend::Netns, |r| r.backend);
        if !kind.reaches(backend) {
            return Err(self.at(
                &f.target,
                format!("a {} fault on {target}: {}", kind.name(), backend.refusal()),
            ));
        }
        let start = self.seconds(&f.start, "start")?;
        let length = self.seconds(&f.length, "length")?;
        let lead = lab.advert_int * LEAD_INTERVALS;
        if start < lead {
            return Err(self.at(
                &f.start,
                format!(
                    "the fault starts at {} s: start it at {} s or later, so that the recording \
                     holds a few adverts before it",
                    secs(start),
                    secs(lead)
                ),
            ));
        }
        let needed = start + length + lab.advert_int * SETTLE_INTERVALS + SETTLE_EXTRA;
        if duration < needed {
            return Err(self.at(
                &f.length,
                format!(
                    "the fault ends at {} s but the recording stops at {} s: set `duration` to \
                     {} or more, so that the takeover and the master's return are recorded",
                    secs(start + length),
                    secs(duration),
                    needed.as_secs_f64().ceil()
                ),
            ));
        }
        Ok(FaultSpec {
            kind,
            target,
            start,
            length,
        })
    }

    fn incident(
        &self,
        g: &Spanned<IncidentDoc>,
        lab: &LabSpec,
        fault: Option<&FaultSpec>,
    ) -> Result<IncidentExpect, ScenarioError> {
        let doc = g.get_ref();
        let router = match (&doc.router, fault) {
            (Some(r), _) => self.router(lab, r, "router")?.to_owned(),
            (None, Some(f)) => f.target.clone(),
            (None, None) => {
                return Err(self.at(
                    g,
                    "[expect.incident] without a [fault] needs `router`: whose incident it is",
                ))
            }
        };
        let name = doc.verdict.get_ref();
        let verdict = VERDICTS
            .into_iter()
            .find(|v| v.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = VERDICTS.iter().map(|v| v.name()).collect();
                self.at(
                    &doc.verdict,
                    format!(
                        "unknown verdict {name:?} (expected one of {})",
                        names.join(", ")
                    ),
                )
            })?;
        let kind_name = doc.kind.get_ref();
        let kind = INCIDENT_KINDS
            .into_iter()
            .find(|k| k.name() == kind_name)
            .ok_or_else(|| {
                let names: Vec<&str> = INCIDENT_KINDS.iter().map(|k| k.name()).collect();
                self.at(
                    &doc.kind,
                    format!(
                        "unknown incident kind {kind_name:?} (expected one of {})",
                        names.join(", ")
                    ),
                )
            })?;
        let tolerance = *doc.tolerance.get_ref();
        if !(0.0..3600.0).contains(&tolerance) {
            return Err(self.at(
                &doc.tolerance,
                format!("`tolerance` is {tolerance}: give zero or more seconds"),
            ));
        }
        let length = match &doc.length {
            Some(l) => Some(self.seconds(l, "length")?),
            None => None,
        };
        Ok(IncidentExpect {
            kind,
            router,
            first_silent: doc.first_silent,
            verdict,
            length,
            tolerance: Duration::from_secs_f64(tolerance),
            evidence: doc.evidence.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGSTOP: &str = r#"description = "stop the master"
duration = 15

[topology]
[[topology.router]]
name = "vr1"
priority = 150
[[topology.router]]
name = "vr2"
priority = 100

[fault]
kind = "sigstop"
target = "vr1"
start = 4
length = 4

[expect]
failover = true

[expect.incident]
verdict = "app-stopped"
length = 4
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("s/x.toml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("must be rejected").to_string()
    }

    #[test]
    fn parses_with_defaults() {
        let s = parse(SIGSTOP).expect("valid");
        assert_eq!(s.name, "x");
        assert_eq!(s.lab.vrid, 51);
        assert_eq!(s.lab.advert_int, Duration::from_secs(1));
        assert_eq!(s.lab.version, VrrpVersion::V2);
        let f = s.fault.as_ref().expect("a fault");
        assert_eq!((f.kind, f.target.as_str()), (FaultKind::Sigstop, "vr1"));
        let i = s.expect.incident.as_ref().expect("an incident");
        assert_eq!(i.router, "vr1", "defaults to the target");
        assert_eq!(i.kind, IncidentKind::Silence, "a silence by default");
        assert_eq!(i.first_silent, None);
        assert_eq!(i.verdict, Verdict::AppStopped);
        assert_eq!(i.tolerance, Duration::from_secs(1));
        assert!(s
            .summary()
            .contains("one app-stopped silence of vr1 of 4±1 s"));
    }

    #[test]
    fn an_unknown_incident_kind_is_named_with_its_line() {
        let text = SIGSTOP.replace(
            "verdict = \"app-stopped\"",
            "kind = \"hiccup\"\nverdict = \"app-stopped\"",
        );
        let e = error(&text);
        assert!(e.contains("unknown incident kind \"hiccup\""), "{e}");
        assert!(e.contains("x.toml:"), "{e}");
    }

    #[test]
    fn parses_vrrp_firewall() {
        let text = SIGSTOP
            .replace("kind = \"sigstop\"", "kind = \"vrrp-firewall\"")
            .replace("target = \"vr1\"", "target = \"vr2\"");
        let s = parse(&text).expect("valid");
        let f = s.fault.as_ref().expect("a fault");
        assert_eq!(
            (f.kind, f.target.as_str()),
            (FaultKind::VrrpFirewall, "vr2")
        );
        assert!(s
            .summary()
            .starts_with("vrrp-firewall on vr2 at 4 s for 4 s"));
        let e = error(&text.replace(
            "kind = \"vrrp-firewall\"",
            "kind = \"vrrp-firewall\"\ncpu = 1",
        ));
        assert!(
            e.contains("`cpu` does not apply to a vrrp-firewall fault"),
            "{e}"
        );
    }

    #[test]
    fn parses_freezer_v2() {
        let text = SIGSTOP.replace("kind = \"sigstop\"", "kind = \"freezer-v2\"");
        let s = parse(&text).expect("valid");
        let f = s.fault.as_ref().expect("a fault");
        assert_eq!((f.kind, f.target.as_str()), (FaultKind::FreezerV2, "vr1"));
        assert_eq!(f.kind.name(), "freezer-v2");
        assert!(s.summary().starts_with("freezer-v2 on vr1 at 4 s for 4 s"));
        let e = error(&text.replace("kind = \"freezer-v2\"", "kind = \"freezer-v2\"\ncpu = 1"));
        assert!(
            e.contains("`cpu` does not apply to a freezer-v2 fault"),
            "{e}"
        );
        let e = error(&SIGSTOP.replace("kind = \"sigstop\"", "kind = \"freezer_v2\""));
        assert!(e.contains("unknown variant `freezer_v2`"), "{e}");
        assert!(e.contains("`freezer-v2`"), "lists the kinds: {e}");
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let e = error(&SIGSTOP.replace("length = 4\n\n[expect]", "lenght = 4\n\n[expect]"));
        assert!(e.starts_with("s/x.toml:16: unknown key `lenght`"), "{e}");
        assert!(e.contains("`length`"), "lists the expected keys: {e}");
        let e = error(&SIGSTOP.replace("priority = 100", "priority = 100\ncpu = 1"));
        assert!(e.starts_with("s/x.toml:11: unknown key `cpu`"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = error(&SIGSTOP.replace("target = \"vr1\"", "target = \"vr3\""));
        assert!(e.starts_with("s/x.toml:14: "), "{e}");
        assert!(e.contains("routers: vr1, vr2"), "{e}");
        let e = error(&SIGSTOP.replace("\"app-stopped\"", "\"app-stoped\""));
        assert!(e.starts_with("s/x.toml:22: unknown verdict"), "{e}");
        let e = error(&SIGSTOP.replace("kind = \"sigstop\"", "kind = \"sigstop\"\ncpu = 1"));
        assert!(e.contains("`cpu` does not apply to a sigstop fault"), "{e}");
        let e = error(&SIGSTOP.replace("duration = 15", "duration = 10"));
        assert!(e.contains("set `duration` to 14 or more"), "{e}");
        let e = error(&SIGSTOP.replace("kind = \"sigstop\"", "kind = \"sigkill\""));
        assert!(
            e.starts_with("s/x.toml:13: unknown variant `sigkill`"),
            "{e}"
        );
        let e = error(&SIGSTOP.replace("priority = 150", "priority = 0"));
        assert!(e.contains("priority 0"), "{e}");
    }

    #[test]
    fn qemu_backend_makes_the_first_router_a_guest() {
        let text = SIGSTOP
            .replace("[topology]\n", "[topology]\nbackend = \"qemu\"\n")
            .replace("kind = \"sigstop\"", "kind = \"vm-pause\"");
        let s = parse(&text).expect("valid");
        let backends: Vec<Backend> = s.lab.routers.iter().map(|r| r.backend).collect();
        assert_eq!(backends, [Backend::Qemu, Backend::Netns]);
        assert_eq!(s.fault.as_ref().map(|f| f.kind), Some(FaultKind::VmPause));
        assert!(s.summary().starts_with("vm-pause on vr1 at 4 s for 4 s"));

        let e = error(&text.replace("target = \"vr1\"", "target = \"vr2\""));
        assert!(e.starts_with("s/x.toml:15: a vm-pause fault on vr2"), "{e}");
        assert!(e.contains("backend = \"qemu\""), "{e}");
        let e = error(&text.replace("kind = \"vm-pause\"", "kind = \"freezer\""));
        assert!(
            e.contains("a freezer fault on vr1: a QEMU guest takes only sigstop, cpu-hog, io-stall, vm-pause, vnic-delay and vm-drain"),
            "{e}"
        );
        let e = error(&SIGSTOP.replace("kind = \"sigstop\"", "kind = \"vm-pause\""));
        assert!(
            e.contains("vm-pause, vnic-delay and vm-drain need a QEMU guest"),
            "{e}"
        );
        let e = error(&text.replace("backend = \"qemu\"", "backend = \"kvm\""));
        assert!(e.contains("unknown variant `kvm`"), "{e}");
        // A guest also takes a hold on its NIC, and a CPU hog (on its vCPUs).
        for kind in ["vnic-delay", "cpu-hog"] {
            let s = parse(&text.replace("kind = \"vm-pause\"", &format!("kind = \"{kind}\"")))
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(s.fault.as_ref().map(|f| f.kind.name()), Some(kind));
        }
    }

    #[test]
    fn vagrant_backend_takes_the_vagrantfiles_machines_and_its_faults() {
        let text = SIGSTOP
            .replace("[topology]\n", "[topology]\nbackend = \"vagrant\"\n")
            .replace("\"vr1\"", "\"lb1\"")
            .replace("\"vr2\"", "\"lb2\"");
        let s = parse(&text).expect("valid");
        assert!(s.lab.routers.iter().all(|r| r.backend == Backend::Vagrant));
        assert_eq!(s.lab.vip().to_string(), "192.168.56.100");
        let e = error(&SIGSTOP.replace("[topology]\n", "[topology]\nbackend = \"vagrant\"\n"));
        assert!(
            e.contains("router vr1: a vagrant lab's routers are the Vagrantfile's machines (lb1, lb2); rename it"),
            "{e}"
        );
        let e = error(&text.replace("priority = 150", "priority = 200"));
        assert!(e.contains("set priority = 150"), "{e}");
        let e = error(&text.replace("kind = \"sigstop\"", "kind = \"io-stall\""));
        assert!(
            e.contains("a io-stall fault on lb1: a Vagrant machine takes only sigstop (over `vagrant ssh`), cpu-hog (on its vCPU threads on this host) and vm-pause"),
            "{e}"
        );
        for kind in ["vm-pause", "cpu-hog"] {
            let s = parse(&text.replace("kind = \"sigstop\"", &format!("kind = \"{kind}\"")))
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(s.fault.as_ref().map(|f| f.kind.name()), Some(kind));
        }
    }

    /// Not in scenarios/ itself: CI runs `scenarios/*.toml`, and has no Vagrant VMs.
    #[test]
    fn shipped_vagrant_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/vagrant");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios/vagrant exists") {
            let s =
                Scenario::load(&entry.expect("readable").path()).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.lab.is_vagrant(), "{}", s.name);
            n += 1;
        }
        assert!(n >= 2, "only {n} scenarios in {}", dir.display());
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
            let path = entry.expect("readable").path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 8, "only {n} scenarios in {}", dir.display());
    }
}
