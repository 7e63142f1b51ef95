//! The embedded font. Charts draw text with ab_glyph from DejaVu Sans compiled into the
//! binary, so that rendering needs no fontconfig and no font installed on the machine
//! (a production box or a CI container often has neither).
//!
//! The font is registered under the generic name `sans-serif`: bitmaps use DejaVu Sans,
//! and SVG text elements name `sans-serif`, which every browser can render offline.

use std::sync::{Once, OnceLock};

use ab_glyph::FontRef;

use plotters::style::{register_font, FontFamily, FontStyle, IntoFont, TextStyle};

static REGULAR: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// The family every chart uses.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process; every renderer calls it first.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both files ship in this crate and are valid TrueType: a failure here means
        // a broken build, and text would silently vanish, so it is reported loudly.
        if register_font(FAMILY, FontStyle::Normal, REGULAR).is_err()
            || register_font(FAMILY, FontStyle::Bold, BOLD).is_err()
        {
            eprintln!("vmlat-plots: the embedded font does not load; charts will lack text");
        }
    });
}

/// The parsed regular or bold face, for the bitmap text renderer ([`crate::glyphs`]).
pub fn face(bold: bool) -> Option<&'static FontRef<'static>> {
    static FACES: OnceLock<(Option<FontRef<'static>>, Option<FontRef<'static>>)> = OnceLock::new();
    let (regular, heavy) = FACES.get_or_init(|| {
        (
            FontRef::try_from_slice(REGULAR).ok(),
            FontRef::try_from_slice(BOLD).ok(),
        )
    });
    if bold {
        heavy.as_ref()
    } else {
        regular.as_ref()
    }
}

/// Regular text of `size` pixels.
pub fn text(size: u32) -> TextStyle<'static> {
    register();
    (FontFamily::Name(FAMILY), size).into_font().into()
}

/// Bold text of `size` pixels.
pub fn bold(size: u32) -> TextStyle<'static> {
    register();
    (FontFamily::Name(FAMILY), size)
        .into_font()
        .style(FontStyle::Bold)
        .into()
}

/// Width in pixels of `s` drawn in `style`; a measuring failure counts as wide, so that
/// layout errs on the side of room.
pub fn width(style: &TextStyle<'_>, s: &str) -> u32 {
    register();
    style
        .font
        .box_size(s)
        .map(|(w, _)| w)
        .unwrap_or(style.font.get_size() as u32 * s.chars().count() as u32)
}

/// `s` cut to fit `max` pixels, with an ellipsis when cut; empty when not even one
/// character fits.
pub fn fit(style: &TextStyle<'_>, s: &str, max: u32) -> String {
    if width(style, s) <= max {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    for keep in (1..chars.len()).rev() {
        let cut: String = chars[..keep].iter().collect::<String>() + "…";
        if width(style, &cut) <= max {
            return cut;
        }
    }
    String::new()
}

/// `s` broken at spaces into lines no wider than `max` pixels (a single word wider than
/// `max` is cut with an ellipsis).
pub fn wrap(style: &TextStyle<'_>, s: &str, max: u32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if width(style, &candidate) <= max || line.is_empty() {
            line = candidate;
        } else {
            lines.push(fit(style, &line, max));
            line = word.to_string();
        }
    }
    if !line.is_empty() {
        lines.push(fit(style, &line, max));
    }
    lines
}
