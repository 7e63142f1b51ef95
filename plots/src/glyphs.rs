//! Text for bitmaps, drawn right. plotters' ab_glyph text path places each glyph at a
//! whole-pixel pen position without its side bearing and aligns glyphs by their own
//! boxes, so spacing is uneven and full stops float. [`TextFix`] wraps a backend and
//! draws text itself: glyphs from the embedded font at fractional pen positions with
//! kerning, on a common baseline, anchored and rotated as plotters asks. Everything
//! else goes to the wrapped backend untouched.
//!
//! Widths are the ones plotters' layout measures (advances plus kerning), so labels
//! placed from [`crate::font::width`] land where they were planned.

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};

/// A backend whose text is drawn by this module.
pub struct TextFix<B> {
    inner: B,
}

impl<B> TextFix<B> {
    pub fn new(inner: B) -> Self {
        TextFix { inner }
    }
}

impl<B: DrawingBackend> DrawingBackend for TextFix<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        let bold = matches!(style.style(), FontStyle::Bold);
        let Some(font) = crate::font::face(bold) else {
            return Ok(());
        };
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let scale = PxScale::from(size);
        let scaled = font.as_scaled(scale);
        let (glyphs, width) = layout(&scaled, text);
        // The box plotters lays text out in: the advance width by size / 1.24.
        let height = size / 1.24;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        // Capitals centred in the box: what reads as "vertically centred" text.
        let baseline = dy + (height + cap_height(font, scale)) / 2.0;
        let trans = style.transform();
        let (w, h) = self.inner.get_size();
        for (id, x) in glyphs {
            let glyph = id.with_scale_and_position(scale, point(dx + x, baseline));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let local = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                let (tx, ty) = trans.transform(local.0, local.1);
                let (px, py) = (pos.0 + tx, pos.1 + ty);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    result = self.inner.draw_pixel(
                        (px, py),
                        BackendColor {
                            alpha: color.alpha * f64::from(coverage.min(1.0)),
                            rgb: color.rgb,
                        },
                    );
                }
            });
            result?;
        }
        Ok(())
    }
}

/// Glyphs of `text` with their pen positions, and the advance width of the whole.
fn layout<F: Font>(font: &impl ScaleFont<F>, text: &str) -> (Vec<(GlyphId, f32)>, f32) {
    let mut pen = 0.0;
    let mut prev: Option<GlyphId> = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        glyphs.push((id, pen));
        pen += font.h_advance(id);
        prev = Some(id);
    }
    (glyphs, pen)
}

/// The height of a capital H at `scale`.
fn cap_height(font: &FontRef<'static>, scale: PxScale) -> f32 {
    let glyph = font
        .glyph_id('H')
        .with_scale_and_position(scale, point(0.0, 0.0));
    font.outline_glyph(glyph)
        .map_or(scale.y * 0.6, |o| -o.px_bounds().min.y)
}
