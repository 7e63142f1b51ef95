//! The report for people: inputs, streams, and one block per incident with its verdict,
//! evidence, hop table, suspects and keepalived's own lines. Times are UTC with ns.

use std::fmt::Write as _;
use std::io::Write;

use crate::align::CrossMachine;
use crate::decode::Protocol;
use crate::model::{Analysis, BundleSummary, FailoverKind, Incident, Stream};
use crate::time::ms;

/// Writes the text report.
pub fn write(analysis: &Analysis, mut out: impl Write) -> std::io::Result<()> {
    out.write_all(render(analysis).as_bytes())
}

/// The text report as a string.
pub fn render(a: &Analysis) -> String {
    let mut s = String::new();
    let critical = a.incidents.iter().filter(|i| i.critical).count();
    let _ = writeln!(
        s,
        "vmlat analysis: {} incident{} ({critical} critical), {} streams, {} failovers, {} malformed packets",
        a.incidents.len(),
        if a.incidents.len() == 1 { "" } else { "s" },
        a.streams.len(),
        a.incidents.iter().map(|i| i.failovers.len()).sum::<usize>(),
        a.malformed_packets,
    );
    inputs(&mut s, a);
    streams(&mut s, &a.streams);
    for inc in &a.incidents {
        incident(&mut s, inc);
    }
    if a.incidents.is_empty() {
        let _ = writeln!(
            s,
            "\nNo incidents: every stream kept its interval and its master."
        );
    }
    s
}

fn inputs(s: &mut String, a: &Analysis) {
    let _ = writeln!(s, "\nINPUTS");
    for i in &a.inputs {
        let _ = writeln!(
            s,
            "  {}  {}: {} packets, {} heartbeats, {} ignored, {} malformed{}",
            i.file,
            i.format,
            i.packets,
            i.heartbeats,
            i.ignored,
            i.malformed,
            if i.late > 0 {
                format!(", {} too far out of order", i.late)
            } else {
                String::new()
            },
        );
        for (reason, count) in &i.malformed_reasons {
            let _ = writeln!(s, "      {count} × {reason}");
        }
        if let Some(reason) = &i.stop_reason {
            let _ = writeln!(s, "      stopped early: {reason}");
        }
    }
    for b in &a.bundles {
        bundle(s, b);
    }
    for k in &a.keepalived_logs {
        let span = match (k.first, k.last) {
            (Some(first), Some(last)) => {
                format!(" ({} → {} UTC)", first.date_time(), last.time_of_day())
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {}  keepalived log: {} lines, {} of keepalived{span}, {} in incident windows, {} undated, {} of other programs{}",
            k.path,
            k.lines,
            k.keepalived,
            k.attached,
            k.undated,
            k.foreign,
            if k.truncated > 0 {
                format!(", {} cut at 64 KiB", k.truncated)
            } else {
                String::new()
            },
        );
        if k.keepalived > 0 && k.attached == 0 && !a.incidents.is_empty() {
            let _ = writeln!(
                s,
                "      none in an incident's window: if its times are local time, not UTC, give --log-utc-offset"
            );
        }
    }
}

/// A bundle's machine and how its clock was lined up with the others', with every jump
/// of its clock against the reference's.
fn bundle(s: &mut String, b: &BundleSummary) {
    let cross = &b.alignment.cross_machine;
    let _ = writeln!(
        s,
        "  {}  {} ({}): clock lined up {}",
        b.input,
        b.host,
        b.role,
        cross.describe()
    );
    if b.losses.total() > 0 {
        let _ = writeln!(s, "      {}", b.losses.summary());
    }
    if b.torn_tail {
        let _ = writeln!(
            s,
            "      its event stream ends torn (the recorder was killed): read up to {}",
            b.stopped.time_of_day()
        );
    }
    if !b.not_recorded.is_empty() {
        let _ = writeln!(s, "      not recorded: {}", b.not_recorded.join("; "));
    }
    for warning in &b.warnings {
        let _ = writeln!(s, "      recorder warning: {warning}");
    }
    if let CrossMachine::Packets(p) = cross {
        for j in &p.jumps {
            let by = ms(i128::from(j.behind_ns).abs());
            let which = if j.behind_ns >= 0 {
                "fell behind"
            } else {
                "leapt ahead of"
            };
            let _ = writeln!(
                s,
                "      clock jump: {}'s clock {which} {}'s by {by} ms between {} and {} (the matched packets around it){}",
                b.host,
                p.reference,
                j.last_before.time_of_day(),
                j.first_after.time_of_day(),
                if j.behind_ns >= 0 {
                    ": its clocks stopped meanwhile (a paused, suspended or migrated VM)"
                } else {
                    ""
                }
            );
        }
    }
}

fn streams(s: &mut String, streams: &[Stream]) {
    let _ = writeln!(s, "\nSTREAMS");
    if streams.is_empty() {
        let _ = writeln!(s, "  none");
        return;
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let mut rows = vec![[
        "CAPTURE", "PROTO", "VRID", "VLAN", "SOURCE", "VER", "PRIO", "INTERVAL", "ADVERTS",
        "P50 ms", "P99 ms", "MAX ms",
    ]
    .map(String::from)];
    for st in streams {
        let k = &st.key;
        let prio = match (st.priority, st.priority_min) {
            (Some(hi), Some(lo)) if hi != lo => format!("{lo}-{hi}"),
            (p, _) => opt(p.map(|p| p.to_string())),
        };
        let stats = st.interval_ms;
        rows.push([
            k.group.capture.clone(),
            k.group.protocol.name().to_string(),
            k.group.vrid.to_string(),
            opt(k.group.vlan.map(|v| v.to_string())),
            k.src.to_string(),
            opt(st.version.map(|v| v.to_string())),
            prio,
            opt(st.advert_interval_ms.map(|i| format!("{:.3} s", i / 1e3))),
            st.adverts.to_string(),
            opt(stats.map(|i| format!("{:.3}", i.p50))),
            opt(stats.map(|i| format!("{:.3}", i.p99))),
            opt(stats.map(|i| format!("{:.3}", i.max))),
        ]);
    }
    table(s, &rows);
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(s: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for (w, cell) in widths.iter().zip(row) {
            let _ = write!(line, " {cell:<w$} ");
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

/// `VRID 51`, `CARP VHID 3 VLAN 10`, `bfd port 3784`.
fn group(protocol: Protocol, vrid: u16, vlan: Option<u16>) -> String {
    let id = match protocol {
        Protocol::Vrrp => format!("VRID {vrid}"),
        Protocol::Carp => format!("CARP VHID {vrid}"),
        Protocol::Bfd | Protocol::Corosync | Protocol::Udp => {
            format!("{} port {vrid}", protocol.name())
        }
    };
    let vlan = vlan.map(|v| format!(" VLAN {v}")).unwrap_or_default();
    format!("{id}{vlan}")
}

fn incident(s: &mut String, inc: &Incident) {
    let to = inc.dst.map(|d| format!(" → {d}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "\nINCIDENT {:<3} {}   {}   {}{to}   {} → {} UTC   {:.3} s{}",
        inc.id,
        inc.kind.name(),
        group(inc.protocol, inc.vrid, inc.vlan),
        inc.src,
        inc.start.date_time(),
        inc.end.time_of_day(),
        inc.duration_ms / 1e3,
        if inc.critical { "   CRITICAL" } else { "" },
    );
    let mut context = Vec::new();
    if let Some(basis) = &inc.critical_basis {
        context.push(basis.clone());
    }
    let after = |t: crate::Timestamp| (t.0 - inc.start.0) as f64 / 1e9;
    for f in &inc.failovers {
        context.push(match f.kind {
            FailoverKind::MasterDown => {
                format!(
                    "{} took over at +{:.3} s ({})",
                    f.to,
                    after(f.at),
                    f.capture
                )
            }
            FailoverKind::Preempted if f.to == inc.src => {
                format!("preempted back at +{:.3} s", after(f.at))
            }
            FailoverKind::Preempted => format!("{} preempted at +{:.3} s", f.to, after(f.at)),
            FailoverKind::Resigned => format!(
                "{} took over from a resigning master at +{:.3} s",
                f.to,
                after(f.at)
            ),
        });
    }
    if !inc.routers.is_empty() {
        let routers: Vec<String> = inc.routers.iter().map(|r| r.to_string()).collect();
        context.push(format!("masters at once: {}", routers.join(", ")));
    }
    if !context.is_empty() {
        let _ = writeln!(s, "        ({})", context.join("; "));
    }
    let _ = writeln!(s, "  verdict  {}: {}", inc.verdict.name(), inc.summary);
    labelled(s, "evidence", &inc.evidence);
    if !inc.path.is_empty() {
        path(s, inc);
    }
    let suspects: Vec<String> = inc
        .suspects
        .iter()
        .map(|x| format!("{}: {}", x.host, x.text))
        .collect();
    labelled(s, "suspects", &suspects);
    // keepalived repeats itself (five gratuitous ARPs a transition): one line each.
    let mut log: Vec<(String, usize)> = Vec::new();
    for l in &inc.keepalived_log {
        let line = format!("{}  {}", l.time_of_day(), l.text);
        match log.last_mut() {
            Some((last, n)) if *last == line => *n += 1,
            _ => log.push((line, 1)),
        }
    }
    let log: Vec<String> = log
        .into_iter()
        .map(|(line, n)| {
            if n > 1 {
                format!("{line}  (×{n})")
            } else {
                line
            }
        })
        .collect();
    labelled(s, "keepalived", &log);
}

/// Lines under a label in the left margin.
fn labelled(s: &mut String, label: &str, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(s, "  {:<8} {line}", if i == 0 { label } else { "" });
    }
}

/// The hop table.
fn path(s: &mut String, inc: &Incident) {
    let t = |t: Option<crate::Timestamp>| t.map_or_else(|| "-".to_string(), |t| t.time_of_day());
    let from = |basis: &str| {
        inc.path
            .iter()
            .any(|r| r.delay_from.as_deref() == Some(basis))
    };
    let mut rows = vec![[
        "CAPTURE",
        "HOST",
        "LAST BEFORE",
        "FIRST AFTER",
        "DURING",
        "SILENT",
        "DELAY",
    ]
    .map(String::from)];
    for r in &inc.path {
        rows.push([
            r.capture.clone(),
            r.host.clone().unwrap_or_else(|| "-".into()),
            t(r.last_before),
            t(r.first_after),
            r.during.to_string(),
            if r.silent { "yes" } else { "no" }.to_string(),
            r.delay_text().map_or_else(
                || "-".to_string(),
                |d| {
                    let mark = if from("send") && r.delay_from.as_deref() != Some("send") {
                        " *"
                    } else {
                        ""
                    };
                    format!("{d}{mark}")
                },
            ),
        ]);
    }
    let mut table_text = String::new();
    table(&mut table_text, &rows);
    for (i, line) in table_text.lines().enumerate() {
        let _ = writeln!(s, "  {:<8}{line}", if i == 0 { "path" } else { "" });
    }
    let first = match &inc.first_silent {
        Some(c) => format!("first silent point on the path: {c}"),
        None => "no capture point went silent: the adverts were heard everywhere".to_string(),
    };
    let basis = match (from("send"), from("first-capture")) {
        (true, false) => "delay: behind the sender's send syscall",
        (true, true) => "delay: behind the sender's send syscall, or where no send matched (*), behind the first capture of the same packet",
        _ => "delay: behind the first capture of the same packet",
    };
    let _ = writeln!(s, "  {:<8} {first} ({basis})", "");
    if inc
        .path
        .iter()
        .any(|r| r.delay_ms.is_some() && r.clock_error_ms != Some(0.0) && r.host.is_some())
    {
        let _ = writeln!(
            s,
            "  {:<8} ±: off by up to that much, another machine's clock (±?: not bounded; see the bundles' clock line-up)",
            ""
        );
    }
}
