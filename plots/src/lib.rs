//! vmlat's charts, HTML report and Perfetto export: renderers of the analyzer's
//! results ([`vmlat_analyzer::Analysis`]). They draw what the analysis found and never
//! compute gaps, failovers or verdicts themselves.
//!
//! - [`timeline`]: the whole recording, one row per stream.
//! - [`closeup`]: one incident and the lanes that explain its verdict.
//! - [`intervals`]: the inter-advert interval distribution of each stream.
//! - [`disks`]: iostat-style disk latency over the recording.
//! - [`html`]: one self-contained HTML page with all of the above.
//! - [`perfetto`]: Chrome trace-event JSON for Perfetto UI and chrome://tracing.
//!
//! The charts that draw packets one by one read the adverts the analysis kept
//! ([`vmlat_analyzer::AnalyzeOptions::keep_adverts`]); without them they show the
//! streams' statistics and no ticks.
//!
//! Charts are plotters figures ([`canvas::Figure`]) drawn with an embedded font
//! ([`font`]), to PNG or SVG.

pub mod axis;
pub mod canvas;
pub mod closeup;
pub mod disks;
pub mod font;
mod frame;
mod glyphs;
pub mod html;
pub mod intervals;
pub mod perfetto;
pub mod style;
pub mod timeline;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use canvas::{Figure, Format};

use canvas::{Area, DrawError};
use closeup::Closeup;
use disks::Disks;
use intervals::Intervals;
use plotters::prelude::DrawingBackend;
use timeline::Timeline;
use vmlat_analyzer::Analysis;

/// Any chart, so that a list of them can be rendered in one loop.
pub enum Chart<'a> {
    Timeline(Timeline<'a>),
    Closeup(Closeup<'a>),
    Intervals(Intervals<'a>),
    Disks(Disks<'a>),
}

impl Figure for Chart<'_> {
    fn name(&self) -> String {
        match self {
            Chart::Timeline(c) => c.name(),
            Chart::Closeup(c) => c.name(),
            Chart::Intervals(c) => c.name(),
            Chart::Disks(c) => c.name(),
        }
    }

    fn size(&self) -> (u32, u32) {
        match self {
            Chart::Timeline(c) => c.size(),
            Chart::Closeup(c) => c.size(),
            Chart::Intervals(c) => c.size(),
            Chart::Disks(c) => c.size(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        match self {
            Chart::Timeline(c) => c.draw(root),
            Chart::Closeup(c) => c.draw(root),
            Chart::Intervals(c) => c.draw(root),
            Chart::Disks(c) => c.draw(root),
        }
    }
}

/// Every chart of `analysis`: the timeline, the interval distributions, the disk
/// chart when there are disk figures, and the close-up of every incident, or only of
/// incident `only` (1-based).
pub fn charts(analysis: &Analysis, only: Option<usize>) -> Result<Vec<Chart<'_>>, PlotError> {
    let mut charts = vec![
        Chart::Timeline(Timeline::new(analysis)),
        Chart::Intervals(Intervals::new(analysis)),
    ];
    charts.extend(Disks::new(analysis).map(Chart::Disks));
    let ids = match only {
        Some(n) => vec![n],
        None => analysis.incidents.iter().map(|i| i.id).collect(),
    };
    for n in ids {
        let closeup = Closeup::new(analysis, n).ok_or(PlotError::NoSuchIncident {
            n,
            incidents: analysis.incidents.len(),
        })?;
        charts.push(Chart::Closeup(closeup));
    }
    Ok(charts)
}

/// Why a chart, report or export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("drawing the {chart} chart: {message}")]
    Draw { chart: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no incident {n}: the analysis found {incidents} (numbered from 1)")]
    NoSuchIncident { n: usize, incidents: usize },
    #[error(transparent)]
    Bundle(#[from] vmlat_bundle::BundleError),
}

impl PlotError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        PlotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
