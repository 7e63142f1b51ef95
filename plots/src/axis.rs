//! Axes shared by every chart: a UTC time axis whose ticks fall on round wall-clock
//! times, and categorical rows (streams, capture points, CPUs) drawn top to bottom.
//!
//! Chart x coordinates are seconds since the axis origin as `f64`: plotters wants a
//! float range, and seconds relative to a nearby origin keep nanosecond detail that
//! seconds since the epoch would round away.

use std::ops::Range;

use chrono::DateTime;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use vmlat_analyzer::Timestamp;

const NS: i64 = 1_000_000_000;
/// Tick steps a reader finds natural, from 1 ms to a day.
const STEPS_NS: &[i64] = &[
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    NS,
    2 * NS,
    5 * NS,
    10 * NS,
    15 * NS,
    30 * NS,
    60 * NS,
    120 * NS,
    300 * NS,
    600 * NS,
    900 * NS,
    1800 * NS,
    3600 * NS,
    7200 * NS,
    3 * 3600 * NS,
    6 * 3600 * NS,
    12 * 3600 * NS,
    24 * 3600 * NS,
];

/// A time axis from `start` to `end`, labelled in UTC.
#[derive(Debug, Clone)]
pub struct TimeAxis {
    origin: i64,
    span_ns: i64,
    step_ns: i64,
}

impl TimeAxis {
    /// An axis over `start..end` with at most about `max_ticks` labels. An empty or
    /// reversed range becomes one millisecond wide, so that nothing divides by zero.
    pub fn new(start: Timestamp, end: Timestamp, max_ticks: usize) -> Self {
        let span_ns = end.0.saturating_sub(start.0).max(1_000_000);
        let max_ticks = max_ticks.max(2) as i64;
        let step_ns = STEPS_NS
            .iter()
            .copied()
            .find(|step| span_ns / step <= max_ticks)
            .unwrap_or_else(|| {
                // Longer than max_ticks days: whole numbers of days.
                let day = 24 * 3600 * NS;
                day * (span_ns / day / max_ticks + 1)
            });
        TimeAxis {
            origin: start.0,
            span_ns,
            step_ns,
        }
    }

    /// `[start - pad, end + pad]` where pad is `fraction` of the span, so that marks
    /// at the very edges stay inside the plot.
    pub fn padded(start: Timestamp, end: Timestamp, fraction: f64, max_ticks: usize) -> Self {
        let span = end.0.saturating_sub(start.0).max(1_000_000);
        let pad = (span as f64 * fraction) as i64;
        TimeAxis::new(
            Timestamp(start.0.saturating_sub(pad)),
            Timestamp(end.0.saturating_add(pad)),
            max_ticks,
        )
    }

    pub fn start(&self) -> Timestamp {
        Timestamp(self.origin)
    }

    pub fn end(&self) -> Timestamp {
        Timestamp(self.origin.saturating_add(self.span_ns))
    }

    /// The chart coordinate of `t`, clamped to the axis so that a mark outside the
    /// window is drawn at its edge rather than off the canvas.
    pub fn x(&self, t: Timestamp) -> f64 {
        let rel = t.0.saturating_sub(self.origin).clamp(0, self.span_ns);
        rel as f64 / NS as f64
    }

    /// Whether `t` falls on the axis.
    pub fn contains(&self, t: Timestamp) -> bool {
        t.0 >= self.origin && t.0 - self.origin <= self.span_ns
    }

    pub fn range(&self) -> Range<f64> {
        0.0..self.span_ns as f64 / NS as f64
    }

    /// The range with its ticks on round UTC times.
    pub fn coord(&self) -> Ticked {
        // i128: a tick before the origin or past the end must not overflow at the
        // edges of the i64 range.
        let (origin, step, span) = (
            i128::from(self.origin),
            i128::from(self.step_ns),
            i128::from(self.span_ns),
        );
        let first = origin.div_euclid(step) * step;
        let ticks = (0..)
            .map(|i| first + i * step)
            .skip_while(|t| *t < origin)
            .take_while(|t| *t - origin <= span)
            .map(|t| (t - origin) as f64 / NS as f64)
            .collect();
        Ticked::new(self.range(), ticks)
    }

    /// The UTC time at chart coordinate `x`, as precise as the tick step needs.
    pub fn label(&self, x: f64) -> String {
        let t = self.origin.saturating_add((x * NS as f64).round() as i64);
        let at = DateTime::from_timestamp_nanos(t);
        let decimals = match self.step_ns {
            s if s >= 24 * 3600 * NS => return at.format("%m-%d").to_string(),
            s if s >= 60 * NS => return at.format("%H:%M").to_string(),
            s if s >= NS => 0,
            s if s >= 100_000_000 => 1,
            s if s >= 10_000_000 => 2,
            _ => 3,
        };
        let hms = at.format("%H:%M:%S").to_string();
        if decimals == 0 {
            return hms;
        }
        let frac = t.rem_euclid(NS) / 10i64.pow(9 - decimals);
        format!("{hms}.{frac:0width$}", width = decimals as usize)
    }

    /// The axis title: the clock and the date(s) it covers.
    pub fn desc(&self) -> String {
        let date = |t: i64| {
            DateTime::from_timestamp_nanos(t)
                .format("%Y-%m-%d")
                .to_string()
        };
        let (first, last) = (date(self.origin), date(self.end().0));
        if first == last {
            format!("time, UTC ({first})")
        } else {
            format!("time, UTC ({first} to {last})")
        }
    }
}

/// Categorical rows, the first on top. Row `i` spans `y` from `n - i - 1` to `n - i`.
#[derive(Debug, Clone)]
pub struct Rows {
    pub names: Vec<String>,
}

impl Rows {
    pub fn new(names: Vec<String>) -> Self {
        Rows { names }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The y coordinates of row `i`: (bottom, top).
    pub fn band(&self, i: usize) -> (f64, f64) {
        let bottom = self.names.len().saturating_sub(i + 1) as f64;
        (bottom, bottom + 1.0)
    }

    /// A y range with one key point at the middle of each row, for its label. At least
    /// one row high, so that an empty chart still has a plot area.
    pub fn coord(&self) -> Ticked {
        let n = self.names.len().max(1) as f64;
        let mids = (0..self.names.len()).map(|i| i as f64 + 0.5).collect();
        Ticked::new(0.0..n, mids)
    }

    /// The name of the row whose middle is at `y`.
    pub fn label(&self, y: f64) -> String {
        let from_bottom = y.floor().max(0.0) as usize;
        self.names
            .len()
            .checked_sub(from_bottom + 1)
            .and_then(|i| self.names.get(i))
            .cloned()
            .unwrap_or_default()
    }
}

/// An `f64` axis whose ticks are given, not computed: round UTC times, row middles,
/// 1-2-5 durations. (plotters' own key-point binding drops the default label
/// formatting that the mesh's formatter closures need.)
#[derive(Debug, Clone)]
pub struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
    log: bool,
}

impl Ticked {
    /// A linear axis.
    pub fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Ticked {
            range,
            ticks,
            log: false,
        }
    }

    /// A logarithmic axis; `range` must be positive (values at or below zero are drawn
    /// at its start).
    pub fn log(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Ticked {
            range,
            ticks,
            log: true,
        }
    }

    fn scale(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).ln()
        } else {
            v
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let start = self.scale(self.range.start);
        let span = self.scale(self.range.end) - start;
        if span <= 0.0 || !span.is_finite() {
            return (limit.0 + limit.1) / 2;
        }
        let f = ((self.scale(*value) - start) / span).clamp(-1.0, 2.0);
        limit.0 + ((limit.1 - limit.0) as f64 * f).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// `1.5 s`, `250 ms`, `40 µs`: a duration in the unit that reads best.
pub fn duration(ms: f64) -> String {
    let abs = ms.abs();
    if abs >= 1_000.0 {
        format!("{:.3} s", ms / 1e3)
    } else if abs >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.0} µs", ms * 1e3)
    }
}

/// 1-2-5 steps from `lo` to `hi` for a logarithmic axis: 1, 2, 5, 10, 20, 50, ...
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi && ticks.len() < 64 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A round top for a value axis: 1, 2 or 5 × 10^k at or above `max`, at least 1.
pub fn nice_max(max: f64) -> f64 {
    if max.is_nan() || max <= 1.0 {
        return 1.0;
    }
    if max.is_infinite() {
        return f64::MAX;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

/// A tick label: `500 ms`, `1 s`, `2.5 s`, no needless zeros.
pub fn tick_duration(ms: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if ms.abs() >= 1_000.0 {
        format!("{} s", trim(ms / 1e3))
    } else if ms.abs() >= 1.0 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} µs", trim(ms * 1e3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_round_utc_times() {
        // 2024-05-01T12:14:52.67Z to +10 s.
        let start = Timestamp(1_714_565_692_670_000_000);
        let axis = TimeAxis::new(start, Timestamp(start.0 + 10 * NS), 8);
        assert_eq!(axis.step_ns, 2 * NS);
        let x = axis.x(Timestamp(1_714_565_694_000_000_000));
        assert_eq!(axis.label(x), "12:14:54");
        assert_eq!(axis.desc(), "time, UTC (2024-05-01)");
        let fine = TimeAxis::new(start, Timestamp(start.0 + 2 * NS), 10);
        assert_eq!(fine.label(0.33), "12:14:53.0");
        let finer = TimeAxis::new(start, Timestamp(start.0 + 200_000_000), 10);
        assert_eq!(finer.label(0.0), "12:14:52.67");
    }

    #[test]
    fn degenerate_ranges_do_not_panic() {
        for (a, b) in [(0, 0), (5, -5), (i64::MIN, i64::MAX), (i64::MAX, i64::MAX)] {
            let axis = TimeAxis::padded(Timestamp(a), Timestamp(b), 0.05, 8);
            let r = axis.range();
            assert!(r.end > r.start);
            let _ = axis.label(r.end);
            assert!(axis.coord().key_points(12usize).len() <= 14);
            let _ = axis.desc();
            let _ = axis.x(Timestamp(a));
        }
    }

    #[test]
    fn rows_read_top_down() {
        let rows = Rows::new(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(rows.band(0), (2.0, 3.0));
        assert_eq!(rows.label(2.5), "a");
        assert_eq!(rows.label(0.5), "c");
        assert_eq!(rows.label(7.5), "");
        assert_eq!(duration(4435.148), "4.435 s");
        assert_eq!(duration(0.04), "40 µs");
        assert_eq!(tick_duration(2000.0), "2 s");
        assert_eq!(tick_duration(500.0), "500 ms");
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(37.0), 50.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
        assert_eq!(log_ticks(3.0, 60.0), vec![5.0, 10.0, 20.0, 50.0]);
        assert!(log_ticks(0.0, 10.0).is_empty());
    }
}
