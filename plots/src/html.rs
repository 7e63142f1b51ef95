//! The incident report: one self-contained HTML page (inline CSS and SVG charts, no
//! script, no network fetch) that opens offline and can be mailed as one file. It holds
//! the summary (inputs, hosts, duration, losses), the timeline, the streams, the
//! failovers and split-brains, every gap with its verdict, evidence and close-up, and
//! the interval and disk charts.

use std::fmt::Write as _;

use vmlat_analyzer::{Analysis, Incident, Timestamp};

use crate::axis::duration;
use crate::canvas::svg;
use crate::closeup::Closeup;
use crate::disks::Disks;
use crate::intervals::Intervals;
use crate::style::{hex, verdict_color};
use crate::timeline::Timeline;
use crate::PlotError;

const STYLE: &str = "
body { font-family: sans-serif; margin: 2em auto; max-width: 1440px; padding: 0 1em; color: #212121; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .1em .5em; border-radius: .3em; color: #fff; font-weight: bold; }
.critical { color: #c62828; font-weight: bold; }
.warn { color: #c62828; }
ul.evidence { margin: .3em 0 .8em; }
figure { margin: .5em 0 1.5em; }
svg { max-width: 100%; height: auto; }
.muted { color: #666; }
";

/// The report as one HTML document.
pub fn render(analysis: &Analysis) -> Result<String, PlotError> {
    let a = analysis;
    let mut h = String::with_capacity(1 << 20);
    let critical = a.incidents.iter().filter(|i| i.critical).count();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>vmlat report: {} incidents ({critical} critical)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        a.incidents.len(),
    );
    let _ = write!(
        h,
        "<h1>vmlat report</h1>\n<p>{} streams, \
         <strong>{} incidents</strong> (<span class=\"critical\">{critical} critical</span>). \
         Times are UTC.</p>\n",
        a.streams.len(),
        a.incidents.len()
    );
    summary(&mut h, a);
    let _ = writeln!(h, "<h2 id=\"timeline\">Timeline</h2>\n<figure>");
    h.push_str(&svg(&Timeline::new(a))?);
    let _ = writeln!(h, "</figure>");
    streams(&mut h, a);
    let _ = writeln!(h, "<h2 id=\"incidents\">Incidents</h2>");
    if a.incidents.is_empty() {
        let _ = writeln!(
            h,
            "<p>No incidents: every stream kept its interval and its master.</p>"
        );
    }
    for inc in &a.incidents {
        if let Some(closeup) = Closeup::new(a, inc.id) {
            incident_section(&mut h, inc);
            h.push_str("<figure>\n");
            h.push_str(&svg(&closeup)?);
            h.push_str("</figure>\n</article>\n");
        }
    }
    let _ = writeln!(
        h,
        "<h2 id=\"intervals\">Inter-advert intervals</h2>\n<figure>"
    );
    h.push_str(&svg(&Intervals::new(a))?);
    let _ = writeln!(h, "</figure>");
    if let Some(disks) = Disks::new(a) {
        let _ = writeln!(h, "<h2 id=\"disks\">Disk latency</h2>\n<figure>");
        h.push_str(&svg(&disks)?);
        let _ = writeln!(h, "</figure>");
    }
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by vmlat {}. The analysis behind this page is \
         <code>vmlat analyze --json</code> of the same inputs.</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table: a header row, then rows of already-escaped cells (`n:` marks a number).
fn table(h: &mut String, head: &[&str], rows: &[Vec<String>]) {
    h.push_str("<table>\n<tr>");
    for c in head {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            match cell.strip_prefix("n:") {
                Some(n) => {
                    let _ = write!(h, "<td class=\"n\">{n}</td>");
                }
                None => {
                    let _ = write!(h, "<td>{cell}</td>");
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn num(v: impl std::fmt::Display) -> String {
    format!("n:{v}")
}

fn summary(h: &mut String, a: &Analysis) {
    let _ = writeln!(h, "<h2 id=\"summary\">Summary</h2>");
    let first = a.streams.iter().map(|s| s.first).min();
    let last = a.streams.iter().map(|s| s.last).max();
    if let (Some(first), Some(last)) = (first, last) {
        let _ = writeln!(
            h,
            "<p>Heartbeats from <strong>{}</strong> to <strong>{}</strong> UTC ({}).</p>",
            first.date_time(),
            last.time_of_day(),
            duration((last.0 - first.0) as f64 / 1e6)
        );
    } else {
        let _ = writeln!(h, "<p>No heartbeat was found in the inputs.</p>");
    }
    let _ = writeln!(h, "<h3>Inputs</h3>");
    let rows: Vec<Vec<String>> = a
        .inputs
        .iter()
        .map(|i| {
            let mut notes = Vec::new();
            if i.late > 0 {
                notes.push(format!("{} too far out of order", i.late));
            }
            if let Some(r) = &i.stop_reason {
                notes.push(format!("stopped early: {r}"));
            }
            for (reason, n) in &i.malformed_reasons {
                notes.push(format!("{n} × {reason}"));
            }
            vec![
                esc(&i.file),
                esc(&i.format),
                esc(&i.captures.join(", ")),
                num(i.packets),
                num(i.heartbeats),
                num(i.malformed),
                esc(&notes.join("; ")),
            ]
        })
        .collect();
    table(
        h,
        &[
            "capture file",
            "format",
            "capture points",
            "packets",
            "heartbeats",
            "malformed",
            "notes",
        ],
        &rows,
    );
    if a.bundles.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"muted\">No bundle: packets only, so no host, scheduler or disk data.</p>"
        );
        return;
    }
    let _ = writeln!(h, "<h3>Hosts and losses</h3>");
    let rows: Vec<Vec<String>> = a
        .bundles
        .iter()
        .map(|b| {
            let l = &b.losses;
            let lost = l.pcap_dropped
                + l.pcap_if_dropped
                + l.perf_lost
                + l.queue_dropped
                + l.sampler_overruns
                + l.decode_errors;
            let losses = format!(
                "pcap {} (+{} by the interface), perf {}, queue {}, sampler overruns {}, undecodable {}, late {}",
                l.pcap_dropped,
                l.pcap_if_dropped,
                l.perf_lost,
                l.queue_dropped,
                l.sampler_overruns,
                l.decode_errors,
                l.late_records
            );
            let losses = if lost > 0 {
                format!("<span class=\"warn\">{}</span>", esc(&losses))
            } else {
                esc(&losses)
            };
            vec![
                esc(&b.host),
                esc(&b.role.to_string()),
                esc(&b.input),
                num(b.events),
                format!(
                    "± {} ({} anchors){}",
                    duration(b.alignment.error_bound_ns as f64 / 1e6),
                    b.alignment.anchors,
                    if b.torn_tail { "; event stream torn at the end" } else { "" }
                ),
                losses,
            ]
        })
        .collect();
    table(
        h,
        &[
            "host",
            "role",
            "bundle",
            "events",
            "clock alignment",
            "losses",
        ],
        &rows,
    );
}

fn streams(h: &mut String, a: &Analysis) {
    let _ = writeln!(h, "<h2 id=\"streams\">Streams</h2>");
    if a.streams.is_empty() {
        let _ = writeln!(h, "<p>None.</p>");
        return;
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "–".into());
    let rows: Vec<Vec<String>> = a
        .streams
        .iter()
        .map(|s| {
            let prio = match (s.priority, s.priority_min) {
                (Some(hi), Some(lo)) if hi != lo => format!("{lo}–{hi}"),
                (p, _) => opt(p.map(|p| p.to_string())),
            };
            let stat = |f: fn(&vmlat_analyzer::IntervalStats) -> f64| {
                num(opt(s.interval_ms.map(|i| duration(f(&i)))))
            };
            vec![
                esc(&s.key.group.capture),
                esc(s.key.group.protocol.name()),
                num(s.key.group.vrid),
                esc(&opt(s.key.group.vlan.map(|v| v.to_string()))),
                esc(&s.key.src.to_string()),
                esc(&prio),
                num(opt(s.advert_interval_ms.map(duration))),
                num(s.adverts),
                stat(|i| i.p50),
                stat(|i| i.p99),
                stat(|i| i.max),
                format!("{} → {}", s.first.time_of_day(), s.last.time_of_day()),
            ]
        })
        .collect();
    table(
        h,
        &[
            "capture point",
            "protocol",
            "VRID / port",
            "VLAN",
            "source",
            "priority",
            "advertised",
            "adverts",
            "p50",
            "p99",
            "max",
            "first → last",
        ],
        &rows,
    );
}

/// An incident's heading, verdict, evidence, hop table and suspects; the caller adds
/// the close-up and closes the `<article>`.
fn incident_section(h: &mut String, inc: &Incident) {
    let color = hex(verdict_color(inc.verdict));
    let n = inc.id;
    let _ = writeln!(
        h,
        "<article id=\"incident-{n}\">\n<h3>Incident {n}: {} · {} {} · {} · {} → {} UTC · {}{}</h3>",
        esc(inc.kind.name()),
        esc(inc.protocol.name()),
        inc.vrid,
        esc(&inc.src.to_string()),
        esc(&inc.start.date_time()),
        esc(&inc.end.time_of_day()),
        duration(inc.duration_ms),
        if inc.critical {
            " · <span class=\"critical\">critical</span>"
        } else {
            ""
        },
    );
    let _ = writeln!(
        h,
        "<p><span class=\"verdict\" style=\"background:{color}\">{}</span> {}</p>",
        esc(inc.verdict.name()),
        esc(&inc.summary)
    );
    let mut facts = vec![format!(
        "interval {}, threshold {}",
        duration(inc.interval_ms),
        duration(inc.threshold_ms)
    )];
    if let Some(basis) = &inc.critical_basis {
        facts.push(basis.clone());
    }
    for f in &inc.failovers {
        facts.push(format!(
            "{} took over from {} ({}) at {} UTC, +{}, first seen at {}",
            f.to,
            f.from,
            f.kind.name(),
            f.at.time_of_day(),
            duration(elapsed(inc.start, f.at)),
            f.capture
        ));
    }
    let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(&facts.join("; ")));
    h.push_str("<ul class=\"evidence\">\n");
    for e in &inc.evidence {
        let _ = writeln!(h, "<li>{}</li>", esc(e));
    }
    h.push_str("</ul>\n");
    if !inc.path.is_empty() {
        let t = |t: Option<Timestamp>| t.map_or_else(|| "-".to_string(), |t| t.time_of_day());
        let rows: Vec<Vec<String>> = inc
            .path
            .iter()
            .map(|r| {
                vec![
                    esc(&r.capture),
                    esc(r.host.as_deref().unwrap_or("-")),
                    esc(&t(r.last_before)),
                    esc(&t(r.first_after)),
                    format!("n:{}", r.during),
                    if r.silent { "silent" } else { "heard" }.to_string(),
                    r.delay_text()
                        .map_or_else(|| "-".to_string(), |d| format!("n:{}", esc(&d))),
                ]
            })
            .collect();
        let _ = writeln!(
            h,
            "<p>Path, in the order packets reach the capture points; first silent: {}</p>",
            esc(inc.first_silent.as_deref().unwrap_or("none"))
        );
        table(
            h,
            &[
                "capture",
                "host",
                "last before",
                "first after",
                "during",
                "",
                "delay",
            ],
            &rows,
        );
    }
    if !inc.suspects.is_empty() {
        h.push_str("<p>Suspects: what else happened</p>\n<ul class=\"evidence\">\n");
        for x in &inc.suspects {
            let _ = writeln!(h, "<li>{}: {}</li>", esc(&x.host), esc(&x.text));
        }
        h.push_str("</ul>\n");
    }
    if !inc.keepalived_log.is_empty() {
        h.push_str("<p>keepalived's own log</p>\n<ul class=\"evidence\">\n");
        for l in &inc.keepalived_log {
            let _ = writeln!(h, "<li>{} {}</li>", esc(&l.time_of_day()), esc(&l.text));
        }
        h.push_str("</ul>\n");
    }
}

fn elapsed(from: Timestamp, to: Timestamp) -> f64 {
    to.0.saturating_sub(from.0) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
