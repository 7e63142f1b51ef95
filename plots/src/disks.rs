//! Chart 4, disk latency over the recording, as `iostat -x` reports it: per device,
//! r_await and w_await (ms), the queue (aqu-sz, and requests in flight, the only sign
//! of an I/O that has not completed yet) and %util, one sample interval per point.

use plotters::prelude::*;
use vmlat_analyzer::{Analysis, DiskLane, DiskPoint};

use crate::axis::TimeAxis;
use crate::canvas::{Area, DrawError, Figure};
use crate::font;
use crate::frame::{
    draw_steps, layout, series_chart, Header, Legend, Series, Swatch, MARGIN, SMALL_SIZE,
};
use crate::style::{INK, PALETTE};

const WIDTH: u32 = 1400;
const TITLE_H: u32 = 22;
const PANEL_H: u32 = 170;
const LABEL_W: u32 = 64;

/// One line of a panel: its name, colour, and the figure it draws.
type Line = (&'static str, RGBColor, fn(&DiskPoint) -> f64);

/// What one column of panels shows.
struct Column {
    title: &'static str,
    unit: &'static str,
    top: Option<f64>,
    series: &'static [Line],
}

const COLUMNS: [Column; 3] = [
    Column {
        title: "await (ms)",
        unit: "ms",
        top: None,
        series: &[
            ("r_await", PALETTE[0], |p| p.r_await_ms),
            ("w_await", PALETTE[1], |p| p.w_await_ms),
        ],
    },
    Column {
        title: "queue (requests)",
        unit: "req",
        top: None,
        series: &[
            ("aqu-sz", PALETTE[2], |p| p.aqu_sz),
            ("in flight", PALETTE[4], |p| p.in_flight as f64),
        ],
    },
    Column {
        title: "utilisation (%)",
        unit: "%",
        top: Some(100.0),
        series: &[("%util", PALETTE[3], |p| p.util_pct)],
    },
];

/// The disk chart of an analysis; `None` when it holds no disk figures (capture files
/// only, or nothing did I/O).
pub struct Disks<'a> {
    disks: &'a [DiskLane],
    axis: TimeAxis,
    header: Header,
    legend: Legend,
}

impl<'a> Disks<'a> {
    pub fn new(analysis: &'a Analysis) -> Option<Self> {
        let disks = analysis.disks.as_slice();
        let times = disks.iter().flat_map(|d| d.points.iter().map(|p| p.t));
        let start = times.clone().min()?;
        let end = times.max().unwrap_or(start);
        let axis = TimeAxis::padded(start, end, 0.01, 6);
        let header = Header::new(
            format!("Disk latency: {} device(s), iostat -x figures", disks.len()),
            &[format!(
                "{} to {} UTC. Each point is one sample interval of /proc/diskstats, computed as iostat -x does; \
                 an I/O that has not completed yet shows only as requests in flight.",
                start.date_time(),
                end.time_of_day()
            )],
            WIDTH,
        );
        let legend = Legend::new(
            COLUMNS
                .iter()
                .flat_map(|c| c.series.iter())
                .map(|(name, color, _)| (Swatch::Line(*color), name.to_string()))
                .collect(),
            WIDTH,
        );
        Some(Disks {
            disks,
            axis,
            header,
            legend,
        })
    }
}

impl Figure for Disks<'_> {
    fn name(&self) -> String {
        "disks".into()
    }

    fn size(&self) -> (u32, u32) {
        let rows = self.disks.len() as u32 * (TITLE_H + PANEL_H);
        (
            WIDTH,
            self.header.height() + rows + self.legend.height() + MARGIN,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let body = layout(root, &self.header, &self.legend)?;
        let rows = body.split_evenly((self.disks.len().max(1), 1));
        for (disk, row) in self.disks.iter().zip(&rows) {
            let cells = row.split_evenly((1, COLUMNS.len()));
            for (column, cell) in COLUMNS.iter().zip(&cells) {
                let (title, panel) = cell.split_vertically(TITLE_H);
                title.draw(&Text::new(
                    format!("{} ({}): {}", disk.device, disk.host, column.title),
                    (MARGIN as i32, 4),
                    font::bold(SMALL_SIZE).color(&INK),
                ))?;
                let series: Vec<Series> = column
                    .series
                    .iter()
                    .map(|(name, color, f)| Series {
                        name: name.to_string(),
                        color: *color,
                        points: disk.points.iter().map(|p| (p.t, f(p))).collect(),
                    })
                    .collect();
                let mut chart = series_chart(
                    &panel,
                    &self.axis,
                    LABEL_W,
                    true,
                    column.unit,
                    &series,
                    column.top,
                )?;
                draw_steps(&mut chart, &self.axis, &series)?;
            }
        }
        Ok(())
    }
}
