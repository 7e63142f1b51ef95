//! keepalived's own log lines, parsed into typed events: the daemon's own view of the
//! seconds the analyzer has evidence for (it ran late, its receive timer fired, it changed
//! state, it saw a lower-priority master).
//!
//! # Formats
//!
//! One file may mix them; each line is recognised on its own.
//!
//! | format | example | resolution | time zone |
//! |---|---|---|---|
//! | classic syslog (rsyslog `RSYSLOG_TraditionalFileFormat`, `journalctl -o short`) | `Nov 30 20:53:37 vm Keepalived_vrrp[23051]: ...` | 1 s | local, no year |
//! | `journalctl -o short-precise` | `Nov 30 20:53:37.669177 vm Keepalived_vrrp[23051]: ...` | 1 µs | local, no year |
//! | RFC 3339 syslog (rsyslog's default file format on Debian) | `2026-11-30T20:53:37.670250+00:00 vm Keepalived_vrrp[23051]: ...` | as written | in the line |
//! | `journalctl -o short-iso` / `short-iso-precise` | `2026-11-30T20:53:25+0000 vm ...`, `2026-11-30T20:53:25.280250+0000 vm ...` | 1 s / 1 µs | in the line |
//! | keepalived's console log (`-l`, what the lab writes to `ROUTER.log`) | `Mon Nov 30 20:53:37 2026: A thread timer expired ...` | 1 s | local |
//! | `journalctl -o json` (one object per line) | `{"_SOURCE_REALTIME_TIMESTAMP":"1796072017669177",...}` | 1 µs | UTC |
//!
//! # What is assumed
//!
//! - Lines without a UTC offset (classic syslog, `short-precise`, the console log) are in
//!   the local time of the machine that wrote them. That zone is not in the file, so the
//!   caller says it: [`DateContext::utc_offset_secs`], one fixed offset for the whole file
//!   (a file spanning a DST change is off by an hour on one side of it). The lab and most
//!   servers run in UTC, the default of [`DateContext::utc`].
//! - Lines without a year (classic syslog) get the year that puts them closest to
//!   [`DateContext::reference`] (a time near the recording, e.g. its start or the file's
//!   mtime): `Dec 31 23:59:59` read with a reference in early January is last year's, `Jan 1`
//!   read with a reference on Dec 31 is next year's. A file spanning more than half a year
//!   around the reference is dated wrongly on the far side.
//! - The console log is formatted like C's `%c` in the C locale (`Mon Nov 30 20:53:37
//!   2026`), as keepalived 2.2.7 writes it; it carries neither a pid nor a process name, and keepalived's
//!   parent and VRRP child write into the same stream.
//! - Message texts are those of keepalived 1.x (`VRRP_Instance(VI_1) ...`) and 2.x
//!   (`(VI_1) ...`); the 2.2.7 ones were checked against real output (see the fixtures in
//!   `analyzer/tests/fixtures/keepalived-logs/`), the 1.x ones against its source only.
//!
//! Nothing is silent: [`read`] counts the lines it could not date and the lines of other
//! programs it skipped; only blank lines are skipped without a count. Lines need not be
//! UTF-8 (invalid bytes become U+FFFD), and a line longer than [`MAX_LINE`] bytes is cut
//! there (and counted) instead of being held in memory whole.
//!
//! # In the analysis
//!
//! `vmlat analyze --keepalived-log FILE` opens every log before reading any input ([`open`]:
//! a missing one is an error), then, after the attribution pass, reads each once ([`add`])
//! keeping only the lines that fall in some incident's evidence window, and gives each
//! incident its lines ([`attach`]), shown after their origin (the syslog host and tag, or
//! the file's name for the console log, which names neither). A whole-second line counts
//! as in the window when any part of its second is. Each log's counts go into
//! [`Analysis::keepalived_logs`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::{Analysis, Incident, IncidentKind, LogEntry, LogFileSummary};
use crate::time::Timestamp;
use crate::AnalyzeError;

/// Bytes of one line that are looked at; the rest of a longer line is skipped. keepalived
/// lines are under 200 bytes, a `journalctl -o json` object about 1 KiB.
pub const MAX_LINE: usize = 64 * 1024;

const NS_PER_SEC: i64 = 1_000_000_000;

/// What the parser needs to date lines that do not say their year or their time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateContext {
    /// A time near the lines (ns since the Unix epoch, UTC): the year of a classic syslog
    /// line is the one that puts it closest to this.
    pub reference: i64,
    /// The offset of the writer's local time from UTC, in seconds (east positive: +3600 for
    /// CET), applied to lines that carry no offset of their own.
    pub utc_offset_secs: i32,
}

impl DateContext {
    /// Lines written on a machine running in UTC, near `reference` (ns since the epoch).
    pub fn utc(reference: i64) -> Self {
        DateContext {
            reference,
            utc_offset_secs: 0,
        }
    }
}

/// A VRRP instance state keepalived reports entering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    Master,
    Backup,
    Fault,
}

/// What a keepalived line says, for the lines the analyzer puts next to its evidence.
/// The instance the line is about, when it names one, is [`LogLine::instance`].
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    /// `A thread timer expired 3.574975 seconds ago`: keepalived's event loop ran this late
    /// (it was stopped, starved or blocked). Logged when the loop resumes, so the late
    /// stretch ends at the line's time; it started `seconds` before that at the latest.
    /// keepalived measures from its earliest due timer, so a process stopped for 4 s reports
    /// about 3.6 s when its next advert was due 0.4 s into the stop.
    TimerExpiredLate { seconds: f64 },
    /// `(VI_1) Receive advertisement timeout`: a backup heard no advert for the master-down
    /// interval. keepalived 2.2.7 logs it only with `-D` (`--log-detail`).
    ReceiveTimeout,
    /// `(VI_1) Entering MASTER STATE` (`BACKUP`, `FAULT`; 2.x adds ` (init)` at startup).
    /// `transition` is set for 1.x's `Transition to MASTER STATE`, which announces the
    /// change just before its `Entering MASTER STATE`: count one of the two, not both.
    StateChange { state: VrrpState, transition: bool },
    /// An advert with a lower priority than ours. `new_election` is set when keepalived, as
    /// master, answered it with an advert of its own to end a second master (`Received advert
    /// from 10.77.0.2 with lower priority 100, ours 150, forcing new election`); unset when a
    /// backup ignored it (`received lower priority (100) advert from 10.77.0.2 -
    /// discarding`, 2.x, while it waits to preempt). `from` and `priority` are
    /// `None` in the 1.x texts that omit them.
    LowerPriority {
        from: Option<IpAddr>,
        priority: Option<u8>,
        new_election: bool,
    },
    /// An advert with a higher priority than ours, received as master: keepalived steps down
    /// to backup (`Master received advert from 10.77.0.1 with higher priority 150, ours 100`).
    HigherPriority {
        from: Option<IpAddr>,
        priority: Option<u8>,
    },
    /// Any other line; its text is in [`LogLine::text`].
    Other,
}

/// One dated keepalived log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When it was logged, ns since the Unix epoch (UTC). For whole-second formats this is
    /// the start of the second: the line was written within `[t, t + resolution_ns)`.
    pub t: i64,
    /// The precision of `t`: 1 s for classic syslog and the console log, 1 µs for the
    /// journal's precise forms, whatever the fraction's digits say for RFC 3339.
    pub resolution_ns: i64,
    /// The host field of syslog and journal lines.
    pub host: Option<String>,
    /// The syslog tag: `Keepalived_vrrp` (the VRRP child), `Keepalived` (the parent),
    /// `Keepalived_healthcheckers`; `None` in the console log, which does not say.
    pub program: Option<String>,
    /// The pid in the syslog tag or the journal; `None` in the console log.
    pub pid: Option<i32>,
    /// The VRRP instance the line is about (`VI_1` from `(VI_1) ...` or
    /// `VRRP_Instance(VI_1) ...`).
    pub instance: Option<String>,
    pub event: LogEvent,
    /// keepalived's message, after the timestamp and tag, as written.
    pub text: String,
}

/// What one input line is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A dated line of keepalived.
    Keepalived(LogLine),
    /// A dated line of another program (a syslog file holds every daemon's lines).
    Foreign,
    /// A line no known format could date (blank lines included).
    Undated,
}

/// Everything [`read`] found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogSummary {
    /// keepalived's lines, in file order (those the reader's filter kept: all of them for
    /// [`read`]).
    pub lines: Vec<LogLine>,
    /// Non-blank lines read.
    pub read: u64,
    /// keepalived's lines, kept or not.
    pub keepalived: u64,
    /// The earliest and the latest time of keepalived's lines, kept or not.
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Non-blank lines no known format could date.
    pub undated: u64,
    /// Dated lines of other programs, skipped.
    pub foreign: u64,
    /// Lines longer than [`MAX_LINE`] bytes, parsed from their first [`MAX_LINE`] bytes.
    pub truncated: u64,
}

/// Reads keepalived's lines from the log file at `path`, streaming.
#[cfg(test)]
pub fn read(path: &Path, ctx: &DateContext) -> Result<LogSummary, io::Error> {
    read_from(BufReader::new(File::open(path)?), ctx)
}

/// [`read`] from any buffered reader.
#[cfg(test)]
pub fn read_from<R: BufRead>(reader: R, ctx: &DateContext) -> Result<LogSummary, io::Error> {
    read_filtered(reader, ctx, |_| true)
}

/// [`read_from`], keeping only the keepalived lines `keep` wants (every line is still
/// counted): memory grows with what is kept, not with the file.
pub fn read_filtered<R: BufRead>(
    mut reader: R,
    ctx: &DateContext,
    mut keep: impl FnMut(&LogLine) -> bool,
) -> Result<LogSummary, io::Error> {
    let mut summary = LogSummary::default();
    let mut buf = Vec::new();
    while let Some(truncated) = next_line(&mut reader, &mut buf)? {
        if truncated {
            summary.truncated += 1;
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        summary.read += 1;
        match parse_line(&line, ctx) {
            Parsed::Keepalived(l) => {
                summary.keepalived += 1;
                summary.first = Some(summary.first.map_or(l.t, |f| f.min(l.t)));
                summary.last = Some(summary.last.map_or(l.t, |f| f.max(l.t)));
                if keep(&l) {
                    summary.lines.push(l);
                }
            }
            Parsed::Foreign => summary.foreign += 1,
            Parsed::Undated => summary.undated += 1,
        }
    }
    Ok(summary)
}

/// Reads the next line into `buf` (without more than [`MAX_LINE`] bytes of it). `None` at
/// the end of the input, else whether the line was cut.
fn next_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    let n = reader.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') || n < MAX_LINE {
        return Ok(Some(false));
    }
    // MAX_LINE bytes and no newline yet: drop the rest of the line without holding it.
    let mut truncated = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        // A line of exactly MAX_LINE bytes was read whole.
        truncated |= newline != Some(0);
        match newline {
            Some(i) => {
                reader.consume(i + 1);
                break;
            }
            None => {
                let len = chunk.len();
                reader.consume(len);
            }
        }
    }
    Ok(Some(truncated))
}

/// Parses one line in any of the module's formats.
pub fn parse_line(line: &str, ctx: &DateContext) -> Parsed {
    let line = line.trim_end_matches(['\n', '\r']);
    let header = if line.trim_start().starts_with('{') {
        journal_json(line)
    } else {
        iso_syslog(line)
            .or_else(|| console(line, ctx))
            .or_else(|| classic_syslog(line, ctx))
    };
    let Some(h) = header else {
        return Parsed::Undated;
    };
    if !h.keepalived {
        return Parsed::Foreign;
    }
    let (instance, event) = classify(&h.message);
    Parsed::Keepalived(LogLine {
        t: h.t,
        resolution_ns: h.resolution_ns,
        host: h.host,
        program: h.program,
        pid: h.pid,
        instance: instance.map(str::to_owned),
        event,
        text: h.message,
    })
}

/// A line's timestamp and origin, before its message is read.
struct Header {
    t: i64,
    resolution_ns: i64,
    host: Option<String>,
    program: Option<String>,
    pid: Option<i32>,
    /// The line comes from keepalived (by its tag, or by its format for the console log).
    keepalived: bool,
    message: String,
}

/// The first space-separated token of `s` and what follows it (leading spaces skipped).
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(' ').unwrap_or((s, "")))
}

/// The precision of a timestamp whose seconds have `digits` fraction digits.
fn resolution(digits: usize) -> i64 {
    let digits = u32::try_from(digits.min(9)).unwrap_or(9);
    NS_PER_SEC / 10_i64.pow(digits)
}

/// The number of fraction digits after the seconds of `stamp` (`20:49:21.072910` → 6).
fn fraction_digits(stamp: &str) -> usize {
    match stamp.split_once('.') {
        Some((_, frac)) => frac.bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    }
}

/// `2026-11-30T20:49:21.073181+00:00 host tag[pid]: message` (RFC 3339 syslog and
/// `journalctl -o short-iso[-precise]`, whose offset has no colon: `+0000`).
fn iso_syslog(line: &str) -> Option<Header> {
    let (stamp, rest) = token(line)?;
    let b = stamp.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let dt = DateTime::parse_from_rfc3339(stamp)
        .or_else(|_| DateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    let t = dt.timestamp_nanos_opt()?;
    Some(syslog_tail(t, resolution(fraction_digits(stamp)), rest))
}

/// `Mon Nov 30 20:49:21 2026: message`, keepalived's `-l` console log (`%c`, local time).
fn console(line: &str, ctx: &DateContext) -> Option<Header> {
    let (stamp, message) = line.split_once(": ")?;
    // `%c` is 24 characters in the C locale; the bound keeps other lines with an early
    // ": " from being tried as dates.
    if !(20..=30).contains(&stamp.len()) {
        return None;
    }
    let local = NaiveDateTime::parse_from_str(stamp, "%a %b %e %H:%M:%S %Y").ok()?;
    Some(Header {
        t: local_to_utc(local, ctx)?,
        resolution_ns: NS_PER_SEC,
        host: None,
        program: None,
        pid: None,
        keepalived: true,
        message: message.to_owned(),
    })
}

/// `Nov 30 20:49:21[.072910] host tag[pid]: message`: classic syslog and `journalctl -o
/// short[-precise]`, local time without a year.
fn classic_syslog(line: &str, ctx: &DateContext) -> Option<Header> {
    let (month, rest) = token(line)?;
    let month = month_number(month)?;
    let (day, rest) = token(rest)?;
    let day: u32 = day.parse().ok()?;
    let (stamp, rest) = token(rest)?;
    let time = NaiveTime::parse_from_str(stamp, "%H:%M:%S%.f").ok()?;
    let t = syslog_time(month, day, time, ctx)?;
    Some(syslog_tail(t, resolution(fraction_digits(stamp)), rest))
}

/// 1 for `Jan` ... 12 for `Dec` (syslog writes English abbreviations whatever the locale).
fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = MONTHS.iter().position(|m| *m == name)?;
    u32::try_from(i + 1).ok()
}

/// The UTC time of a yearless local `month day time`: of last, this and next year (of the
/// reference), the one closest to the reference.
fn syslog_time(month: u32, day: u32, time: NaiveTime, ctx: &DateContext) -> Option<i64> {
    let offset_ns = i64::from(ctx.utc_offset_secs) * NS_PER_SEC;
    let local_reference = DateTime::from_timestamp_nanos(ctx.reference.saturating_add(offset_ns));
    let year = local_reference.year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .filter_map(|date| local_to_utc(date.and_time(time), ctx))
        .min_by_key(|&t| (i128::from(t) - i128::from(ctx.reference)).abs())
}

/// ns since the epoch (UTC) of a local time at the context's offset.
fn local_to_utc(local: NaiveDateTime, ctx: &DateContext) -> Option<i64> {
    let ns = local.and_utc().timestamp_nanos_opt()?;
    ns.checked_sub(i64::from(ctx.utc_offset_secs) * NS_PER_SEC)
}

/// The `host tag[pid]: message` after a syslog timestamp. A host may be missing (some
/// templates drop it), and so may the tag (old `last message repeated` lines): such a line
/// is dated but not keepalived's.
fn syslog_tail(t: i64, resolution_ns: i64, rest: &str) -> Header {
    let mut header = Header {
        t,
        resolution_ns,
        host: None,
        program: None,
        pid: None,
        keepalived: false,
        message: rest.trim_start_matches(' ').to_owned(),
    };
    let Some((first, after_first)) = token(rest) else {
        return header;
    };
    let (tag, message) = if first.ends_with(':') {
        (first, after_first)
    } else {
        header.host = Some(first.to_owned());
        match token(after_first) {
            Some((second, after_second)) if second.ends_with(':') => (second, after_second),
            _ => {
                header.message = after_first.trim_start_matches(' ').to_owned();
                return header;
            }
        }
    };
    let tag = tag.trim_end_matches(':');
    let (program, pid) = match tag.split_once('[') {
        Some((program, pid)) => (program, pid.strip_suffix(']').and_then(|p| p.parse().ok())),
        None => (tag, None),
    };
    header.keepalived = is_keepalived(program);
    header.program = Some(program.to_owned());
    header.pid = pid;
    // `token` split at the one space after the tag: the message keeps its own indentation
    // (keepalived's continuation lines are indented).
    header.message = message.to_owned();
    header
}

/// `Keepalived`, `Keepalived_vrrp`, `Keepalived_healthcheckers`, `keepalived` (its stdout
/// under systemd).
fn is_keepalived(program: &str) -> bool {
    program
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("keepalived"))
}

/// One `journalctl -o json` object.
fn journal_json(line: &str) -> Option<Header> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    // The time the message was sent, as `journalctl -o short*` shows it; the journal's own
    // receive time only when the sender gave none.
    let micros: i64 = field("_SOURCE_REALTIME_TIMESTAMP")
        .or_else(|| field("__REALTIME_TIMESTAMP"))?
        .parse()
        .ok()?;
    let t = micros.checked_mul(1_000)?;
    let program = field("SYSLOG_IDENTIFIER");
    let pid = field("_PID")
        .or_else(|| field("SYSLOG_PID"))
        .and_then(|p| p.parse().ok());
    // The journal stores a message that is not UTF-8 as an array of bytes.
    let message = match value.get("MESSAGE") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(bytes)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => String::new(),
    };
    Some(Header {
        t,
        resolution_ns: 1_000,
        host: field("_HOSTNAME").map(str::to_owned),
        program: program.map(str::to_owned),
        pid,
        keepalived: program.is_some_and(is_keepalived),
        message,
    })
}

/// The instance a message names, and its event.
fn classify(message: &str) -> (Option<&str>, LogEvent) {
    let (instance, rest) = split_instance(message);
    (instance, event(rest))
}

/// `(VI_1) rest`, `(VI_1): rest` (2.x) or `VRRP_Instance(VI_1) rest` (1.x) → `VI_1`, `rest`.
fn split_instance(message: &str) -> (Option<&str>, &str) {
    let after_prefix = message.strip_prefix("VRRP_Instance").unwrap_or(message);
    let Some(inner) = after_prefix.strip_prefix('(') else {
        return (None, message);
    };
    let Some((name, rest)) = inner.split_once(')') else {
        return (None, message);
    };
    // keepalived's config splits on whitespace, so a name never holds any.
    if name.is_empty() || name.contains(char::is_whitespace) {
        return (None, message);
    }
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    (Some(name), rest.trim_start_matches(' '))
}

/// The event of a message without its instance prefix.
fn event(rest: &str) -> LogEvent {
    if let Some(after) = rest.strip_prefix("A thread timer expired ") {
        return match token(after) {
            Some((seconds, unit)) if unit.starts_with("second") => match seconds.parse::<f64>() {
                Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                    LogEvent::TimerExpiredLate { seconds }
                }
                _ => LogEvent::Other,
            },
            _ => LogEvent::Other,
        };
    }
    if rest.starts_with("Receive advertisement timeout") {
        return LogEvent::ReceiveTimeout;
    }
    // Same byte offsets as `rest`: ASCII lowercasing keeps every length.
    let lower = rest.to_ascii_lowercase();
    if let Some(state) = lower.strip_prefix("entering ") {
        return state_change(state, false);
    }
    if let Some(state) = lower.strip_prefix("transition to ") {
        return state_change(state, true);
    }
    // Only texts about a received advert: config dumps and warnings also say "lower
    // priority" (`Strict mode requires no lower priority advert`).
    let received = lower
        .strip_prefix("master ")
        .or_else(|| lower.strip_prefix("backup "))
        .unwrap_or(&lower);
    if received.starts_with("received ") {
        let from = advert_source(rest, &lower);
        let priority = advert_priority(rest, &lower);
        if lower.contains("lower prio") {
            return LogEvent::LowerPriority {
                from,
                priority,
                new_election: lower.contains("forcing new election"),
            };
        }
        if lower.contains("higher prio") {
            return LogEvent::HigherPriority { from, priority };
        }
    }
    LogEvent::Other
}

/// `MASTER STATE ...` after `Entering ` / `Transition to ` (lowercased).
fn state_change(lower: &str, transition: bool) -> LogEvent {
    let Some((state, after)) = token(lower) else {
        return LogEvent::Other;
    };
    if !after.starts_with("state") {
        return LogEvent::Other;
    }
    let state = match state {
        "master" => VrrpState::Master,
        "backup" => VrrpState::Backup,
        "fault" => VrrpState::Fault,
        _ => return LogEvent::Other,
    };
    LogEvent::StateChange { state, transition }
}

/// The address after ` from ` in an advert message.
fn advert_source(rest: &str, lower: &str) -> Option<IpAddr> {
    let at = lower.find(" from ")?;
    let (addr, _) = token(rest.get(at + " from ".len()..)?)?;
    addr.trim_end_matches([',', '.']).parse().ok()
}

/// The advert's priority: the number after `priority` (`priority 100,`, `priority (100)`).
fn advert_priority(rest: &str, lower: &str) -> Option<u8> {
    let at = lower.find("priority ")?;
    let (number, _) = token(rest.get(at + "priority ".len()..)?)?;
    number
        .trim_start_matches('(')
        .trim_end_matches([',', ')'])
        .parse()
        .ok()
}

/// A keepalived log given with `--keepalived-log`, opened before anything is analyzed.
#[derive(Debug)]
pub struct OpenLog {
    path: PathBuf,
    file: File,
}

/// Opens every log, so that a missing or unreadable one is an error (naming it) before
/// any input is read.
pub fn open(paths: &[PathBuf]) -> Result<Vec<OpenLog>, AnalyzeError> {
    paths
        .iter()
        .map(|path| {
            let file = File::open(path).map_err(|e| unreadable(path, &e))?;
            let meta = file.metadata().map_err(|e| unreadable(path, &e))?;
            if meta.is_dir() {
                let e = io::Error::new(io::ErrorKind::IsADirectory, "it is a directory");
                return Err(unreadable(path, &e));
            }
            Ok(OpenLog {
                path: path.clone(),
                file,
            })
        })
        .collect()
}

/// The error for a log that cannot be read, which says what to pass instead.
fn unreadable(path: &Path, e: &io::Error) -> AnalyzeError {
    AnalyzeError::KeepalivedLog {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// One log, read: the name its console lines are shown with and what was found.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// The file's name (`keepalived-vr1.log`).
    pub name: String,
    pub summary: LogSummary,
}

/// Reads every opened log once, streaming, keeping only the lines in some incident's
/// window; puts them next to those incidents ([`attach`]) and says what each log held in
/// [`Analysis::keepalived_logs`].
///
/// Lines without a year are dated near the recording (the first advert, else the first
/// bundle's start, else the log's mtime); lines without a UTC offset are taken to be
/// `utc_offset_secs` east of UTC.
pub fn add(
    analysis: &mut Analysis,
    logs: Vec<OpenLog>,
    utc_offset_secs: i32,
    window_ns: i64,
) -> Result<(), AnalyzeError> {
    let windows = merged(
        analysis
            .incidents
            .iter()
            .map(|i| window(i, window_ns))
            .collect(),
    );
    let mut paths = Vec::with_capacity(logs.len());
    let mut files = Vec::with_capacity(logs.len());
    for OpenLog { path, file } in logs {
        let ctx = DateContext {
            utc_offset_secs,
            ..DateContext::utc(reference(analysis, &file))
        };
        let summary = read_filtered(BufReader::new(file), &ctx, |l| in_any(&windows, l))
            .map_err(|e| unreadable(&path, &e))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        files.push(LogFile { name, summary });
        paths.push(path);
    }
    let attached = attach(&mut analysis.incidents, &files, window_ns);
    analysis.keepalived_logs = paths
        .iter()
        .zip(&files)
        .zip(attached)
        .map(|((path, f), attached)| LogFileSummary {
            path: path.display().to_string(),
            lines: f.summary.read,
            keepalived: f.summary.keepalived,
            undated: f.summary.undated,
            foreign: f.summary.foreign,
            truncated: f.summary.truncated,
            attached,
            first: f.summary.first.map(Timestamp),
            last: f.summary.last.map(Timestamp),
        })
        .collect();
    Ok(())
}

/// Gives every incident the keepalived lines of `logs` that fall in its window (see
/// [`window`]), in time order: a line's whole second (its resolution) need only overlap
/// the window. Returns, per log, how many of its lines went to some incident.
pub fn attach(incidents: &mut [Incident], logs: &[LogFile], window_ns: i64) -> Vec<u64> {
    let mut attached = vec![0; logs.len()];
    let mut used: Vec<Vec<bool>> = logs
        .iter()
        .map(|l| vec![false; l.summary.lines.len()])
        .collect();
    for inc in incidents.iter_mut() {
        let w = window(inc, window_ns);
        let mut entries: Vec<LogEntry> = Vec::new();
        for (log, used) in logs.iter().zip(used.iter_mut()) {
            for (line, used) in log.summary.lines.iter().zip(used.iter_mut()) {
                if overlaps(line, w) {
                    *used = true;
                    entries.push(entry(line, &log.name));
                }
            }
        }
        // Stable: lines of one second keep their file order, the files theirs.
        entries.sort_by_key(|e| e.t);
        inc.keepalived_log = entries;
    }
    for (n, used) in attached.iter_mut().zip(&used) {
        *n = used.iter().filter(|&&u| u).count() as u64;
    }
    attached
}

/// An incident's evidence window (ns, both ends included), as its `context` has it: from
/// `window_ns` before it (a takeover or split-brain: before the master-down interval that
/// preceded it) to one interval after it.
pub fn window(inc: &Incident, window_ns: i64) -> (i64, i64) {
    if let Some(c) = &inc.context {
        return (c.window_start.0, c.window_end.0);
    }
    /// RFC 3768's master-down interval at advert_int 1 and priority 100, when the
    /// incident does not say its own.
    const DEFAULT_MASTER_DOWN_NS: i64 = 3_609_375_000;
    let before = match inc.kind {
        IncidentKind::Silence | IncidentKind::Open => 0,
        IncidentKind::Takeover | IncidentKind::SplitBrain => inc
            .critical_after_ms
            .map_or(DEFAULT_MASTER_DOWN_NS, |m| (m * 1e6) as i64),
    };
    (
        inc.start
            .0
            .saturating_sub(before.max(0))
            .saturating_sub(window_ns.max(0)),
        inc.end.0.saturating_add((inc.interval_ms * 1e6) as i64),
    )
}

/// The line was written within `[t, t + resolution)`: does that overlap the window?
fn overlaps(line: &LogLine, (start, end): (i64, i64)) -> bool {
    line.t <= end && line.t.saturating_add(line.resolution_ns.max(1)) > start
}

/// Windows sorted by start with the overlapping ones merged.
fn merged(mut windows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    windows.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The line overlaps one of the merged `windows`.
fn in_any(windows: &[(i64, i64)], line: &LogLine) -> bool {
    // The first window that does not end before the line starts.
    let i = windows.partition_point(|&(_, end)| end < line.t);
    windows.get(i).is_some_and(|&w| overlaps(line, w))
}

/// The line as the analysis shows it: its origin (syslog host and tag, or for keepalived's
/// console log, which says neither, the file's name), then keepalived's message.
fn entry(line: &LogLine, file: &str) -> LogEntry {
    let mut origin: Vec<String> = Vec::new();
    origin.extend(line.host.clone());
    match (&line.program, line.pid) {
        (Some(program), Some(pid)) => origin.push(format!("{program}[{pid}]")),
        (Some(program), None) => origin.push(program.clone()),
        (None, Some(pid)) => origin.push(format!("[{pid}]")),
        (None, None) => {}
    }
    if origin.is_empty() {
        origin.push(file.to_owned());
    }
    LogEntry {
        t: Timestamp(line.t),
        resolution_ns: line.resolution_ns,
        instance: line.instance.clone(),
        event: event_name(&line.event).to_owned(),
        text: format!("{}: {}", origin.join(" "), line.text),
    }
}

/// The `event` of a [`LogEntry`].
fn event_name(event: &LogEvent) -> &'static str {
    match event {
        LogEvent::TimerExpiredLate { .. } => "timer-late",
        LogEvent::ReceiveTimeout => "receive-timeout",
        LogEvent::StateChange { .. } => "state",
        LogEvent::LowerPriority { .. } => "lower-priority",
        LogEvent::HigherPriority { .. } => "higher-priority",
        LogEvent::Other => "other",
    }
}

/// A time near the log's lines, for the year of yearless lines: the recording's first
/// advert, else its first bundle's start, else the log's mtime.
fn reference(a: &Analysis, file: &File) -> i64 {
    let mtime = || {
        let modified = file.metadata().ok()?.modified().ok()?;
        let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since.as_nanos()).ok()
    };
    a.streams
        .iter()
        .map(|s| s.first.0)
        .min()
        .or_else(|| a.bundles.iter().map(|b| b.started.0).min())
        .or_else(mtime)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T20:53:37Z, the second of the fixtures' SIGCONT.
    const REF: i64 = 1_796_072_017 * NS_PER_SEC;

    fn ctx() -> DateContext {
        DateContext::utc(REF)
    }

    fn line(text: &str) -> LogLine {
        match parse_line(text, &ctx()) {
            Parsed::Keepalived(l) => l,
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    fn ns(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .ok()
            .and_then(|d| d.timestamp_nanos_opt())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn classic_syslog_line() {
        let l = line("Nov 30 20:53:37 vm Keepalived_vrrp[23051]: A thread timer expired 3.574975 seconds ago");
        assert_eq!(l.t, ns("2026-11-30T20:53:37Z"));
        assert_eq!(l.resolution_ns, NS_PER_SEC);
        assert_eq!(l.host.as_deref(), Some("vm"));
        assert_eq!(l.program.as_deref(), Some("Keepalived_vrrp"));
        assert_eq!(l.pid, Some(23051));
        assert_eq!(l.instance, None);
        assert_eq!(l.event, LogEvent::TimerExpiredLate { seconds: 3.574975 });
        assert_eq!(l.text, "A thread timer expired 3.574975 seconds ago");
    }

    #[test]
    fn classic_syslog_single_digit_day_and_precise() {
        let l = line("Dec  3 07:08:09.072910 vm Keepalived_vrrp[1]: (VI_1) Entering MASTER STATE");
        assert_eq!(l.t, ns("2026-12-03T07:08:09.072910Z"));
        assert_eq!(l.resolution_ns, 1_000);
        assert_eq!(l.instance.as_deref(), Some("VI_1"));
    }

    #[test]
    fn classic_syslog_year_wraps_both_ways() {
        let jan = DateContext::utc(ns("2027-01-01T00:00:30Z"));
        let Parsed::Keepalived(l) = parse_line(
            "Dec 31 23:59:59 vm Keepalived_vrrp[1]: (VI_1) Entering BACKUP STATE",
            &jan,
        ) else {
            panic!("not parsed");
        };
        assert_eq!(l.t, ns("2026-12-31T23:59:59Z"));

        let dec = DateContext::utc(ns("2026-12-31T23:59:50Z"));
        let Parsed::Keepalived(l) = parse_line(
            "Jan  1 00:00:05 vm Keepalived_vrrp[1]: (VI_1) Entering BACKUP STATE",
            &dec,
        ) else {
            panic!("not parsed");
        };
        assert_eq!(l.t, ns("2027-01-01T00:00:05Z"));
    }

    #[test]
    fn local_offset_applies_to_lines_without_one() {
        let cet = DateContext {
            reference: REF,
            utc_offset_secs: 3600,
        };
        let Parsed::Keepalived(l) = parse_line(
            "Nov 30 21:49:21 vm Keepalived_vrrp[1]: (VI_1) Entering FAULT STATE",
            &cet,
        ) else {
            panic!("not parsed");
        };
        assert_eq!(l.t, ns("2026-11-30T20:49:21Z"));
        let Parsed::Keepalived(l) = parse_line("Mon Nov 30 21:49:21 2026: Stopping", &cet) else {
            panic!("not parsed");
        };
        assert_eq!(l.t, ns("2026-11-30T20:49:21Z"));
        // An offset in the line wins.
        let Parsed::Keepalived(l) = parse_line(
            "2026-11-30T21:49:21+01:00 vm Keepalived_vrrp[1]: (VI_1) Entering FAULT STATE",
            &cet,
        ) else {
            panic!("not parsed");
        };
        assert_eq!(l.t, ns("2026-11-30T20:49:21Z"));
    }

    #[test]
    fn rfc3339_syslog_line() {
        let l = line("2026-11-30T20:53:37.670250+00:00 vm Keepalived_vrrp[23051]: (VI_77) Received advert from 10.77.0.2 with lower priority 100, ours 150, forcing new election");
        assert_eq!(l.t, ns("2026-11-30T20:53:37.670250Z"));
        assert_eq!(l.resolution_ns, 1_000);
        assert_eq!(l.instance.as_deref(), Some("VI_77"));
        assert_eq!(
            l.event,
            LogEvent::LowerPriority {
                from: "10.77.0.2".parse().ok(),
                priority: Some(100),
                new_election: true,
            }
        );
    }

    #[test]
    fn journal_short_iso_forms() {
        let l = line("2026-11-30T20:53:25+0000 vm Keepalived_vrrp[22596]: (VI_77) Receive advertisement timeout");
        assert_eq!(l.t, ns("2026-11-30T20:53:25Z"));
        assert_eq!(l.resolution_ns, NS_PER_SEC);
        assert_eq!(l.event, LogEvent::ReceiveTimeout);
        let l = line("2026-11-30T20:53:25.280250+0000 vm Keepalived_vrrp[22596]: (VI_77) Receive advertisement timeout");
        assert_eq!(l.t, ns("2026-11-30T20:53:25.280250Z"));
        assert_eq!(l.resolution_ns, 1_000);
        let l = line("2026-11-30T20:53:25.280250-0130 vm Keepalived_vrrp[22596]: (VI_77) Receive advertisement timeout");
        assert_eq!(l.t, ns("2026-11-30T22:23:25.280250Z"));
        assert_eq!(l.resolution_ns, 1_000);
        let l = line("2026-11-30T20:49:08.5Z vm Keepalived[7]: Stopping");
        assert_eq!(l.t, ns("2026-11-30T20:49:08.5Z"));
        assert_eq!(l.resolution_ns, 100_000_000);
    }

    #[test]
    fn console_line() {
        let l = line("Mon Nov 30 20:53:31 2026: (VI_77) Entering MASTER STATE");
        assert_eq!(l.t, ns("2026-11-30T20:53:31Z"));
        assert_eq!(l.resolution_ns, NS_PER_SEC);
        assert_eq!((l.host, l.program, l.pid), (None, None, None));
        assert_eq!(
            l.event,
            LogEvent::StateChange {
                state: VrrpState::Master,
                transition: false
            }
        );
        // Single-digit days are space-padded by %c; continuation lines keep their indent.
        let l = line("Thu Dec  3 01:02:03 2026:               'run4/c.pid'");
        assert_eq!(l.t, ns("2026-12-03T01:02:03Z"));
        assert_eq!(l.text, "              'run4/c.pid'");
        assert_eq!(l.event, LogEvent::Other);
    }

    #[test]
    fn journal_json_line() {
        let l = line(
            r#"{"__REALTIME_TIMESTAMP":"1796072017669223","_SOURCE_REALTIME_TIMESTAMP":"1796072017669177","_PID":"23051","SYSLOG_IDENTIFIER":"Keepalived_vrrp","_HOSTNAME":"vm","MESSAGE":"A thread timer expired 3.574975 seconds ago"}"#,
        );
        // The sender's time, as journalctl shows it, not the journal's receive time.
        assert_eq!(l.t, 1_796_072_017_669_177_000);
        assert_eq!(l.pid, Some(23051));
        assert_eq!(l.host.as_deref(), Some("vm"));
        assert!(matches!(l.event, LogEvent::TimerExpiredLate { .. }));
        // Non-UTF-8 messages come as byte arrays.
        let l = line(
            r#"{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"Keepalived_vrrp","MESSAGE":[40,86,73,41,32,255]}"#,
        );
        assert_eq!(l.text, "(VI) \u{fffd}");
        assert_eq!(l.instance.as_deref(), Some("VI"));
    }

    #[test]
    fn states_with_both_prefixes() {
        for (text, instance, state, transition) in [
            (
                "(VI_1) Entering MASTER STATE",
                "VI_1",
                VrrpState::Master,
                false,
            ),
            (
                "(VI_1) Entering BACKUP STATE (init)",
                "VI_1",
                VrrpState::Backup,
                false,
            ),
            (
                "(VI_1) Entering FAULT STATE",
                "VI_1",
                VrrpState::Fault,
                false,
            ),
            (
                "(VI_1): entering FAULT state (src address not configured)",
                "VI_1",
                VrrpState::Fault,
                false,
            ),
            (
                "VRRP_Instance(VI_1) Entering MASTER STATE",
                "VI_1",
                VrrpState::Master,
                false,
            ),
            (
                "VRRP_Instance(VI_1) Entering BACKUP STATE",
                "VI_1",
                VrrpState::Backup,
                false,
            ),
            (
                "VRRP_Instance(VI_1) Entering FAULT STATE",
                "VI_1",
                VrrpState::Fault,
                false,
            ),
            (
                "VRRP_Instance(VI_1) Transition to MASTER STATE",
                "VI_1",
                VrrpState::Master,
                true,
            ),
        ] {
            let l = line(&format!("Mon Nov 30 20:49:14 2026: {text}"));
            assert_eq!(l.instance.as_deref(), Some(instance), "{text}");
            assert_eq!(
                l.event,
                LogEvent::StateChange { state, transition },
                "{text}"
            );
        }
        let l =
            line("Mon Nov 30 20:49:14 2026: VRRP_Instance(VI_1) Transition to DUMMY_MASTER STATE");
        assert_eq!(l.event, LogEvent::Other);
    }

    #[test]
    fn timeouts_and_timers_with_both_prefixes() {
        for text in [
            "(VI_1) Receive advertisement timeout",
            "VRRP_Instance(VI_1) Receive advertisement timeout",
        ] {
            let l = line(&format!("Nov 30 20:49:14 h Keepalived_vrrp[9]: {text}"));
            assert_eq!(l.instance.as_deref(), Some("VI_1"));
            assert_eq!(l.event, LogEvent::ReceiveTimeout);
        }
        for (text, seconds) in [
            ("A thread timer expired 1.2 seconds ago", 1.2),
            ("A thread timer expired 3 seconds ago", 3.0),
            ("A thread timer expired 0.000001 seconds ago", 0.000001),
        ] {
            assert_eq!(
                line(&format!("Nov 30 20:49:14 h Keepalived_vrrp[9]: {text}")).event,
                LogEvent::TimerExpiredLate { seconds }
            );
        }
        for text in [
            "A thread timer expired NaN seconds ago",
            "A thread timer expired -1 seconds ago",
            "A thread timer expired 3.5",
        ] {
            assert_eq!(
                line(&format!("Nov 30 20:49:14 h Keepalived_vrrp[9]: {text}")).event,
                LogEvent::Other
            );
        }
    }

    #[test]
    fn priorities_with_both_prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        for (text, expected) in [
            (
                "(VI_1) Master received advert from 10.0.0.2 with lower priority 100, ours 150, forcing new election",
                LogEvent::LowerPriority { from: ip("10.0.0.2"), priority: Some(100), new_election: true },
            ),
            (
                "(VI_1) Received advert from fe80::1 with lower priority 100, ours 150, forcing new election",
                LogEvent::LowerPriority { from: ip("fe80::1"), priority: Some(100), new_election: true },
            ),
            (
                "(VI_1) received lower priority (100) advert from 10.0.0.2 - discarding",
                LogEvent::LowerPriority { from: ip("10.0.0.2"), priority: Some(100), new_election: false },
            ),
            (
                "VRRP_Instance(VI_1) Received advert with lower priority 100, ours 150, forcing new election",
                LogEvent::LowerPriority { from: None, priority: Some(100), new_election: true },
            ),
            (
                "VRRP_Instance(VI_1) Received lower prio advert, forcing new election",
                LogEvent::LowerPriority { from: None, priority: None, new_election: true },
            ),
            (
                "(VI_1) Master received advert from 10.0.0.1 with higher priority 150, ours 100",
                LogEvent::HigherPriority { from: ip("10.0.0.1"), priority: Some(150) },
            ),
            (
                "VRRP_Instance(VI_1) Received advert with higher priority 150, ours 100",
                LogEvent::HigherPriority { from: None, priority: Some(150) },
            ),
            ("(VI_1) Strict mode requires no lower priority advert. resetting", LogEvent::Other),
            ("(VI_1) Backup received priority 0 advertisement", LogEvent::Other),
        ] {
            let l = line(&format!("Nov 30 20:49:14 h Keepalived_vrrp[9]: {text}"));
            assert_eq!(l.instance.as_deref(), Some("VI_1"), "{text}");
            assert_eq!(l.event, expected, "{text}");
        }
    }

    #[test]
    fn other_programs_and_undatable_lines() {
        assert_eq!(
            parse_line(
                "Nov 30 20:49:03 vm rsyslogd: [origin software=\"rsyslogd\"] start",
                &ctx()
            ),
            Parsed::Foreign
        );
        assert_eq!(
            parse_line("2026-11-30T20:49:05+0000 vm systemd-journald[10280]: Forwarding to syslog missed 1 messages.", &ctx()),
            Parsed::Foreign
        );
        assert_eq!(
            parse_line("Nov 30 20:49:03 vm last message repeated 2 times", &ctx()),
            Parsed::Foreign
        );
        for text in [
            "",
            "mount: /tmp: permission denied.",
            "Foo 30 20:49:03 vm Keepalived[1]: x",
            "Nov 31 20:49:03 vm Keepalived[1]: no such day",
            "Mon Nov 30 25:49:14 2026: bad hour",
            "2026-13-30T20:49:05+0000 vm Keepalived[1]: bad month",
            "{\"MESSAGE\":\"no time\"}",
            "{not json",
            "Nov",
        ] {
            assert_eq!(parse_line(text, &ctx()), Parsed::Undated, "{text:?}");
        }
    }

    #[test]
    fn read_counts_what_it_skips_and_survives_bad_bytes() {
        let mut input: Vec<u8> = Vec::new();
        input.extend_from_slice(
            b"Nov 30 20:49:14 h Keepalived_vrrp[9]: (VI_\xff1) Entering MASTER STATE\r\n",
        );
        input.extend_from_slice(b"\n   \n");
        input.extend_from_slice(b"garbage\n");
        input.extend_from_slice(b"Nov 30 20:49:14 h sshd[2]: Accepted\n");
        input.extend_from_slice(b"Nov 30 20:49:15 h Keepalived_vrrp[9]: ");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2));
        input.extend_from_slice(b"\nMon Nov 30 20:49:16 2026: Stopping");
        let s = read_from(&input[..], &ctx()).unwrap_or_default();
        assert_eq!((s.undated, s.foreign, s.truncated), (1, 1, 1));
        assert_eq!(s.lines.len(), 3);
        assert_eq!(s.lines[0].instance.as_deref(), Some("VI_\u{fffd}1"));
        assert!(matches!(s.lines[0].event, LogEvent::StateChange { .. }));
        assert_eq!(s.lines[0].text, "(VI_\u{fffd}1) Entering MASTER STATE");
        assert_eq!(s.lines[2].text, "Stopping");
    }

    #[test]
    fn a_line_of_exactly_max_line_bytes_is_whole() {
        let mut input = b"Mon Nov 30 20:49:16 2026: ".to_vec();
        input.resize(MAX_LINE, b'y');
        input.extend_from_slice(b"\nMon Nov 30 20:49:17 2026: Stopping\n");
        let s = read_from(&input[..], &ctx()).unwrap_or_default();
        assert_eq!((s.lines.len(), s.truncated, s.undated), (2, 0, 0));
        assert_eq!(s.lines[1].text, "Stopping");
    }

    proptest::proptest! {
        /// Whatever the text, the reference or the offset: an answer, never a panic.
        #[test]
        fn never_panics(
            prefix in proptest::sample::select(vec![
                "",
                "Nov 30 20:49:21 vm Keepalived_vrrp[10643]: ",
                "Feb 29 20:49:21.1 vm Keepalived_vrrp[x]: VRRP_Instance(",
                "2026-11-30T20:49:21.073181+00:00 vm Keepalived[",
                "Mon Nov 30 20:49:21 2026: (VI_1) ",
                "{\"__REALTIME_TIMESTAMP\":\"9223372036854775807\",\"MESSAGE\":",
            ]),
            message in proptest::sample::select(vec![
                "",
                "A thread timer expired ",
                "Received advert from ",
                "received lower priority (",
                "Master received advert with higher priority 999, ours",
                "Entering ",
                "Transition to MASTER",
            ]),
            tail in "\\PC{0,40}",
            reference in proptest::num::i64::ANY,
            utc_offset_secs in proptest::num::i32::ANY,
        ) {
            let ctx = DateContext { reference, utc_offset_secs };
            let _ = parse_line(&format!("{prefix}{message}{tail}"), &ctx);
        }
    }

    #[test]
    fn read_reports_a_missing_file() {
        assert!(read(Path::new("/nonexistent/keepalived.log"), &ctx()).is_err());
    }

    /// The fixtures: one real two-router run of keepalived 2.2.7, written by keepalived's
    /// console log, by the journal in five forms and by rsyslog in two (see the README).
    mod fixtures {
        use super::*;

        fn fixture(name: &str) -> LogSummary {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/keepalived-logs")
                .join(name);
            match read(&path, &ctx()) {
                Ok(s) => s,
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }

        /// The events of the lines of `pid` (every line when `None`: a console log holds
        /// one router's lines only, without pids).
        fn events(s: &LogSummary, pid: Option<i32>) -> Vec<(i64, LogEvent)> {
            s.lines
                .iter()
                .filter(|l| pid.is_none_or(|p| l.pid == Some(p)))
                .filter(|l| l.event != LogEvent::Other)
                .map(|l| (l.t, l.event.clone()))
                .collect()
        }

        /// The VRRP process of vr1, the router that was stopped.
        const VR1_VRRP_PID: i32 = 23051;
        const SIGCONT_SECOND: &str = "2026-11-30T20:53:37Z";

        fn kinds(events: &[(i64, LogEvent)]) -> Vec<&'static str> {
            events
                .iter()
                .map(|(_, e)| match e {
                    LogEvent::TimerExpiredLate { .. } => "late",
                    LogEvent::ReceiveTimeout => "timeout",
                    LogEvent::StateChange {
                        state: VrrpState::Master,
                        ..
                    } => "master",
                    LogEvent::StateChange {
                        state: VrrpState::Backup,
                        ..
                    } => "backup",
                    LogEvent::StateChange {
                        state: VrrpState::Fault,
                        ..
                    } => "fault",
                    LogEvent::LowerPriority {
                        new_election: true, ..
                    } => "lower-elect",
                    LogEvent::LowerPriority { .. } => "lower-discard",
                    LogEvent::HigherPriority { .. } => "higher",
                    LogEvent::Other => "other",
                })
                .collect()
        }

        #[test]
        fn console_log_of_the_stopped_router() {
            let s = fixture("console-vr1.log");
            assert_eq!((s.undated, s.foreign, s.truncated), (0, 0, 0));
            assert_eq!(s.lines.len(), 73);
            let events = events(&s, None);
            assert_eq!(
                kinds(&events),
                [
                    "backup",
                    "lower-discard",
                    "lower-discard",
                    "lower-discard",
                    "timeout",
                    "master",
                    "late",
                    "lower-elect",
                    "fault",
                    "backup",
                    "timeout",
                    "master"
                ]
            );
            let late = events
                .iter()
                .find(|(_, e)| matches!(e, LogEvent::TimerExpiredLate { .. }));
            assert_eq!(
                late,
                Some(&(
                    ns(SIGCONT_SECOND),
                    LogEvent::TimerExpiredLate { seconds: 3.574975 }
                ))
            );
        }

        #[test]
        fn every_form_of_the_run_tells_the_same_story() {
            let console = events(&fixture("console-vr1.log"), None);
            for name in [
                "journal-short.log",
                "journal-short-iso.log",
                "journal-short-precise.log",
                "journal-short-iso-precise.log",
                "journal.json",
                "syslog-traditional.log",
                "syslog-rfc3339.log",
            ] {
                let s = fixture(name);
                assert_eq!(s.undated, 0, "{name}");
                assert!(s.foreign >= 1, "{name}: journald's or rsyslog's own lines");
                let got = events(&s, Some(VR1_VRRP_PID));
                assert_eq!(kinds(&got), kinds(&console), "{name}");
                // The console's second, or the next one: the journal and rsyslog stamp
                // the line when they receive it.
                for ((t, e), (tc, ec)) in got.iter().zip(&console) {
                    assert_eq!(e, ec, "{name}");
                    assert!(
                        (0..2 * NS_PER_SEC).contains(&(t - tc)),
                        "{name}: {t} vs {tc}"
                    );
                }
            }
        }

        #[test]
        fn journal_json_has_the_times_journalctl_shows() {
            let json = events(&fixture("journal.json"), Some(VR1_VRRP_PID));
            let short = events(
                &fixture("journal-short-iso-precise.log"),
                Some(VR1_VRRP_PID),
            );
            assert_eq!(json, short);
            assert!(json
                .iter()
                .any(|(t, e)| *t == ns("2026-11-30T20:53:37.669177Z")
                    && *e == LogEvent::TimerExpiredLate { seconds: 3.574975 }));
        }

        #[test]
        fn the_other_router_saw_the_preemption() {
            let s = fixture("console-vr2.log");
            assert_eq!((s.undated, s.foreign), (0, 0));
            assert_eq!(
                kinds(&events(&s, None)),
                [
                    "backup", "timeout", "master", "higher", "backup", "timeout", "master",
                    "higher", "backup", "fault", "backup"
                ]
            );
        }
    }
}
