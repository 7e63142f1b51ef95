//! Chart 1, the whole recording: one row per stream with a tick per advert, gaps
//! shaded in their verdict's colour and labelled with their number and verdict, and
//! failovers marked with a triangle in the new master's row, coloured by kind. The time
//! axis runs from the earliest of the bundles' starts and the first advert to the
//! latest of their stops and the last advert.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use vmlat_analyzer::{Analysis, FailoverKind, StreamKey, Timestamp, Verdict};

use crate::axis::{duration, Rows, TimeAxis};
use crate::canvas::{Area, DrawError, Figure};
use crate::font;
use crate::frame::{
    draw_mesh, draw_ticks, layout, px_width, time_chart, visible_span, Header, Legend, Mesh,
    Swatch, TimeChart, MARGIN, SMALL_SIZE,
};
use crate::style::{failover_color, stream_label, verdict_color, ADVERT, GRID, INK};

const WIDTH: u32 = 1400;
const ROW_H: u32 = 48;
const X_AXIS_H: u32 = 56;

/// The timeline of an analysis.
pub struct Timeline<'a> {
    analysis: &'a Analysis,
    axis: TimeAxis,
    rows: Rows,
    header: Header,
    legend: Legend,
    label_width: u32,
}

impl<'a> Timeline<'a> {
    pub fn new(analysis: &'a Analysis) -> Self {
        let first = (analysis.streams.iter().map(|s| s.first))
            .chain(analysis.bundles.iter().map(|b| b.started))
            .min();
        let last = (analysis.streams.iter().map(|s| s.last))
            .chain(analysis.bundles.iter().map(|b| b.stopped))
            .max();
        let (start, end) = match (first, last) {
            (Some(a), Some(b)) => (a, b),
            _ => (Timestamp(0), Timestamp(0)),
        };
        let axis = TimeAxis::padded(start, end, 0.02, 12);
        let rows = Rows::new(
            analysis
                .streams
                .iter()
                .map(|s| stream_label(&s.key))
                .collect(),
        );
        let style = font::text(SMALL_SIZE);
        let label_width = rows
            .names
            .iter()
            .map(|n| font::width(&style, n))
            .max()
            .unwrap_or(0)
            .clamp(60, WIDTH / 3)
            + 14;
        let critical = analysis.incidents.iter().filter(|i| i.critical).count();
        let title = format!(
            "Heartbeat timeline: {} streams, {} incident{} ({critical} critical), {} failovers",
            analysis.streams.len(),
            analysis.incidents.len(),
            if analysis.incidents.len() == 1 {
                ""
            } else {
                "s"
            },
            analysis.failovers.len()
        );
        let mut span = String::new();
        if first.is_some() {
            span = format!(
                "{} to {} UTC ({}). ",
                start.date_time(),
                end.time_of_day(),
                duration((end.0 - start.0) as f64 / 1e6)
            );
        }
        if analysis.streams.is_empty() {
            span += "No heartbeat stream was found in the inputs. ";
        }
        let header = Header::new(
            title,
            &[format!(
                "{span}One row per stream (capture point · protocol and group · sender); one tick per advert. \
                 Shaded: gaps, labelled with their incident's number and verdict. Triangles: failovers, in the new master's row."
            )],
            WIDTH,
        );
        let legend = Legend::new(legend_items(analysis), WIDTH);
        Timeline {
            analysis,
            axis,
            rows,
            header,
            legend,
            label_width,
        }
    }

    fn row_of(&self, key: &StreamKey) -> Option<usize> {
        self.analysis.streams.iter().position(|s| &s.key == key)
    }
}

/// The verdict of the incident a gap is part of.
fn verdict_of(a: &Analysis, g: &vmlat_analyzer::Gap) -> Verdict {
    a.incidents
        .iter()
        .find(|i| i.id == g.incident)
        .map_or(Verdict::Inconclusive, |i| i.verdict)
}

fn legend_items(a: &Analysis) -> Vec<(Swatch, String)> {
    let mut items = vec![(Swatch::Tick(ADVERT), "advert".to_string())];
    let mut verdicts: Vec<Verdict> = Vec::new();
    for g in &a.gaps {
        let v = verdict_of(a, g);
        if !verdicts.contains(&v) {
            verdicts.push(v);
            items.push((Swatch::Fill(gap_fill(v)), format!("gap: {}", v.name())));
        }
    }
    for kind in [
        FailoverKind::MasterDown,
        FailoverKind::Preempted,
        FailoverKind::Resigned,
    ] {
        if a.failovers.iter().any(|f| f.kind == kind) {
            items.push((
                Swatch::Marker(failover_color(kind)),
                format!("failover: {}", kind.name()),
            ));
        }
    }
    items
}

/// A gap's shading: its verdict's colour, lightened so ticks show through.
fn gap_fill(v: Verdict) -> RGBColor {
    let c = verdict_color(v);
    let mix = |x: u8| ((u16::from(x) * 45 + 255 * 55) / 100) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// A mark with a label in a row's label line.
struct Mark {
    x: f64,
    full: String,
    short: String,
}

impl Figure for Timeline<'_> {
    fn name(&self) -> String {
        "timeline".into()
    }

    fn size(&self) -> (u32, u32) {
        let rows = self.rows.len().max(1) as u32;
        (
            WIDTH,
            self.header.height() + rows * ROW_H + X_AXIS_H + self.legend.height() + MARGIN,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let body = layout(root, &self.header, &self.legend)?;
        let mut chart = time_chart(&body, &self.axis, self.rows.coord(), self.label_width, true)?;
        draw_mesh(
            &mut chart,
            &Mesh {
                axis: &self.axis,
                x_labels: true,
                y_label: &|y| self.rows.label(y),
                y_grid: false,
            },
        )?;
        if self.rows.is_empty() {
            let mid = self.axis.range().end / 2.0;
            chart.draw_series(std::iter::once(Text::new(
                "no heartbeat streams",
                (mid, 0.5),
                font::text(16)
                    .color(&INK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
            return Ok(());
        }
        let a = self.analysis;
        // Row separators.
        let end = self.axis.range().end;
        chart.draw_series((1..self.rows.len()).map(|i| {
            let y = i as f64;
            PathElement::new(vec![(0.0, y), (end, y)], GRID.stroke_width(1))
        }))?;
        let mut marks: Vec<Vec<(Mark, RGBColor)>> =
            (0..self.rows.len()).map(|_| Vec::new()).collect();
        for gap in &a.gaps {
            let Some(row) = self.row_of(&gap.stream) else {
                continue;
            };
            let (n, verdict) = (gap.incident, verdict_of(a, gap));
            let (bottom, top) = self.rows.band(row);
            let (x0, x1) = visible_span(&chart, self.axis.x(gap.start), self.axis.x(gap.end), 3.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, bottom + 0.04), (x1, top - 0.04)],
                gap_fill(verdict).filled(),
            )))?;
            marks[row].push((
                Mark {
                    x: x0 + px_width(&chart, 3.0),
                    full: format!("#{n} {} {}", verdict.name(), duration(gap.duration_ms)),
                    short: format!("#{n}"),
                },
                darker(verdict),
            ));
        }
        for row in 0..self.rows.len() {
            let (bottom, _) = self.rows.band(row);
            let times = a.adverts_of(&a.streams[row].key).iter().map(|ad| ad.t);
            draw_ticks(
                &mut chart,
                &self.axis,
                times,
                (bottom + 0.12, bottom + 0.55),
                ADVERT,
            )?;
        }
        for f in &a.failovers {
            // The new master's row (its first, for a unicast router with several peers).
            let row = a
                .streams
                .iter()
                .position(|s| s.key.group == f.group && s.key.src == f.to);
            let Some(row) = row else {
                continue;
            };
            let (_, top) = self.rows.band(row);
            let x = self.axis.x(f.at);
            let color = failover_color(f.kind);
            chart.draw_series(std::iter::once(TriangleMarker::new(
                (x, top - 0.2),
                6,
                color.filled(),
            )))?;
            marks[row].push((
                Mark {
                    x: x + px_width(&chart, 7.0),
                    full: f.kind.name().to_string(),
                    short: String::new(),
                },
                color,
            ));
        }
        for (row, row_marks) in marks.iter_mut().enumerate() {
            let (_, top) = self.rows.band(row);
            draw_labels(&mut chart, row_marks, top - 0.2)?;
        }
        Ok(())
    }
}

/// A verdict's colour dark enough for text on white.
fn darker(v: Verdict) -> RGBColor {
    let c = verdict_color(v);
    RGBColor(c.0 / 4 * 3, c.1 / 4 * 3, c.2 / 4 * 3)
}

/// Labels in one text line at `y`: the full text where it fits before the next mark,
/// the short one otherwise, nothing when even that would overlap (the colour in the
/// legend still tells the verdict or kind).
fn draw_labels<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    marks: &mut [(Mark, RGBColor)],
    y: f64,
) -> Result<(), DrawError> {
    marks.sort_by(|a, b| a.0.x.total_cmp(&b.0.x));
    let style = font::text(SMALL_SIZE);
    let right = chart.plotting_area().get_pixel_range().0.end;
    let px: Vec<i32> = marks
        .iter()
        .map(|(m, _)| chart.backend_coord(&(m.x, y)).0)
        .collect();
    let mut free_from = i32::MIN;
    for (i, (mark, color)) in marks.iter().enumerate() {
        let x = px[i];
        if x < free_from {
            continue;
        }
        let limit = px.get(i + 1).map_or(right, |next| (*next - 4).min(right));
        let fits = |t: &&String| !t.is_empty() && x + font::width(&style, t) as i32 <= limit;
        let Some(text) = [&mark.full, &mark.short].into_iter().find(fits) else {
            continue;
        };
        chart.draw_series(std::iter::once(Text::new(
            text.clone(),
            (mark.x, y),
            style.color(color).pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
        free_from = x + font::width(&style, text) as i32 + 6;
    }
    Ok(())
}
