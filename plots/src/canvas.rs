//! Rendering a figure to a PNG file or to an SVG string. Every chart is a [`Figure`]
//! drawn on any plotters backend, so the PNG of `vmlat plot` and the inline SVG of
//! the HTML report are the same drawing.

use std::fmt;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::glyphs::TextFix;
use crate::PlotError;

/// A failure inside plotters, as text: the backends' error types differ, the message
/// is all a user needs.
#[derive(Debug)]
pub struct DrawError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

impl fmt::Display for DrawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The root drawing area of a figure.
pub type Area<DB> = DrawingArea<DB, Shift>;

/// A chart that knows its size before it is drawn.
pub trait Figure {
    /// File stem of the chart: `timeline`, `gap-1`, ...
    fn name(&self) -> String;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`, already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError>;
}

/// An image format `vmlat plot` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Writes `figure` to `path` in `format`.
pub fn write(figure: &impl Figure, format: Format, path: &Path) -> Result<(), PlotError> {
    match format {
        Format::Png => {
            let backend = TextFix::new(BitMapBackend::new(path, figure.size()));
            let root = backend.into_drawing_area();
            paint(figure, &root)?;
            root.present().map_err(|e| draw_error(figure, e.into()))
        }
        Format::Svg => std::fs::write(path, svg(figure)?).map_err(|e| PlotError::io(path, e)),
    }
}

/// The figure as a standalone SVG document (text as `<text>` in `sans-serif`).
pub fn svg(figure: &impl Figure) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, figure.size()).into_drawing_area();
        paint(figure, &root)?;
        root.present().map_err(|e| draw_error(figure, e.into()))?;
    }
    Ok(out)
}

fn paint<DB: DrawingBackend>(figure: &impl Figure, root: &Area<DB>) -> Result<(), PlotError> {
    crate::font::register();
    root.fill(&WHITE)
        .map_err(DrawError::from)
        .and_then(|()| figure.draw(root))
        .map_err(|e| draw_error(figure, e))
}

fn draw_error(figure: &impl Figure, e: DrawError) -> PlotError {
    PlotError::Draw {
        chart: figure.name(),
        message: e.0,
    }
}
