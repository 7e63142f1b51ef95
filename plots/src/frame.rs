//! The furniture every chart shares: a header (title and wrapped subtitle lines), a
//! legend below the plot that wraps instead of covering data, the time mesh, and a
//! greedy placer that keeps labels from overlapping.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{nice_max, Ticked, TimeAxis};
use crate::canvas::{Area, DrawError};
use crate::font;
use crate::style::{GRID, INK, MUTED};

/// Space around a figure's content.
pub const MARGIN: u32 = 16;
pub const TITLE_SIZE: u32 = 20;
pub const TEXT_SIZE: u32 = 13;
pub const SMALL_SIZE: u32 = 12;
const LINE_GAP: u32 = 5;

/// A chart's title and the lines under it, wrapped to the figure's width.
pub struct Header {
    title: String,
    lines: Vec<String>,
}

impl Header {
    pub fn new(title: impl Into<String>, subtitle: &[String], width: u32) -> Self {
        let room = width.saturating_sub(2 * MARGIN);
        let style = font::text(TEXT_SIZE);
        let title = font::fit(&font::bold(TITLE_SIZE), &title.into(), room);
        let lines = subtitle
            .iter()
            .flat_map(|l| font::wrap(&style, l, room))
            .collect();
        Header { title, lines }
    }

    pub fn height(&self) -> u32 {
        MARGIN + TITLE_SIZE + LINE_GAP * 2 + self.lines.len() as u32 * (TEXT_SIZE + LINE_GAP)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), DrawError> {
        let m = MARGIN as i32;
        area.draw(&Text::new(
            self.title.clone(),
            (m, m),
            font::bold(TITLE_SIZE).color(&INK),
        ))?;
        let mut y = m + (TITLE_SIZE + LINE_GAP * 2) as i32;
        for line in &self.lines {
            area.draw(&Text::new(
                line.clone(),
                (m, y),
                font::text(TEXT_SIZE).color(&INK),
            ))?;
            y += (TEXT_SIZE + LINE_GAP) as i32;
        }
        Ok(())
    }
}

/// What a legend entry shows next to its label.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    Fill(RGBColor),
    Line(RGBColor),
    Dashed(RGBColor),
    /// A thin vertical mark: one packet.
    Tick(RGBColor),
    /// A triangle: an event such as a failover.
    Marker(RGBColor),
}

const SWATCH_W: i32 = 22;
const ITEM_GAP: u32 = 18;
const LEGEND_ROW: u32 = 20;

/// Legend entries laid out in rows that fit the figure's width.
pub struct Legend {
    rows: Vec<Vec<(Swatch, String, u32)>>,
}

impl Legend {
    pub fn new(items: Vec<(Swatch, String)>, width: u32) -> Self {
        let room = width.saturating_sub(2 * MARGIN);
        let style = font::text(SMALL_SIZE);
        let mut rows: Vec<Vec<(Swatch, String, u32)>> = Vec::new();
        let mut used = 0u32;
        for (swatch, label) in items {
            let label = font::fit(&style, &label, room.saturating_sub(SWATCH_W as u32 + 6));
            let w = SWATCH_W as u32 + 6 + font::width(&style, &label);
            match rows.last_mut() {
                Some(row) if used + ITEM_GAP + w <= room => {
                    used += ITEM_GAP + w;
                    row.push((swatch, label, w));
                }
                _ => {
                    used = w;
                    rows.push(vec![(swatch, label, w)]);
                }
            }
        }
        Legend { rows }
    }

    pub fn height(&self) -> u32 {
        if self.rows.is_empty() {
            0
        } else {
            self.rows.len() as u32 * LEGEND_ROW + MARGIN
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), DrawError> {
        let style = font::text(SMALL_SIZE)
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (r, row) in self.rows.iter().enumerate() {
            let y = (r as u32 * LEGEND_ROW + LEGEND_ROW / 2) as i32;
            let mut x = MARGIN as i32;
            for (swatch, label, w) in row {
                draw_swatch(area, *swatch, x, y)?;
                area.draw(&Text::new(
                    label.clone(),
                    (x + SWATCH_W + 6, y),
                    style.clone(),
                ))?;
                x += (*w + ITEM_GAP) as i32;
            }
        }
        Ok(())
    }
}

fn draw_swatch<DB: DrawingBackend>(
    area: &Area<DB>,
    swatch: Swatch,
    x: i32,
    y: i32,
) -> Result<(), DrawError> {
    let right = x + SWATCH_W;
    match swatch {
        Swatch::Fill(c) => {
            area.draw(&Rectangle::new([(x, y - 6), (right, y + 6)], c.filled()))?;
            area.draw(&Rectangle::new(
                [(x, y - 6), (right, y + 6)],
                MUTED.stroke_width(1),
            ))?;
        }
        Swatch::Line(c) => {
            area.draw(&PathElement::new(
                vec![(x, y), (right, y)],
                c.stroke_width(2),
            ))?;
        }
        Swatch::Dashed(c) => {
            for dx in (0..SWATCH_W).step_by(8) {
                let end = (x + dx + 5).min(right);
                area.draw(&PathElement::new(
                    vec![(x + dx, y), (end, y)],
                    c.stroke_width(2),
                ))?;
            }
        }
        Swatch::Tick(c) => {
            let mid = x + SWATCH_W / 2;
            area.draw(&PathElement::new(
                vec![(mid, y - 7), (mid, y + 7)],
                c.stroke_width(2),
            ))?;
        }
        Swatch::Marker(c) => {
            area.draw(&TriangleMarker::new((x + SWATCH_W / 2, y), 6, c.filled()))?;
        }
    }
    Ok(())
}

/// Draws the header and legend of a figure and returns the area between them.
pub fn layout<DB: DrawingBackend>(
    root: &Area<DB>,
    header: &Header,
    legend: &Legend,
) -> Result<Area<DB>, DrawError> {
    let (top, rest) = root.split_vertically(header.height());
    header.draw(&top)?;
    let (_, h) = rest.dim_in_pixel();
    let (body, bottom) = rest.split_vertically(h.saturating_sub(legend.height()));
    legend.draw(&bottom)?;
    Ok(body)
}

/// A chart over UTC time with rows or values on a linear y.
pub type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// How a time chart's axes are labelled.
pub struct Mesh<'a> {
    pub axis: &'a TimeAxis,
    /// Tick labels and title under the x axis; lanes above the bottom one go without.
    pub x_labels: bool,
    pub y_label: &'a dyn Fn(f64) -> String,
    /// Horizontal grid lines (numeric y); rows have none.
    pub y_grid: bool,
}

/// Draws the grid, ticks and labels of a time chart.
pub fn draw_mesh<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    mesh: &Mesh<'_>,
) -> Result<(), DrawError> {
    let x_fmt = |x: &f64| {
        if mesh.x_labels {
            mesh.axis.label(*x)
        } else {
            String::new()
        }
    };
    let y_fmt = |y: &f64| (mesh.y_label)(*y);
    let desc = mesh.axis.desc();
    let mut m = chart.configure_mesh();
    house_style(&mut m);
    m.x_label_formatter(&x_fmt).y_label_formatter(&y_fmt);
    if mesh.x_labels {
        m.x_desc(desc);
    }
    if !mesh.y_grid {
        m.disable_y_mesh();
    }
    m.draw()?;
    Ok(())
}

/// A chart's plot area split off from `area`: the y label column of `label_width`
/// pixels, and room for x tick labels when `x_labels`.
pub fn time_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axis: &TimeAxis,
    y: Ticked,
    label_width: u32,
    x_labels: bool,
) -> Result<TimeChart<'a, DB>, DrawError> {
    Ok(ChartBuilder::on(area)
        // Room for half of the last tick label.
        .margin_right(2 * MARGIN)
        .margin_top(4)
        .x_label_area_size(if x_labels { 44 } else { 0 })
        .y_label_area_size(label_width)
        .build_cartesian_2d(axis.coord(), y)?)
}

/// A named, coloured series of values over time.
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(vmlat_analyzer::Timestamp, f64)>,
}

/// A time chart of values in `unit`, its y axis from 0 to a round value above the
/// largest point on the axis (or to `top` when given, e.g. 100 %), mesh drawn. The
/// caller draws any overlay, then [`draw_steps`].
pub fn series_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axis: &TimeAxis,
    label_width: u32,
    x_labels: bool,
    unit: &str,
    series: &[Series],
    top: Option<f64>,
) -> Result<TimeChart<'a, DB>, DrawError> {
    let top = top.unwrap_or_else(|| {
        nice_max(
            series
                .iter()
                .flat_map(|s| s.points.iter().filter(|(t, _)| axis.contains(*t)))
                .map(|(_, v)| *v)
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max),
        )
    });
    let ticks = vec![0.0, top / 2.0, top];
    let mut chart = time_chart(
        area,
        axis,
        Ticked::new(0.0..top, ticks),
        label_width,
        x_labels,
    )?;
    let fmt = |y: f64| {
        let v = if top >= 10.0 {
            format!("{y:.0}")
        } else {
            format!("{y:.1}")
        };
        if unit.is_empty() {
            v
        } else {
            format!("{v} {unit}")
        }
    };
    draw_mesh(
        &mut chart,
        &Mesh {
            axis,
            x_labels,
            y_label: &fmt,
            y_grid: true,
        },
    )?;
    Ok(chart)
}

/// Draws each series as a step line: a value holds for the sample interval that ends
/// at its time, as iostat and /proc/stat deltas mean it.
pub fn draw_steps<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    axis: &TimeAxis,
    series: &[Series],
) -> Result<(), DrawError> {
    let top = chart.y_range().end;
    for s in series {
        let mut steps = Vec::with_capacity(s.points.len() * 2);
        let mut prev: Option<f64> = None;
        for (t, v) in s.points.iter().filter(|(_, v)| v.is_finite()) {
            let x = axis.x(*t);
            let v = v.clamp(0.0, top);
            if let Some(p) = prev {
                steps.push((x, p));
            }
            steps.push((x, v));
            prev = Some(v);
        }
        chart.draw_series(std::iter::once(PathElement::new(
            steps,
            s.color.stroke_width(2),
        )))?;
    }
    Ok(())
}

/// The fonts and colours of every chart's axes and grid.
pub fn house_style<X, Y, DB>(m: &mut MeshStyle<'_, '_, X, Y, DB>)
where
    X: Ranged,
    Y: Ranged,
    DB: DrawingBackend,
{
    m.label_style(font::text(SMALL_SIZE).color(&INK))
        .axis_desc_style(font::text(TEXT_SIZE).color(&INK))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED);
}

/// Assigns each label, sorted by `x`, the first of `levels` text lines where it does
/// not overlap an earlier one; `None` when no line has room. Spans are pixel
/// `(x, width)`.
pub fn place(spans: &[(i32, u32)], levels: usize) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| spans[i].0);
    let mut ends = vec![i32::MIN; levels];
    let mut placed = vec![None; spans.len()];
    for i in order {
        let (x, w) = spans[i];
        if let Some(level) = ends.iter().position(|&end| x > end.saturating_add(6)) {
            ends[level] = x.saturating_add(w as i32);
            placed[i] = Some(level);
        }
    }
    placed
}

/// Draws one thin vertical tick per packet between `y0` and `y1`. Packets that land on
/// the same pixel column share one tick, so an hour of adverts stays a few thousand
/// lines (and a small SVG).
pub fn draw_ticks<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    axis: &TimeAxis,
    times: impl Iterator<Item = vmlat_analyzer::Timestamp>,
    (y0, y1): (f64, f64),
    color: RGBColor,
) -> Result<(), DrawError> {
    let mut columns: Vec<i32> = Vec::new();
    let mut xs = Vec::new();
    for t in times.filter(|t| axis.contains(*t)) {
        let x = axis.x(t);
        let px = chart.backend_coord(&(x, y0)).0;
        if columns.last() != Some(&px) {
            columns.push(px);
            xs.push(x);
        }
    }
    // Two pixels wide: one packet must be seen at a glance.
    let half = px_width(chart, 1.0);
    chart.draw_series(
        xs.into_iter()
            .map(|x| Rectangle::new([(x - half, y0), (x + half, y1)], color.filled())),
    )?;
    Ok(())
}

/// A span `[x0, x1]` widened to at least `min_px` pixels around its middle, so that a
/// short gap or state stays visible at any zoom.
pub fn visible_span<DB: DrawingBackend>(
    chart: &TimeChart<'_, DB>,
    x0: f64,
    x1: f64,
    min_px: f64,
) -> (f64, f64) {
    let min = px_width(chart, min_px);
    if x1 - x0 >= min {
        (x0, x1)
    } else {
        let mid = (x0 + x1) / 2.0;
        (mid - min / 2.0, mid + min / 2.0)
    }
}

/// How much x `px` pixels cover.
pub fn px_width<DB: DrawingBackend>(chart: &TimeChart<'_, DB>, px: f64) -> f64 {
    let range = chart.x_range();
    let (w, _) = chart.plotting_area().dim_in_pixel();
    (range.end - range.start) / f64::from(w.max(1)) * px
}

#[cfg(test)]
mod tests {
    use super::place;

    #[test]
    fn labels_take_the_first_free_line() {
        let spans = [(0, 50), (20, 50), (40, 50), (200, 10)];
        assert_eq!(place(&spans, 2), vec![Some(0), Some(1), None, Some(0)]);
        assert!(place(&[], 3).is_empty());
        assert_eq!(place(&[(0, 10)], 0), vec![None]);
    }
}
