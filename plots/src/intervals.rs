//! Chart 3, the inter-advert interval distribution of each stream: a histogram on a
//! logarithmic time axis with logarithmic counts, so that the one 4 s interval among
//! three thousand 1 s ones stands out. The advertised interval and the analyzer's
//! master-down interval (`Stream::master_down_ms`) are marked; bars above the gap
//! threshold are red.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use vmlat_analyzer::{Analysis, Stream};

use crate::axis::{duration, log_ticks, nice_max, tick_duration, Ticked};
use crate::canvas::{Area, DrawError, Figure};
use crate::font;
use crate::frame::{house_style, layout, Header, Legend, Swatch, MARGIN, SMALL_SIZE};
use crate::style::{stream_label, ADVERT, ADVERTISED, INK, MASTER_DOWN, MUTED, PALETTE};

const WIDTH: u32 = 1400;
const PANEL_TITLE_H: u32 = 22;
const PANEL_H: u32 = 160;
/// Histogram bins per decade of interval.
const BINS_PER_DECADE: f64 = 20.0;
const ABOVE_GAP: RGBColor = PALETTE[3];

/// One stream's panel.
struct Panel<'a> {
    stream: &'a Stream,
    intervals: Vec<f64>,
    threshold_ms: Option<f64>,
}

/// The interval distributions of an analysis.
pub struct Intervals<'a> {
    panels: Vec<Panel<'a>>,
    /// Shared x range in ms, so that panels compare at a glance.
    range: (f64, f64),
    header: Header,
    legend: Legend,
}

impl<'a> Intervals<'a> {
    pub fn new(analysis: &'a Analysis) -> Self {
        let panels: Vec<Panel<'a>> = analysis
            .streams
            .iter()
            .map(|stream| {
                let intervals: Vec<f64> = analysis
                    .adverts_of(&stream.key)
                    .windows(2)
                    .map(|w| (w[1].t.0 - w[0].t.0) as f64 / 1e6)
                    .filter(|v| *v > 0.0 && v.is_finite())
                    .collect();
                let threshold_ms = stream.advert_interval_ms.map(|a| a * analysis.gap_factor);
                Panel {
                    stream,
                    intervals,
                    threshold_ms,
                }
            })
            .collect();
        let values = panels.iter().flat_map(|p| {
            p.intervals
                .iter()
                .copied()
                .chain(p.stream.master_down_ms)
                .chain(p.stream.advert_interval_ms)
        });
        let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let range = if hi > 0.0 && lo < hi {
            (lo / 1.6, hi * 1.6)
        } else if hi > 0.0 {
            (hi / 4.0, hi * 4.0)
        } else {
            (100.0, 10_000.0)
        };
        let header = Header::new(
            "Inter-advert intervals per stream",
            &[format!(
                "Time between consecutive adverts of each stream (log scale), counts on a log scale. \
                 Red bars are intervals above the gap threshold ({} × the advertised interval).",
                analysis.gap_factor
            )],
            WIDTH,
        );
        let mut items = vec![
            (Swatch::Fill(ADVERT), "intervals".to_string()),
            (
                Swatch::Fill(ABOVE_GAP),
                "intervals above the gap threshold".to_string(),
            ),
            (
                Swatch::Dashed(ADVERTISED),
                "advertised interval".to_string(),
            ),
        ];
        if panels.iter().any(|p| p.stream.master_down_ms.is_some()) {
            items.push((Swatch::Dashed(MASTER_DOWN), "master-down interval".into()));
        }
        Intervals {
            panels,
            range,
            header,
            legend: Legend::new(items, WIDTH),
        }
    }
}

impl Figure for Intervals<'_> {
    fn name(&self) -> String {
        "intervals".into()
    }

    fn size(&self) -> (u32, u32) {
        let panels = self.panels.len().max(1) as u32 * (PANEL_TITLE_H + PANEL_H);
        (
            WIDTH,
            self.header.height() + panels + self.legend.height() + MARGIN,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let body = layout(root, &self.header, &self.legend)?;
        if self.panels.is_empty() {
            body.draw(&Text::new(
                "no heartbeat streams",
                (WIDTH as i32 / 2, PANEL_H as i32 / 2),
                font::text(16)
                    .color(&INK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
            return Ok(());
        }
        let areas = body.split_evenly((self.panels.len(), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            self.draw_panel(area, panel)?;
        }
        Ok(())
    }
}

impl Intervals<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        p: &Panel<'_>,
    ) -> Result<(), DrawError> {
        let (title_area, chart_area) = area.split_vertically(PANEL_TITLE_H);
        let mut title = format!(
            "{}: {} intervals",
            stream_label(&p.stream.key),
            p.intervals.len()
        );
        if let Some(s) = p.stream.interval_ms {
            title += &format!(
                "; p50 {}, p99 {}, max {}",
                duration(s.p50),
                duration(s.p99),
                duration(s.max)
            );
        }
        if let Some(a) = p.stream.advert_interval_ms {
            title += &format!("; advertised {}", duration(a));
        }
        if let Some(m) = p.stream.master_down_ms {
            title += &format!("; master-down {}", duration(m));
        }
        let room = WIDTH - 2 * MARGIN;
        title_area.draw(&Text::new(
            font::fit(&font::bold(SMALL_SIZE), &title, room),
            (MARGIN as i32, 4),
            font::bold(SMALL_SIZE).color(&INK),
        ))?;

        let (lo, hi) = self.range;
        let bins = histogram(&p.intervals, lo);
        let max_count = bins.iter().map(|b| b.2).max().unwrap_or(0);
        let top = nice_max(max_count as f64 * 1.5).max(10.0);
        let y_ticks = log_ticks(1.0, top)
            .into_iter()
            .filter(|v| v.log10().fract() == 0.0)
            .collect();
        let x_ticks = log_ticks(lo, hi);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_right(MARGIN)
            .margin_left(MARGIN)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(Ticked::log(lo..hi, x_ticks), Ticked::log(0.7..top, y_ticks))?;
        let x_fmt = |v: &f64| tick_duration(*v);
        let y_fmt = |v: &f64| format!("{v:.0}");
        let mut mesh = chart.configure_mesh();
        house_style(&mut mesh);
        mesh.x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc("interval between consecutive adverts (log scale)")
            .y_desc("count (log)")
            .draw()?;
        let threshold = p.threshold_ms.unwrap_or(f64::INFINITY);
        chart.draw_series(bins.iter().map(|&(a, b, n)| {
            let color = if (a * b).sqrt() > threshold {
                ABOVE_GAP
            } else {
                ADVERT
            };
            Rectangle::new([(a, 0.7), (b, n as f64)], color.filled())
        }))?;
        let mut marks = Vec::new();
        if let Some(a) = p.stream.advert_interval_ms {
            marks.push((a, ADVERTISED));
        }
        if let Some(m) = p.stream.master_down_ms {
            marks.push((m, MASTER_DOWN));
        }
        for (x, color) in marks {
            let steps = 14;
            let ratio = (top / 0.7f64).powf(1.0 / f64::from(steps));
            chart.draw_series((0..steps).step_by(2).map(|i| {
                let y0 = 0.7 * ratio.powi(i);
                PathElement::new(vec![(x, y0), (x, y0 * ratio)], color.stroke_width(2))
            }))?;
        }
        if p.intervals.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "fewer than two adverts: no interval",
                ((lo * hi).sqrt(), (top * 0.7).sqrt()),
                font::text(SMALL_SIZE)
                    .color(&MUTED)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
        }
        Ok(())
    }
}

/// Log-spaced bins from `lo`: (lower edge, upper edge, count) of the non-empty ones.
fn histogram(values: &[f64], lo: f64) -> Vec<(f64, f64, u64)> {
    let origin = (lo.log10() * BINS_PER_DECADE).floor();
    let mut counts: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for v in values {
        let bin = ((v.log10() * BINS_PER_DECADE).floor() - origin) as i64;
        *counts.entry(bin).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(bin, n)| {
            let edge = |b: i64| 10f64.powf((b as f64 + origin) / BINS_PER_DECADE);
            (edge(bin), edge(bin + 1), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::histogram;

    #[test]
    fn bins_are_log_spaced_and_count_everything() {
        let bins = histogram(&[1000.0, 1001.0, 999.0, 4435.0], 500.0);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 4);
        for (a, b, _) in &bins {
            assert!((b / a - 10f64.powf(0.05)).abs() < 1e-9);
        }
        assert!(histogram(&[], 1.0).is_empty());
    }
}
