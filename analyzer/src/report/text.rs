//! The report for people: inputs, streams, failovers, split-brains and gaps, with each
//! gap's verdict and evidence in the shape of DESIGN §7. Times are UTC with ns.

use std::fmt::Write as _;
use std::io::Write;

use crate::decode::Protocol;
use crate::model::{Analysis, FailoverKind, Gap, GroupKey, Stream};

/// Writes the text report.
pub fn write(analysis: &Analysis, mut out: impl Write) -> std::io::Result<()> {
    out.write_all(render(analysis).as_bytes())
}

/// The text report as a string.
pub fn render(a: &Analysis) -> String {
    let mut s = String::new();
    let critical = a.gaps.iter().filter(|g| g.critical).count();
    let _ = writeln!(
        s,
        "vmlat analysis: {} streams, {} failovers, {} split-brains, {} gaps ({critical} critical), {} malformed packets",
        a.streams.len(),
        a.failovers.len(),
        a.split_brains.len(),
        a.gaps.len(),
        a.malformed_packets,
    );
    inputs(&mut s, a);
    streams(&mut s, &a.streams);
    if !a.failovers.is_empty() {
        let _ = writeln!(s, "\nFAILOVERS");
        for f in &a.failovers {
            let _ = writeln!(
                s,
                "  {} UTC  {}  {} → {}  {}  ({} last heard {:.3} s before)",
                f.at.date_time(),
                group(&f.group),
                f.from,
                f.to,
                f.kind.name(),
                f.from,
                (f.at.0 - f.from_last_seen.0) as f64 / 1e9,
            );
        }
    }
    if !a.split_brains.is_empty() {
        let _ = writeln!(s, "\nSPLIT-BRAIN");
        for b in &a.split_brains {
            let routers: Vec<String> = b.routers.iter().map(|r| r.to_string()).collect();
            let _ = writeln!(
                s,
                "  {} → {} UTC  {:.3} s  {}  masters at once: {}",
                b.start.date_time(),
                b.end.time_of_day(),
                b.duration_ms / 1e3,
                group(&b.group),
                routers.join(", "),
            );
        }
    }
    for (n, gap) in a.gaps.iter().enumerate() {
        self::gap(&mut s, n + 1, gap);
    }
    if a.gaps.is_empty() {
        let _ = writeln!(s, "\nNo gaps.");
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

fn group(g: &GroupKey) -> String {
    let id = match g.protocol {
        Protocol::Vrrp => format!("VRID {}", g.vrid),
        Protocol::Carp => format!("CARP VHID {}", g.vrid),
        Protocol::Bfd | Protocol::Corosync | Protocol::Udp => {
            format!("{} port {}", g.protocol.name(), g.vrid)
        }
    };
    let vlan = g.vlan.map(|v| format!(" VLAN {v}")).unwrap_or_default();
    format!("{id}{vlan} at {}", g.capture)
}

fn gap(s: &mut String, n: usize, g: &Gap) {
    let key = &g.stream;
    let _ = writeln!(
        s,
        "\nGAP {n:<3} {}   {}   {} → {} UTC   {:.3} s{}",
        group(&key.group),
        key.src,
        g.start.date_time(),
        g.end.time_of_day(),
        g.duration_ms / 1e3,
        if g.critical { "   CRITICAL" } else { "" },
    );
    let mut context = Vec::new();
    if let Some(basis) = &g.critical_basis {
        context.push(basis.clone());
    }
    let after = |t: crate::Timestamp| (t.0 - g.start.0) as f64 / 1e9;
    for t in &g.takeovers {
        context.push(match t.kind {
            FailoverKind::MasterDown => format!("{} took over at +{:.3} s", t.to, after(t.at)),
            FailoverKind::Preempted if t.to == key.src => {
                format!("preempted back at +{:.3} s", after(t.at))
            }
            FailoverKind::Preempted => format!("{} preempted at +{:.3} s", t.to, after(t.at)),
            FailoverKind::Resigned => format!(
                "{} took over from a resigning master at +{:.3} s",
                t.to,
                after(t.at)
            ),
        });
    }
    context.push(format!(
        "threshold {:.3} s = gap factor × interval {:.3} s",
        g.threshold_ms / 1e3,
        g.interval_ms / 1e3
    ));
    let _ = writeln!(s, "        ({})", context.join("; "));
    match &g.summary {
        Some(summary) => {
            let _ = writeln!(s, "  verdict  {}: {summary}", g.verdict.name());
        }
        None => {
            let _ = writeln!(s, "  verdict  {}", g.verdict.name());
        }
    }
    for (i, line) in g.evidence.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {} {line}",
            if i == 0 { "evidence" } else { "        " }
        );
    }
}
