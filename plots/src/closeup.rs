//! Chart 2, one incident close up: the window around it as lanes on one time axis, each
//! present when the recording has its data (`Incident::context`):
//!
//! - the group's adverts at every capture point, sender by sender;
//! - the sending process's state (running, runnable, sleeping, blocked in a named
//!   syscall, stopped, frozen);
//! - what ran on the CPUs it used;
//! - await and in-flight requests of the disks that moved;
//! - steal time;
//! - on a host bundle, the vCPU threads' states.
//!
//! The header carries the verdict and its evidence, and marks above the lanes name the
//! last and next advert, the master-down point and every change of master, so that the picture
//! alone tells what happened. Without a context (capture files only) the packet lanes
//! come from the adverts the analysis kept and the header says what is missing.

use std::collections::HashMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use vmlat_analyzer::{
    Analysis, CpuLane, DiskLane, DiskPoint, Incident, IncidentKind, SeriesPoint, TaskLane,
    TaskState, Timestamp,
};

use crate::axis::{duration, Rows, Ticked, TimeAxis};
use crate::canvas::{Area, DrawError, Figure};
use crate::font;
use crate::frame::{
    draw_mesh, draw_steps, draw_ticks, layout, place, px_width, series_chart, time_chart,
    visible_span, Header, Legend, Mesh, Series, Swatch, TimeChart, MARGIN, SMALL_SIZE,
};
use crate::style::{
    failover_color, state_color, state_name, ADVERT, GAP_FILL, IDLE, INK, MASTER_DOWN, OTHER_TASKS,
    PALETTE, STATES, TASK_COLORS,
};

const WIDTH: u32 = 1400;
const HEADING_H: u32 = 24;
const PACKET_ROW_H: u32 = 26;
const STATE_ROW_H: u32 = 30;
const CPU_ROW_H: u32 = 26;
const SERIES_H: u32 = 74;
const X_AXIS_H: u32 = 50;
const MARK_LINE_H: u32 = 16;
const MARK_LEVELS: usize = 3;
/// Evidence lines shown in the header; the report lists them all.
const MAX_EVIDENCE: usize = 10;

/// What one lane shows.
enum Content<'a> {
    /// Ticks per row: (row name, packet times).
    Packets(Vec<(String, Vec<Timestamp>)>),
    Tasks(Vec<&'a TaskLane>),
    Cpus(Vec<&'a CpuLane>),
    /// One or more series of one unit.
    Series {
        unit: &'static str,
        lines: Vec<Series>,
    },
}

struct Lane<'a> {
    heading: String,
    content: Content<'a>,
}

impl Lane<'_> {
    fn rows(&self) -> Rows {
        Rows::new(match &self.content {
            Content::Packets(rows) => rows.iter().map(|(n, _)| n.clone()).collect(),
            Content::Tasks(lanes) => lanes.iter().map(|l| task_name(l)).collect(),
            Content::Cpus(lanes) => lanes
                .iter()
                .map(|l| format!("CPU {} ({})", l.cpu, l.host))
                .collect(),
            Content::Series { .. } => Vec::new(),
        })
    }

    fn chart_height(&self) -> u32 {
        let n = self.rows().len().max(1) as u32;
        match self.content {
            Content::Packets(_) => n * PACKET_ROW_H,
            Content::Tasks(_) => n * STATE_ROW_H,
            Content::Cpus(_) => n * CPU_ROW_H,
            Content::Series { .. } => SERIES_H,
        }
    }
}

fn task_name(l: &TaskLane) -> String {
    if l.tid == l.tgid {
        format!("{} {} ({})", l.comm, l.tid, l.host)
    } else {
        format!("{} {}/{} ({})", l.comm, l.tgid, l.tid, l.host)
    }
}

/// A vertical mark across every lane, named above them.
struct Mark {
    at: Timestamp,
    label: String,
    color: RGBColor,
    /// Drawn as a dashed line across the lanes.
    line: bool,
}

/// The close-up of incident number `n` (1-based, as in every report).
pub struct Closeup<'a> {
    n: usize,
    inc: &'a Incident,
    axis: TimeAxis,
    lanes: Vec<Lane<'a>>,
    marks: Vec<Mark>,
    header: Header,
    legend: Legend,
    label_width: u32,
    /// Colours of the tasks on the CPU lanes.
    tasks: TaskColors,
}

impl<'a> Closeup<'a> {
    /// The close-up of incident `n`; `None` if there is no such incident.
    pub fn new(analysis: &'a Analysis, n: usize) -> Option<Self> {
        let inc = analysis.incidents.iter().find(|i| i.id == n)?;
        let ctx = inc.context.as_ref();
        let (start, end) = match ctx {
            Some(c) => (c.window_start, c.window_end),
            None => {
                let before = (analysis.window_ms.max(inc.interval_ms) * 1e6) as i64;
                let after = (inc.interval_ms * 1e6) as i64;
                (
                    Timestamp(inc.start.0.saturating_sub(before)),
                    Timestamp(inc.end.0.saturating_add(after)),
                )
            }
        };
        let axis = TimeAxis::new(start, end, 12);
        let lanes = lanes(analysis, inc);
        let tasks = TaskColors::new(
            ctx.map_or(&[][..], |c| c.cpus.as_slice()),
            ctx.and_then(|c| c.sender.as_ref()).map(|s| s.tid),
        );
        let marks = marks(inc);
        let style = font::text(SMALL_SIZE);
        let label_width = lanes
            .iter()
            .flat_map(|l| l.rows().names)
            .map(|n| font::width(&style, &n))
            .max()
            .unwrap_or(0)
            .clamp(70, WIDTH * 2 / 5)
            + 14;
        let header = header(inc, ctx.is_some());
        let legend = Legend::new(legend_items(&lanes, &marks, &tasks), WIDTH);
        Some(Closeup {
            n,
            inc,
            axis,
            lanes,
            marks,
            header,
            legend,
            label_width,
            tasks,
        })
    }
}

fn header(inc: &Incident, has_context: bool) -> Header {
    let what = match inc.kind {
        IncidentKind::Silence | IncidentKind::Open => {
            format!("silent {}", duration(inc.duration_ms))
        }
        IncidentKind::Takeover => "taken over".to_string(),
        IncidentKind::SplitBrain => format!("split-brain {}", duration(inc.duration_ms)),
    };
    let title = format!(
        "Incident {}: {} {} · {} {}{} — verdict {}",
        inc.id,
        inc.protocol.name(),
        inc.vrid,
        inc.src,
        what,
        if inc.critical { " (critical)" } else { "" },
        inc.verdict.name(),
    );
    let mut lines = vec![format!("Why: {}.", inc.summary)];
    let mut when = format!(
        "From {} UTC to {} UTC ({}); interval {}",
        inc.start.date_time(),
        inc.end.time_of_day(),
        inc.kind.name(),
        duration(inc.interval_ms),
    );
    if let Some(critical) = inc.critical_after_ms {
        when += &format!(", master-down interval {}", duration(critical));
    }
    if let Some(first) = &inc.first_silent {
        when += &format!("; first silent at {first}");
    }
    lines.push(when + ".");
    for f in &inc.failovers {
        lines.push(format!(
            "{} took over from {} ({}) at +{}, first seen at {}.",
            f.to,
            f.from,
            f.kind.name(),
            duration((f.at.0 - inc.start.0) as f64 / 1e6),
            f.capture
        ));
    }
    for e in inc.evidence.iter().take(MAX_EVIDENCE) {
        lines.push(format!("• {e}"));
    }
    if inc.evidence.len() > MAX_EVIDENCE {
        lines.push(format!(
            "• … and {} more evidence lines in the report.",
            inc.evidence.len() - MAX_EVIDENCE
        ));
    }
    if !has_context {
        lines.push(
            "Packets only: no scheduler, disk or steal data was recorded for this incident."
                .to_string(),
        );
    }
    Header::new(title, &lines, WIDTH)
}

/// The lanes, in reading order: packets, sender, CPUs, disks, steal, vCPUs.
fn lanes<'a>(analysis: &'a Analysis, inc: &'a Incident) -> Vec<Lane<'a>> {
    let mut lanes = Vec::new();
    let packets: Vec<(String, Vec<Timestamp>)> = match &inc.context {
        Some(ctx) => ctx
            .packets
            .iter()
            .map(|l| (format!("{} at {}", l.src, l.capture), l.packets.clone()))
            .collect(),
        None => analysis
            .streams
            .iter()
            .filter(|s| {
                let g = &s.key.group;
                (g.protocol, g.vrid, g.vlan) == (inc.protocol, inc.vrid, inc.vlan)
            })
            .map(|s| {
                let times = analysis.adverts_of(&s.key).iter().map(|a| a.t).collect();
                (format!("{} at {}", s.key.src, s.key.group.capture), times)
            })
            .collect(),
    };
    if !packets.is_empty() {
        lanes.push(Lane {
            heading: format!(
                "Adverts of {} {} at each capture point (one tick per packet)",
                inc.protocol.name(),
                inc.vrid
            ),
            content: Content::Packets(packets),
        });
    }
    let Some(ctx) = &inc.context else {
        return lanes;
    };
    if let Some(sender) = &ctx.sender {
        lanes.push(Lane {
            heading: "Sending process: state (syscall or signal named inside)".into(),
            content: Content::Tasks(vec![sender]),
        });
    }
    if !ctx.cpus.is_empty() {
        lanes.push(Lane {
            heading: "What ran on its CPUs (task name inside; grey = idle)".into(),
            content: Content::Cpus(ctx.cpus.iter().collect()),
        });
    }
    for disk in &ctx.disks {
        lanes.extend(disk_lanes(disk));
    }
    if !ctx.steal.is_empty() {
        lanes.push(Lane {
            heading: "Steal time of the sender's CPU (% of its time)".into(),
            content: Content::Series {
                unit: "%",
                lines: vec![Series {
                    name: "steal".into(),
                    color: PALETTE[3],
                    points: ctx
                        .steal
                        .iter()
                        .map(|SeriesPoint { t, value }| (*t, *value))
                        .collect(),
                }],
            },
        });
    }
    if !ctx.vcpus.is_empty() {
        lanes.push(Lane {
            heading: "Host: the VM's vCPU threads, state".into(),
            content: Content::Tasks(ctx.vcpus.iter().collect()),
        });
    }
    lanes
}

/// A disk's await and in-flight lanes: completions show as await, an I/O that has not
/// completed yet only as in-flight (`docs/verdicts.md`, traps), so both are drawn.
fn disk_lanes(disk: &DiskLane) -> [Lane<'_>; 2] {
    let series = |name: &str, color, f: fn(&DiskPoint) -> f64| Series {
        name: name.into(),
        color,
        points: disk.points.iter().map(|p| (p.t, f(p))).collect(),
    };
    [
        Lane {
            heading: format!(
                "Disk {} ({}): await per sample interval (ms)",
                disk.device, disk.host
            ),
            content: Content::Series {
                unit: "ms",
                lines: vec![
                    series("r_await", PALETTE[0], |p| p.r_await_ms),
                    series("w_await", PALETTE[1], |p| p.w_await_ms),
                ],
            },
        },
        Lane {
            heading: format!("Disk {} ({}): requests in flight", disk.device, disk.host),
            content: Content::Series {
                unit: "",
                lines: vec![series("in flight", PALETTE[4], |p| p.in_flight as f64)],
            },
        },
    ]
}

fn marks(inc: &Incident) -> Vec<Mark> {
    // The band's edges: named, not drawn again.
    let silence = matches!(inc.kind, IncidentKind::Silence | IncidentKind::Open);
    let mut marks = vec![
        Mark {
            at: inc.start,
            label: if silence {
                "last advert before the silence".into()
            } else {
                "start".into()
            },
            color: INK,
            line: false,
        },
        Mark {
            at: inc.end,
            label: match inc.kind {
                IncidentKind::Open => "end of the recording".into(),
                IncidentKind::Silence => "next advert".into(),
                _ => "end".into(),
            },
            color: INK,
            line: false,
        },
    ];
    if let (Some(critical), true) = (inc.critical_after_ms, silence) {
        marks.push(Mark {
            at: Timestamp(inc.start.0.saturating_add((critical * 1e6) as i64)),
            label: format!("master-down ({})", duration(critical)),
            color: MASTER_DOWN,
            line: true,
        });
    }
    for t in &inc.failovers {
        marks.push(Mark {
            at: t.at,
            label: format!("{} took over ({})", t.to, t.kind.name()),
            color: failover_color(t.kind),
            line: true,
        });
    }
    marks
}

/// Colours of the tasks on the CPU lanes: the sender in the running green, the busiest
/// others (by time on CPU in the window) one colour each, the rest grey.
struct TaskColors {
    sender: Option<i32>,
    ranked: Vec<String>,
    others: bool,
}

impl TaskColors {
    fn new(cpus: &[CpuLane], sender: Option<i32>) -> Self {
        let mut time: HashMap<&str, i64> = HashMap::new();
        for s in cpus.iter().flat_map(|c| &c.spans) {
            if s.tid != 0 && Some(s.tid) != sender {
                *time.entry(s.comm.as_str()).or_default() += s.end.0.saturating_sub(s.start.0);
            }
        }
        let mut comms: Vec<(&str, i64)> = time.into_iter().collect();
        comms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        TaskColors {
            sender,
            others: comms.len() > TASK_COLORS.len(),
            ranked: comms
                .iter()
                .take(TASK_COLORS.len())
                .map(|(c, _)| c.to_string())
                .collect(),
        }
    }

    fn color(&self, tid: i32, comm: &str) -> RGBColor {
        if tid == 0 {
            IDLE
        } else if Some(tid) == self.sender {
            state_color(TaskState::Running)
        } else {
            self.ranked
                .iter()
                .position(|c| c == comm)
                .map_or(OTHER_TASKS, |i| TASK_COLORS[i])
        }
    }

    fn legend(&self) -> Vec<(Swatch, String)> {
        let mut items = vec![(Swatch::Fill(IDLE), "CPU idle".to_string())];
        if self.sender.is_some() {
            items.push((
                Swatch::Fill(state_color(TaskState::Running)),
                "on CPU: the sender".into(),
            ));
        }
        items.extend(
            self.ranked
                .iter()
                .zip(TASK_COLORS)
                .map(|(c, color)| (Swatch::Fill(color), format!("on CPU: {c}"))),
        );
        if self.others {
            items.push((Swatch::Fill(OTHER_TASKS), "on CPU: other tasks".into()));
        }
        items
    }
}

fn legend_items(lanes: &[Lane<'_>], marks: &[Mark], tasks: &TaskColors) -> Vec<(Swatch, String)> {
    let mut items = vec![(
        Swatch::Fill(GAP_FILL),
        "the silence (no advert)".to_string(),
    )];
    let mut states: Vec<TaskState> = Vec::new();
    let mut cpus = false;
    let mut series: Vec<(String, RGBColor)> = Vec::new();
    for lane in lanes {
        match &lane.content {
            Content::Packets(_) => {
                if !items.iter().any(|(_, l)| l == "advert") {
                    items.push((Swatch::Tick(ADVERT), "advert".into()));
                }
            }
            Content::Tasks(tasks) => {
                states.extend(tasks.iter().flat_map(|t| t.spans.iter().map(|s| s.state)))
            }
            Content::Cpus(_) => cpus = true,
            Content::Series { lines, .. } => {
                for l in lines {
                    if !series.iter().any(|(n, _)| n == &l.name) {
                        series.push((l.name.clone(), l.color));
                    }
                }
            }
        }
    }
    for m in marks.iter().filter(|m| m.line) {
        let label = m.label.split(" (").next().unwrap_or_default().to_string();
        if !items.iter().any(|(_, l)| l == &label) {
            items.push((Swatch::Dashed(m.color), label));
        }
    }
    items.extend(
        STATES
            .iter()
            .filter(|s| states.contains(s))
            .map(|s| (Swatch::Fill(state_color(*s)), state_name(*s).to_string())),
    );
    if cpus {
        items.extend(tasks.legend());
    }
    items.extend(series.into_iter().map(|(n, c)| (Swatch::Line(c), n)));
    items
}

impl Figure for Closeup<'_> {
    fn name(&self) -> String {
        format!("incident-{}", self.n)
    }

    fn size(&self) -> (u32, u32) {
        let lanes: u32 = self
            .lanes
            .iter()
            .map(|l| HEADING_H + l.chart_height())
            .sum();
        let body = self.marks_height() + lanes.max(PACKET_ROW_H) + X_AXIS_H;
        (
            WIDTH,
            self.header.height() + body + self.legend.height() + MARGIN,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let body = layout(root, &self.header, &self.legend)?;
        let (marks_area, mut rest) = body.split_vertically(self.marks_height());
        let mark_xs = self.draw_mark_labels(&marks_area)?;
        if self.lanes.is_empty() {
            let (axis_area, _) = rest.split_vertically(PACKET_ROW_H + X_AXIS_H);
            let mut chart = self.lane_chart(&axis_area, Rows::new(Vec::new()), true)?;
            self.draw_overlay(&mut chart, &Rows::new(Vec::new()), &mark_xs)?;
            return Ok(());
        }
        let last = self.lanes.len() - 1;
        for (i, lane) in self.lanes.iter().enumerate() {
            let x_axis = if i == last { X_AXIS_H } else { 0 };
            let (area, below) = rest.split_vertically(HEADING_H + lane.chart_height() + x_axis);
            rest = below;
            let (heading, chart_area) = area.split_vertically(HEADING_H);
            heading.draw(&Text::new(
                lane.heading.clone(),
                (MARGIN as i32, 8),
                font::bold(SMALL_SIZE).color(&INK),
            ))?;
            self.draw_lane(&chart_area, lane, i == last, &mark_xs)?;
        }
        Ok(())
    }
}

impl Closeup<'_> {
    fn marks_height(&self) -> u32 {
        MARK_LEVELS as u32 * MARK_LINE_H + 6
    }

    fn lane_chart<'b, DB: DrawingBackend>(
        &self,
        area: &'b DrawingArea<DB, Shift>,
        rows: Rows,
        x_labels: bool,
    ) -> Result<TimeChart<'b, DB>, DrawError> {
        let mut chart = time_chart(area, &self.axis, rows.coord(), self.label_width, x_labels)?;
        draw_mesh(
            &mut chart,
            &Mesh {
                axis: &self.axis,
                x_labels,
                y_label: &|y| rows.label(y),
                y_grid: false,
            },
        )?;
        Ok(chart)
    }

    /// Names the marks above the lanes, on up to [`MARK_LEVELS`] lines; returns the x of
    /// each mark that got a label (every mark is drawn across the lanes regardless).
    fn draw_mark_labels<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<Vec<f64>, DrawError> {
        let chart = time_chart(
            area,
            &self.axis,
            Ticked::new(0.0..1.0, Vec::new()),
            self.label_width,
            false,
        )?;
        let style = font::text(SMALL_SIZE);
        let right = chart.plotting_area().get_pixel_range().0.end;
        let spans: Vec<(i32, u32)> = self
            .marks
            .iter()
            .map(|m| {
                let x = chart.backend_coord(&(self.axis.x(m.at), 0.0)).0;
                let w = font::width(&style, &m.label);
                // Labels start at their mark, or end at the right edge if that is nearer.
                (x.min(right - w as i32), w)
            })
            .collect();
        let levels = place(&spans, MARK_LEVELS);
        let base = area.get_base_pixel();
        for ((m, level), (x, _)) in self.marks.iter().zip(&levels).zip(&spans) {
            let Some(level) = level else { continue };
            let y = 2 + (*level as u32 * MARK_LINE_H) as i32;
            area.draw(&Text::new(
                m.label.clone(),
                (x - base.0, y),
                font::text(SMALL_SIZE)
                    .color(&m.color)
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            ))?;
        }
        Ok(self.marks.iter().map(|m| self.axis.x(m.at)).collect())
    }

    fn draw_lane<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        lane: &Lane<'_>,
        x_labels: bool,
        mark_xs: &[f64],
    ) -> Result<(), DrawError> {
        if let Content::Series { unit, lines } = &lane.content {
            return self.draw_series_lane(area, unit, lines, x_labels, mark_xs);
        }
        let rows = lane.rows();
        let mut chart = self.lane_chart(area, rows.clone(), x_labels)?;
        self.draw_overlay(&mut chart, &rows, mark_xs)?;
        match &lane.content {
            Content::Packets(lists) => {
                for (i, (_, times)) in lists.iter().enumerate() {
                    let (bottom, top) = rows.band(i);
                    draw_ticks(
                        &mut chart,
                        &self.axis,
                        times.iter().copied(),
                        (bottom + 0.2, top - 0.2),
                        ADVERT,
                    )?;
                }
            }
            Content::Tasks(tasks) => {
                for (i, task) in tasks.iter().enumerate() {
                    let spans = task.spans.iter().map(|s| Span {
                        start: s.start,
                        end: s.end,
                        color: state_color(s.state),
                        label: match &s.detail {
                            Some(d) => format!("{}: {d}", s.state.name()),
                            None => s.state.name().to_string(),
                        },
                    });
                    self.draw_spans(&mut chart, rows.band(i), spans)?;
                }
            }
            Content::Cpus(cpus) => {
                for (i, cpu) in cpus.iter().enumerate() {
                    let spans = cpu.spans.iter().map(|s| Span {
                        start: s.start,
                        end: s.end,
                        color: self.tasks.color(s.tid, &s.comm),
                        label: if s.tid == 0 {
                            "idle".to_string()
                        } else {
                            format!("{} {}", s.comm, s.tid)
                        },
                    });
                    self.draw_spans(&mut chart, rows.band(i), spans)?;
                }
            }
            Content::Series { .. } => {}
        }
        Ok(())
    }

    /// The gap's band behind the lane's data, and the marks' vertical lines.
    fn draw_overlay<DB: DrawingBackend>(
        &self,
        chart: &mut TimeChart<'_, DB>,
        rows: &Rows,
        mark_xs: &[f64],
    ) -> Result<(), DrawError> {
        let top = rows.len().max(1) as f64;
        self.draw_gap_and_marks(chart, (0.0, top), mark_xs)
    }

    fn draw_gap_and_marks<DB: DrawingBackend>(
        &self,
        chart: &mut TimeChart<'_, DB>,
        (y0, y1): (f64, f64),
        mark_xs: &[f64],
    ) -> Result<(), DrawError> {
        let (x0, x1) = visible_span(
            chart,
            self.axis.x(self.inc.start),
            self.axis.x(self.inc.end),
            2.0,
        );
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            GAP_FILL.filled(),
        )))?;
        for (m, &x) in self.marks.iter().zip(mark_xs) {
            if !m.line || !self.axis.contains(m.at) {
                continue;
            }
            let step = (y1 - y0) / 12.0;
            chart.draw_series((0..12).step_by(2).map(|i| {
                let a = y0 + step * i as f64;
                PathElement::new(vec![(x, a), (x, a + step)], m.color.stroke_width(1))
            }))?;
        }
        Ok(())
    }

    /// Coloured spans in one row, merged where several fall in one pixel column, and
    /// named inside when the name fits.
    fn draw_spans<DB: DrawingBackend>(
        &self,
        chart: &mut TimeChart<'_, DB>,
        (bottom, top): (f64, f64),
        spans: impl Iterator<Item = Span>,
    ) -> Result<(), DrawError> {
        let (y0, y1) = (bottom + 0.12, top - 0.12);
        let min = px_width(chart, 1.0);
        let style = font::text(SMALL_SIZE);
        let mut boxes: Vec<(f64, f64, RGBColor, String)> = Vec::new();
        for s in spans {
            if s.end < self.axis.start() || s.start > self.axis.end() {
                continue;
            }
            let (a, b) = (
                self.axis.x(s.start),
                self.axis.x(s.end).max(self.axis.x(s.start) + min),
            );
            match boxes.last_mut() {
                // Same colour touching, or both within one pixel: one box.
                Some(last) if last.2 == s.color && a - last.1 < min => last.1 = last.1.max(b),
                _ => boxes.push((a, b, s.color, s.label)),
            }
        }
        chart.draw_series(
            boxes
                .iter()
                .map(|(a, b, c, _)| Rectangle::new([(*a, y0), (*b, y1)], c.filled())),
        )?;
        let per_px = min;
        for (a, b, color, label) in &boxes {
            let room = ((b - a) / per_px) as u32;
            if room < 24 {
                continue;
            }
            let text = font::fit(&style, label, room.saturating_sub(8));
            if text.is_empty() {
                continue;
            }
            let ink = if luminance(*color) < 140.0 {
                WHITE
            } else {
                INK
            };
            chart.draw_series(std::iter::once(Text::new(
                text,
                (a + per_px * 4.0, (y0 + y1) / 2.0),
                style.color(&ink).pos(Pos::new(HPos::Left, VPos::Center)),
            )))?;
        }
        Ok(())
    }

    fn draw_series_lane<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        unit: &str,
        series: &[Series],
        x_labels: bool,
        mark_xs: &[f64],
    ) -> Result<(), DrawError> {
        let mut chart = series_chart(
            area,
            &self.axis,
            self.label_width,
            x_labels,
            unit,
            series,
            None,
        )?;
        let top = chart.y_range().end;
        self.draw_gap_and_marks(&mut chart, (0.0, top), mark_xs)?;
        draw_steps(&mut chart, &self.axis, series)
    }
}

/// One span to draw in a row.
struct Span {
    start: Timestamp,
    end: Timestamp,
    color: RGBColor,
    label: String,
}

fn luminance(c: RGBColor) -> f64 {
    0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2)
}
