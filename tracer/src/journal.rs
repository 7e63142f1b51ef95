//! keepalived's own words from the systemd journal: at stop, its lines over the
//! recording are copied into the bundle (`docs/bundle-format.md`,
//! `keepalived-journal.json`), so that the analysis of a bundle has them wherever it
//! runs, as a `--keepalived-log` would give them.
//!
//! `journalctl` is run directly, never through a shell, with the recording's span and
//! fixed matches; nothing of it comes from the bundle or the command line.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use vmlat_bundle::{create_bundle_file, JournalCopy, KEEPALIVED_JOURNAL_FILE};

/// At most this many lines are copied: keepalived logs a few lines per state change,
/// so more means a log storm, whose start is what matters.
pub const MAX_ENTRIES: u64 = 100_000;

/// A running journald listens here.
const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
/// Where journal files are kept: persistent, and volatile (journald's `Storage=`).
const JOURNAL_DIRS: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// keepalived's processes: by their command name (a daemon logging to its stdout under
/// systemd) or by the syslog identifiers it logs with (1.x and 2.x).
const MATCHES: [&str; 7] = [
    "_COMM=keepalived",
    "+",
    "SYSLOG_IDENTIFIER=Keepalived",
    "+",
    "SYSLOG_IDENTIFIER=Keepalived_vrrp",
    "+",
    "SYSLOG_IDENTIFIER=Keepalived_healthcheckers",
];

/// Copies keepalived's journal lines from `started_realtime_ns` to `stopped_realtime_ns`
/// into `dir`. Never fails the recording: what happened is the returned value, which
/// goes into the manifest.
pub fn copy_keepalived_journal(
    dir: &Path,
    started_realtime_ns: i64,
    stopped_realtime_ns: i64,
) -> JournalCopy {
    if !has_journal() {
        return JournalCopy::NoJournal {
            reason: format!(
                "no journald ({JOURNALD_SOCKET} absent) and no journal files in {}",
                JOURNAL_DIRS.join(" or ")
            ),
        };
    }
    if !crate::privileges::can_read_system_journal() {
        return JournalCopy::Failed {
            error: "this user (after --user) cannot read the system journal: add it to the group systemd-journal, or record without --user".into(),
        };
    }
    // Whole seconds around the span: journalctl takes `@SECONDS`.
    let since = started_realtime_ns.div_euclid(1_000_000_000);
    let until = stopped_realtime_ns.div_euclid(1_000_000_000) + 1;
    let child = Command::new("journalctl")
        .args(["--no-pager", "--quiet", "-o", "json"])
        .arg(format!("--since=@{since}"))
        .arg(format!("--until=@{until}"))
        .args(MATCHES)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return JournalCopy::NoJournal {
                reason: "journalctl is not installed (Debian: apt-get install systemd)".into(),
            }
        }
        Err(e) => {
            return JournalCopy::Failed {
                error: format!("journalctl could not be started: {e}"),
            }
        }
    };
    let copied = child
        .stdout
        .take()
        .map(|out| copy_lines(BufReader::new(out), &dir.join(KEEPALIVED_JOURNAL_FILE)));
    if matches!(copied, Some(Ok((_, true)))) {
        // The rest is not wanted; journalctl would block on a full pipe.
        let _ = child.kill();
    }
    let status = child.wait_with_output();
    match (copied, status) {
        (Some(Ok((entries, truncated))), Ok(out)) if out.status.success() || truncated => {
            JournalCopy::Copied { entries, truncated }
        }
        (Some(Ok(_)), Ok(out)) => JournalCopy::Failed {
            error: format!(
                "journalctl {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        (Some(Err(e)), _) => JournalCopy::Failed {
            error: format!("writing {KEEPALIVED_JOURNAL_FILE}: {e}"),
        },
        (None, _) => JournalCopy::Failed {
            error: "journalctl gave no output pipe".into(),
        },
        (_, Err(e)) => JournalCopy::Failed {
            error: format!("waiting for journalctl: {e}"),
        },
    }
}

/// A journald runs, or left journal files behind (an empty /var/log/journal is what
/// Debian ships without one).
fn has_journal() -> bool {
    Path::new(JOURNALD_SOCKET).exists()
        || JOURNAL_DIRS
            .iter()
            .any(|d| std::fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some()))
}

/// Copies up to [`MAX_ENTRIES`] lines into `path`: (lines, whether more were left).
fn copy_lines(input: impl BufRead, path: &Path) -> std::io::Result<(u64, bool)> {
    let mut out = BufWriter::new(create_bundle_file(path)?);
    let mut entries = 0;
    for line in input.split(b'\n') {
        if entries == MAX_ENTRIES {
            out.flush()?;
            return Ok((entries, true));
        }
        out.write_all(&line?)?;
        out.write_all(b"\n")?;
        entries += 1;
    }
    out.flush()?;
    Ok((entries, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_lines_is_cut_at_the_cap_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let many = "{}\n".repeat(MAX_ENTRIES as usize + 5);
        assert_eq!(
            copy_lines(many.as_bytes(), &dir.path().join("many.json")).unwrap(),
            (MAX_ENTRIES, true)
        );
        let path = dir.path().join("few.json");
        let few = "{\"MESSAGE\":\"a\"}\n{\"MESSAGE\":\"b\"}\n";
        assert_eq!(copy_lines(few.as_bytes(), &path).unwrap(), (2, false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), few);
    }
}
