//! From the packets two machines both captured, the map of one machine's time line onto
//! the reference machine's: which way each packet went, where the clock jumped, and an
//! offset and drift for each piece between jumps (`crate::align` documents the bounds).
//!
//! A packet seen on the reference at `a` and on the other machine at `b` bounds the
//! offset θ (reference = machine + θ): from the reference, θ ≥ a − b (a lower bound);
//! to it, θ ≤ a − b (an upper bound). Each piece's offset is the middle of what its
//! bounds allow, or, with bounds on one side only, its tightest bound: the packet that
//! crossed with the least delay.
//!
//! **Directions.** Captures do not say which machine sent a packet, and one source's
//! packets all go one way. When packets of two sources cross both ways, the offsets of
//! those from the reference lie below those to it (by the two delays); each packet of
//! the source with fewer is compared with the nearest packet of the other (next to a
//! clock jump, the nearest may be on its other side and mislead). A source compared with
//! none is judged by its delays: most packets cross with about the least delay, so its
//! offsets cluster at one edge, the top (θ − delay) for packets from the reference, the
//! bottom for packets to it. A source whose offsets do not lean either way is taken to
//! go to the reference: a guest's own adverts, captured at its NIC, then at the host's
//! tap.
//!
//! **Drift.** A piece of 10 s or more gets the drift of its own levels (the tightest
//! bound of each of [`DRIFT_BINS`] stretches; the median slope between every two of
//! them, Theil-Sen); a shorter one, the drift of all bounds (the median slope between
//! consecutive runs of [`WINDOW`], when two thirds of them agree). A drift that moves the
//! offset by less than [`TOLERANCE_NS`] over its span is none: NTP-kept clocks drift by
//! ppm, a TCG guest's mis-calibrated TSC by some 3%.
//!
//! **Jumps.** Between two windows of [`WINDOW`] consecutive bounds the offset moved by
//! more than [`TOLERANCE_NS`] when a lower bound of the later lies above an upper bound
//! of the earlier (or the other way round), or the tightest bounds of one kind moved.
//! A delayed packet moves no tightest bound; a stalled path delays a burst of packets
//! by less and less, which leaves the later window unsettled (most of its bounds far from
//! its tightest) and makes no jump. A jump is placed where the two windows explain their
//! bounds best. Jumps are looked for with the drift of all bounds taken out.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::align::{
    segments, Bound, ClockJump, ClockPiece, CrossClock, CrossMachine, Direction, FirstSeen,
    PacketSync,
};
use crate::time::Timestamp;

/// One packet both machines captured: its source, and its first and last sighting on
/// the reference (`a`) and on the other machine (`b`), each on its own time line, and
/// the reference's capture point that saw it first (an index into its capture names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub src: IpAddr,
    pub a: (i64, i64),
    pub b: (i64, i64),
    pub at: u32,
}

/// Bounds per window when looking for a jump: a jump needs this many matched packets on
/// each side of it.
pub const WINDOW: usize = 4;
/// The offset moving by less than this is not a jump: a loaded tap's delays vary by
/// that much.
pub const TOLERANCE_NS: i64 = 1_000_000;
/// Packets of two sources this close are compared to tell their directions.
const COMPARE_WITHIN_NS: i64 = 10_000_000_000;
/// A piece shorter than this has no drift estimated: its halves' levels are too close
/// in time to tell a drift from their noise.
const DRIFT_MIN_SPAN_NS: i64 = 10_000_000_000;

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    FromReference,
    ToReference,
}

/// One bound on the offset: at the machine's time `t`, θ ≥ `v` (lower) or θ ≤ `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Constraint {
    t: i64,
    v: i64,
    upper: bool,
}

/// The map of the machine's time line onto the reference's, or why there is none;
/// `captures` names the reference's capture points.
pub fn cross_clock(
    matched: &[Matched],
    reference: &str,
    captures: &[String],
) -> Result<CrossClock, String> {
    let (ways, direction) = directions(matched);
    let mut cs: Vec<Constraint> = matched
        .iter()
        .filter_map(|m| {
            Some(match ways.get(&m.src)? {
                Way::FromReference => Constraint {
                    t: m.b.0,
                    v: m.a.1.saturating_sub(m.b.0),
                    upper: false,
                },
                Way::ToReference => Constraint {
                    t: m.b.0,
                    v: m.a.0.saturating_sub(m.b.1),
                    upper: true,
                },
            })
        })
        .collect();
    if cs.is_empty() {
        return Err(format!(
            "the {} packets it shared with {reference} came from sources seen both above and below the others, so no direction could be told",
            matched.len()
        ));
    }
    cs.sort_by_key(|c| (c.t, c.v));
    // Jumps are looked for with the clocks' drift taken out: a guest clock some 3% slow
    // moves the offset by 120 ms over a window, which no window would call settled.
    let drift = trend(&cs);
    let flat: Vec<Constraint> = cs
        .iter()
        .map(|c| Constraint {
            v: c.v.saturating_sub(drifted(c.t - cs[0].t, drift)),
            ..*c
        })
        .collect();
    let mut starts = vec![0];
    starts.extend(settle_splits(&flat, splits(&flat)));
    let fits_of = |starts: &[usize]| -> Vec<Fit> {
        let ends = starts.iter().skip(1).copied().chain([cs.len()]);
        starts
            .iter()
            .zip(ends)
            .filter_map(|(&s, e)| cs.get(s..e).map(|piece| fit(piece, drift)))
            .collect()
    };
    // A jump that a later piece undoes was no clock's: a stalled path (a vNIC holding
    // both ways, a starved vCPU) moves the bounds for a while and lets them go back.
    // A piece whose offset is an earlier piece's again joins it, and all between.
    while let Some((i, j)) = undone(&fits_of(&starts)) {
        starts.drain(i + 1..=j);
    }
    let fits = fits_of(&starts);
    let pieces: Vec<ClockPiece> = fits
        .iter()
        .map(|f| {
            let on_reference = |t: i64| {
                t.saturating_add(f.offset)
                    .saturating_add((t.saturating_sub(f.first_t) as f64 * f.drift) as i64)
            };
            ClockPiece {
                first: Timestamp(on_reference(f.first_t)),
                last: Timestamp(on_reference(f.last_t)),
                matched: f.count as u64,
                offset_ns: f.offset,
                drift_ppm: f.drift * 1e6,
                bound: f.bound,
                error_bound_ns: f.error,
            }
        })
        .collect();
    // Each jump is how far the next piece's map is from this one's where they meet.
    let jumps: Vec<ClockJump> = segments(&pieces)
        .windows(2)
        .zip(pieces.windows(2))
        .filter_map(|(s, p)| {
            let (this, next) = (s.first()?, s.get(1)?);
            Some(ClockJump {
                last_before: p.first()?.last,
                first_after: p.get(1)?.first,
                behind_ns: next
                    .apply(this.until)
                    .saturating_sub(this.apply(this.until)),
            })
        })
        .collect();
    let one_sided = fits.iter().any(|f| f.bound != Bound::TwoSided);
    let sent_first_seen_at = if direction == Direction::Assumed {
        Vec::new()
    } else {
        first_seen(matched, &ways, captures)
    };
    let sync = PacketSync {
        reference: reference.to_string(),
        matched: cs.len() as u64,
        to_reference: cs.iter().filter(|c| c.upper).count() as u64,
        from_reference: cs.iter().filter(|c| !c.upper).count() as u64,
        direction,
        pieces,
        jumps,
        error_bound_ns: if one_sided {
            None
        } else {
            fits.iter().filter_map(|f| f.error).max()
        },
        one_sided,
        sent_first_seen_at,
    };
    Ok(CrossClock::from_report(CrossMachine::Packets(sync)))
}

/// Where the reference first saw the packets this machine sent (those of the sources
/// that go to the reference), most first: a guest's packets reach its host at its own
/// tap before any bridge or other VM's tap.
fn first_seen(
    matched: &[Matched],
    ways: &HashMap<IpAddr, Way>,
    captures: &[String],
) -> Vec<FirstSeen> {
    let mut out: Vec<FirstSeen> = Vec::new();
    let sent = matched
        .iter()
        .filter(|m| ways.get(&m.src) == Some(&Way::ToReference));
    for capture in sent.filter_map(|m| captures.get(m.at as usize)) {
        match out.iter_mut().find(|f| f.capture == *capture) {
            Some(f) => f.packets += 1,
            None => out.push(FirstSeen {
                capture: capture.clone(),
                packets: 1,
            }),
        }
    }
    out.sort_by(|x, y| {
        y.packets
            .cmp(&x.packets)
            .then_with(|| x.capture.cmp(&y.capture))
    });
    out
}

/// Each source's direction, and how the directions were told (the weakest way used).
fn directions(matched: &[Matched]) -> (HashMap<IpAddr, Way>, Direction) {
    let mut by_source: HashMap<IpAddr, Vec<(i64, i64)>> = HashMap::new();
    for m in matched {
        let mid = |(x, y): (i64, i64)| x / 2 + y / 2;
        by_source
            .entry(m.src)
            .or_default()
            .push((m.b.0, mid(m.a).saturating_sub(mid(m.b))));
    }
    let mut sources: Vec<(IpAddr, Vec<(i64, i64)>)> = by_source.into_iter().collect();
    sources.sort_by_key(|(src, _)| *src);
    for (_, packets) in &mut sources {
        packets.sort_unstable();
    }
    // below[i]: source i's offsets lie below another source's; above[i] likewise.
    let mut below = vec![false; sources.len()];
    let mut above = vec![false; sources.len()];
    for i in 0..sources.len() {
        for j in i + 1..sources.len() {
            let (Some((_, p)), Some((_, q))) = (sources.get(i), sources.get(j)) else {
                continue;
            };
            match compare(p, q) {
                Some(true) => {
                    below[i] = true;
                    above[j] = true;
                }
                Some(false) => {
                    above[i] = true;
                    below[j] = true;
                }
                None => {}
            }
        }
    }
    let mut ways = HashMap::new();
    let mut direction = Direction::BothWays;
    let mut untold = Vec::new();
    for (i, (src, packets)) in sources.iter().enumerate() {
        let way = match (below.get(i) == Some(&true), above.get(i) == Some(&true)) {
            (true, false) => Way::FromReference,
            (false, true) => Way::ToReference,
            // Between others: a third machine's packets, which both received.
            (true, true) => continue,
            (false, false) => match leaning(packets) {
                Some(way) => {
                    if direction == Direction::BothWays {
                        direction = Direction::Delays;
                    }
                    way
                }
                None => {
                    untold.push(*src);
                    continue;
                }
            },
        };
        ways.insert(*src, way);
    }
    // A source that cannot be told (a packet or two: the backup's adverts a guest
    // received during a takeover) is left out when others were told: assumed the wrong
    // way, one packet bounds the offset from the wrong side and splits the clock where
    // it never jumped. Only when nothing was told is the guest-to-host way assumed.
    if ways.is_empty() && !untold.is_empty() {
        direction = Direction::Assumed;
        ways.extend(untold.into_iter().map(|src| (src, Way::ToReference)));
    }
    (ways, direction)
}

/// Whether `p`'s offsets lie below `q`'s (three quarters of at least two comparisons),
/// above them, or neither. Each packet of the source with fewer is compared with the
/// nearest of the other's: the comparisons stay local, where the offset has not moved.
fn compare(p: &[(i64, i64)], q: &[(i64, i64)]) -> Option<bool> {
    if p.len() > q.len() {
        return compare(q, p).map(|below| !below);
    }
    let (mut lower, mut higher) = (0usize, 0usize);
    for &(t, v) in p {
        let i = q.partition_point(|(u, _)| *u < t);
        let nearest = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|k| q.get(k))
            .min_by_key(|(u, _)| u.abs_diff(t));
        match nearest {
            Some(&(u, w)) if u.abs_diff(t) <= COMPARE_WITHIN_NS.unsigned_abs() => {
                if v < w {
                    lower += 1;
                } else if v > w {
                    higher += 1;
                }
            }
            _ => {}
        }
    }
    let total = lower + higher;
    if total < 2 {
        None
    } else if lower * 4 >= total * 3 {
        Some(true)
    } else if higher * 4 >= total * 3 {
        Some(false)
    } else {
        None
    }
}

/// Which way a source's packets went, from where its offsets cluster: in each run of
/// eight, how many lie in the top quarter of the run's spread against the bottom
/// quarter. `None` when they do not lean (no spread, or as many each way).
fn leaning(packets: &[(i64, i64)]) -> Option<Way> {
    let mut score: i64 = 0;
    for run in packets.chunks(8) {
        let values = run.iter().map(|(_, v)| *v);
        let (Some(max), Some(min)) = (values.clone().max(), values.clone().min()) else {
            continue;
        };
        let quarter = (max.saturating_sub(min)) / 4;
        if quarter == 0 {
            continue;
        }
        let top = values
            .clone()
            .filter(|v| *v >= max.saturating_sub(quarter))
            .count() as i64;
        let bottom = values.filter(|v| *v <= min.saturating_add(quarter)).count() as i64;
        score += top - bottom;
    }
    match score.cmp(&0) {
        std::cmp::Ordering::Greater => Some(Way::FromReference),
        std::cmp::Ordering::Less => Some(Way::ToReference),
        std::cmp::Ordering::Equal => None,
    }
}

/// What a run of bounds allows: the tightest lower and upper bound, and how many bounds
/// are off that level by more than the tolerance.
#[derive(Debug, Clone, Copy)]
struct Level {
    lo: Option<i64>,
    hi: Option<i64>,
    lows: usize,
    highs: usize,
    outliers: usize,
    len: usize,
}

impl Level {
    fn of(cs: &[Constraint]) -> Level {
        let lo = cs.iter().filter(|c| !c.upper).map(|c| c.v).max();
        let hi = cs.iter().filter(|c| c.upper).map(|c| c.v).min();
        // Off their level: a bound far looser than its kind's tightest (a delayed
        // packet), or one the other kind contradicts (no single offset allows both):
        // either way, outside what the tightest of both kinds allow.
        let outliers = cs
            .iter()
            .filter(|c| {
                lo.is_some_and(|l| c.v < l.saturating_sub(TOLERANCE_NS))
                    || hi.is_some_and(|h| c.v > h.saturating_add(TOLERANCE_NS))
            })
            .count();
        Level {
            lo,
            hi,
            lows: cs.iter().filter(|c| !c.upper).count(),
            highs: cs.iter().filter(|c| c.upper).count(),
            outliers,
            len: cs.len(),
        }
    }

    /// Most of its bounds near their tightest: a steady path, not a burst of delays.
    fn settled(&self) -> bool {
        self.outliers * 2 <= self.len
    }

    /// The offset it points at: the middle of its bounds, or its one-sided bound.
    fn estimate(&self) -> Option<i64> {
        match (self.lo, self.hi) {
            (Some(l), Some(h)) => Some(middle(l, h)),
            (l, h) => l.or(h),
        }
    }

    /// How far the offset moved from `self` to `after`, if by more than the tolerance.
    fn shift(&self, after: &Level) -> Option<i64> {
        let moved = after.estimate()?.saturating_sub(self.estimate()?);
        // A lower bound above an earlier upper bound, or an upper bound below an
        // earlier lower bound: no single offset explains both, whatever the delays (a
        // delay only loosens a bound). Settled or not: the probes a paused guest
        // receives when it resumes, all at the instant its clock stopped, are a burst
        // of bounds, and they are what crosses.
        let crossed = after
            .lo
            .zip(self.hi)
            .is_some_and(|(l, h)| l > h.saturating_add(TOLERANCE_NS))
            || after
                .hi
                .zip(self.lo)
                .is_some_and(|(h, l)| h < l.saturating_sub(TOLERANCE_NS));
        if crossed {
            return Some(moved);
        }
        if !self.settled() || !after.settled() {
            return None;
        }
        // Bounded from both sides in both windows, and the two ranges overlap: one
        // offset explains both, however the tightest bounds moved (a TCG guest's
        // first probes cross a millisecond slower than the rest).
        let two_sided = |l: &Level| l.lo.is_some() && l.hi.is_some();
        if two_sided(self) && two_sided(after) {
            return None;
        }
        let same_kind = |a: Option<i64>, b: Option<i64>, enough: bool| {
            a.zip(b)
                .filter(|_| enough)
                .map(|(x, y)| y.saturating_sub(x))
                .filter(|d| d.abs() > TOLERANCE_NS)
        };
        same_kind(self.hi, after.hi, self.highs >= 2 && after.highs >= 2)
            .or_else(|| same_kind(self.lo, after.lo, self.lows >= 2 && after.lows >= 2))
    }
}

/// Where the offset jumped: the index of the first bound after each jump.
fn splits(cs: &[Constraint]) -> Vec<usize> {
    let window = |k: usize| -> Option<(Level, Level)> {
        Some((
            Level::of(cs.get(k.checked_sub(WINDOW)?..k)?),
            Level::of(cs.get(k..k + WINDOW)?),
        ))
    };
    let mut out = Vec::new();
    let mut k = WINDOW;
    while k + WINDOW <= cs.len() {
        let jumped = window(k).is_some_and(|(b, a)| b.shift(&a).is_some());
        if !jumped {
            k += 1;
            continue;
        }
        // The first window pair that sees the jump may straddle it: of the next few,
        // the split whose two windows have the fewest bounds off their level.
        let best = (k..k + WINDOW)
            .filter_map(|j| {
                let (b, a) = window(j)?;
                b.shift(&a).map(|_| (b.outliers + a.outliers, j))
            })
            .min()
            .map_or(k, |(_, j)| j);
        out.push(best);
        k = best + WINDOW;
    }
    out
}

/// Jumps that a later piece undoes are not the clock's: how far apart two offsets may be
/// and still be one.
const SAME_OFFSET_NS: i64 = 20 * TOLERANCE_NS;

/// The first pieces `i < j` where piece `j`'s map agrees with piece `i`'s where `j`
/// starts: the jumps between them went out and came back.
fn undone(fits: &[Fit]) -> Option<(usize, usize)> {
    let at = |f: &Fit, t: i64| f.offset.saturating_add(drifted(t - f.first_t, f.drift));
    for (i, a) in fits.iter().enumerate() {
        for (j, b) in fits.iter().enumerate().skip(i + 1) {
            if (at(a, b.first_t) - b.offset).abs() <= SAME_OFFSET_NS {
                return Some((i, j));
            }
        }
    }
    None
}

/// Each split moved, by up to a [`WINDOW`] either way, to where the bounds on its two
/// sides contradict each other least: packets that crossed while a guest stood still
/// reach it when it resumes, at the very instant of its clock where it stopped, and
/// belong after the jump (a probe sent into a paused guest bounds the later offset, and
/// contradicts the earlier by up to the pause).
fn settle_splits(cs: &[Constraint], found: Vec<usize>) -> Vec<usize> {
    // How far a run's lower bounds lie above its upper bounds: no single offset allows
    // both (0 when they agree, or a run has one kind only).
    let contradiction = |run: &[Constraint]| {
        let level = Level::of(run);
        level
            .lo
            .zip(level.hi)
            .map_or(0, |(l, h)| l.saturating_sub(h).max(0))
    };
    let mut out: Vec<usize> = Vec::with_capacity(found.len());
    for (i, &k) in found.iter().enumerate() {
        let before = out.last().copied().unwrap_or(0);
        let after = found.get(i + 1).copied().unwrap_or(cs.len());
        let candidates = k.saturating_sub(WINDOW).max(before + 1)..=(k + WINDOW).min(after - 1);
        let best = candidates
            .filter_map(|j| {
                let (l, r) = (cs.get(before..j)?, cs.get(j..after)?);
                Some((
                    contradiction(l).saturating_add(contradiction(r)),
                    j.abs_diff(k),
                    j,
                ))
            })
            .min()
            .map_or(k, |(_, _, j)| j);
        out.push(best);
    }
    out
}

/// Half way from `l` to `h`, whatever they are.
fn middle(l: i64, h: i64) -> i64 {
    ((i128::from(l) + i128::from(h)) / 2) as i64
}

/// How many stretches of a piece the drift is fitted over.
const DRIFT_BINS: usize = 8;

/// The drift of a piece long enough to tell one: the line through the level of each of
/// [`DRIFT_BINS`] equal stretches of it, each placed at the bound that set it (the tightest bounds are the packets that crossed with the least delay, so
/// they follow the clocks' relation, whatever the other packets' delays).
fn envelope_slope(cs: &[Constraint]) -> Option<f64> {
    let (first, last) = (cs.first()?.t, cs.last()?.t);
    if last.saturating_sub(first) < DRIFT_MIN_SPAN_NS || cs.len() < DRIFT_BINS {
        return None;
    }
    let width = (last - first) / DRIFT_BINS as i64 + 1;
    let points: Vec<(f64, f64)> = cs
        .chunk_by(|a, b| (a.t - first) / width == (b.t - first) / width)
        .filter_map(level_point)
        .collect();
    // Theil-Sen: the median of the slopes between every two levels, which a stretch of
    // delayed packets (a stalled vNIC: every level in it off) cannot pull.
    let mut slopes: Vec<f64> = Vec::new();
    for (i, (t1, v1)) in points.iter().enumerate() {
        for (t2, v2) in points.iter().skip(i + 1) {
            if t2 > t1 {
                slopes.push((v2 - v1) / (t2 - t1));
            }
        }
    }
    if slopes.len() < 3 {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    slopes.get(slopes.len() / 2).copied()
}

/// How far a clock drifting by `drift` (ns per ns) moves in `dt`.
fn drifted(dt: i64, drift: f64) -> i64 {
    (dt as f64 * drift) as i64
}

/// The drift across all bounds, whatever jumps they hold: the median of the slopes
/// between the levels of consecutive runs of [`WINDOW`] bounds (a jump spoils one of
/// them), or 0 when it moves the offset by less than a jump's tolerance over them all.
fn trend(cs: &[Constraint]) -> f64 {
    let points: Vec<(f64, f64)> = cs.chunks(WINDOW).filter_map(level_point).collect();
    let mut slopes: Vec<f64> = points
        .windows(2)
        .filter_map(|p| {
            let ((t1, v1), (t2, v2)) = (p.first()?, p.get(1)?);
            (t2 > t1).then(|| (v2 - v1) / (t2 - t1))
        })
        .collect();
    if slopes.len() < 3 {
        return 0.0;
    }
    slopes.sort_by(f64::total_cmp);
    let drift = slopes.get(slopes.len() / 2).copied().unwrap_or(0.0);
    let span = cs.last().map_or(0, |c| c.t) - cs.first().map_or(0, |c| c.t);
    // A drift is the clocks' only when most runs agree on it (to within the tolerance
    // over a run); runs straddling jumps or full of delayed packets do not.
    let run = span as f64 / points.len() as f64;
    let agree = slopes
        .iter()
        .filter(|s| ((*s - drift) * run).abs() < TOLERANCE_NS as f64)
        .count();
    if agree * 3 >= slopes.len() * 2 && (drift * span as f64).abs() >= TOLERANCE_NS as f64 {
        drift
    } else {
        0.0
    }
}

/// A run of bounds as one point: the (time, offset) of its level, placed at the bound
/// that set it (both kinds: between theirs).
fn level_point(run: &[Constraint]) -> Option<(f64, f64)> {
    let level = Level::of(run);
    let v = level.estimate()?;
    let at = |want: Option<i64>, upper: bool| {
        run.iter()
            .find(|c| c.upper == upper && Some(c.v) == want)
            .map(|c| c.t)
    };
    let t = match (at(level.lo, false), at(level.hi, true)) {
        (Some(a), Some(b)) => middle(a, b),
        (a, b) => a.or(b)?,
    };
    Some((t as f64, v as f64))
}

/// One piece's offset and drift.
#[derive(Debug, Clone, Copy)]
struct Fit {
    first_t: i64,
    last_t: i64,
    count: usize,
    offset: i64,
    drift: f64,
    bound: Bound,
    error: Option<u64>,
}

/// The offset at the piece's first bound and its drift: the drift of its own levels when
/// it is long enough to tell (else `trend`, all bounds' drift), then the tightest bounds
/// of what is left.
fn fit(cs: &[Constraint], trend: f64) -> Fit {
    let (first_t, last_t) = (cs.first().map_or(0, |c| c.t), cs.last().map_or(0, |c| c.t));
    let drift = match envelope_slope(cs) {
        // Over a short piece the bins' levels differ by their noise: a drift counts only
        // when it moves the offset by more than a jump's tolerance over the piece (a
        // TCG guest's mis-calibrated TSC runs some 3% slow; NTP-kept clocks, ppm).
        Some(d) if (d * (last_t - first_t) as f64).abs() >= TOLERANCE_NS as f64 => d,
        Some(_) => 0.0,
        None => trend,
    };
    let bounds = |drift: f64| {
        let r = |c: &Constraint| {
            c.v.saturating_sub((c.t.saturating_sub(first_t) as f64 * drift) as i64)
        };
        let lo = cs.iter().filter(|c| !c.upper).map(r).max();
        let hi = cs.iter().filter(|c| c.upper).map(r).min();
        (lo, hi)
    };
    let (mut lo, mut hi) = bounds(drift);
    let mut drift = drift;
    if lo.zip(hi).is_some_and(|(l, h)| l > h) && drift != 0.0 {
        // The levels misled the drift: no drift crosses the bounds less.
        drift = 0.0;
        (lo, hi) = bounds(0.0);
    }
    let (offset, bound, error) = match (lo, hi) {
        (Some(l), Some(h)) => (middle(l, h), Bound::TwoSided, Some(h.abs_diff(l) / 2)),
        (Some(l), None) => (l, Bound::NoLater, None),
        (None, Some(h)) => (h, Bound::NoEarlier, None),
        (None, None) => (0, Bound::NoEarlier, None),
    };
    Fit {
        first_t,
        last_t,
        count: cs.len(),
        offset,
        drift,
        bound,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 10, 0, last])
    }

    /// A packet sent at reference time `t` by `src`, crossing in `delay`, on a machine
    /// whose time line is `theta` behind the reference's.
    fn packet(src: u8, t: i64, delay: i64, theta: i64, to_reference: bool) -> Matched {
        let (a, b) = if to_reference {
            (t + delay, t - theta)
        } else {
            (t, t + delay - theta)
        };
        Matched {
            src: ip(src),
            a: (a, a),
            b: (b, b),
            at: 0,
        }
    }

    fn sync(c: &CrossClock) -> &PacketSync {
        match c.report() {
            CrossMachine::Packets(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn packets_both_ways_bound_the_offset_from_both_sides() {
        let theta = 300_000_000;
        let mut m = Vec::new();
        for k in 0..20 {
            m.push(packet(1, k * S, 40 * US, theta, true));
            m.push(packet(2, k * S + S / 3, 60 * US, theta, false));
        }
        let c = cross_clock(&m, "hv", &[]).unwrap();
        let p = sync(&c);
        assert_eq!((p.direction, p.one_sided), (Direction::BothWays, false));
        assert_eq!((p.to_reference, p.from_reference), (20, 20));
        // The middle of [θ − 60 µs, θ + 40 µs].
        assert_eq!(p.pieces[0].offset_ns, theta - 10 * US);
        assert_eq!(p.error_bound_ns, Some(50 * US as u64));
        assert!(p.jumps.is_empty());
        assert_eq!(c.apply(5 * S - theta), 5 * S - 10 * US);
    }

    #[test]
    fn a_clock_running_20_ppm_slow_has_its_drift_found() {
        // Over two minutes the offset grows by 2.4 ms: no jump, one drifting piece.
        let theta = |t: i64| 300_000_000 + t / 50_000;
        let mut m = Vec::new();
        for k in 0..120 {
            m.push(packet(1, k * S, 40 * US, theta(k * S), true));
            m.push(packet(
                2,
                k * S + S / 2,
                60 * US,
                theta(k * S + S / 2),
                false,
            ));
        }
        let c = cross_clock(&m, "hv", &[]).unwrap();
        let p = sync(&c);
        assert!(p.jumps.is_empty(), "{p:#?}");
        assert!((p.pieces[0].drift_ppm - 20.0).abs() < 0.1, "{p:#?}");
        assert!(p.error_bound_ns.unwrap() <= 55 * US as u64, "{p:#?}");
        // The last second's packets land where the reference saw them, less the delay.
        let t = 119 * S;
        let on_reference = c.apply(t - theta(t));
        assert!(
            (on_reference - (t - 10 * US)).abs() <= 10 * US,
            "{}",
            on_reference - t
        );
    }

    #[test]
    fn a_pause_is_one_jump_by_its_length_and_a_stall_is_none() {
        let mut m = Vec::new();
        for k in 0..30 {
            // Paused from 10 s to 14 s: afterwards its clock is 4 s behind.
            if (10..14).contains(&k) {
                continue;
            }
            let theta = if k >= 14 { 4 * S } else { 0 };
            // A vNIC stall from 20 s to 24 s: those packets reach the reference at 24 s.
            let delay = if (20..24).contains(&k) {
                (24 - k) * S
            } else {
                50 * US
            };
            m.push(packet(1, k * S, delay, theta, true));
        }
        let c = cross_clock(&m, "hv", &[]).unwrap();
        let p = sync(&c);
        assert_eq!(p.jumps.len(), 1, "{p:#?}");
        let j = &p.jumps[0];
        assert_eq!(j.behind_ns, 4 * S);
        assert_eq!(
            (j.last_before.0, j.first_after.0),
            (9 * S + 50 * US, 14 * S + 50 * US)
        );
        assert_eq!(p.pieces.len(), 2);
        assert!(p.one_sided);
        assert_eq!(p.pieces[1].bound, Bound::NoEarlier);
    }

    #[test]
    fn one_source_leaning_on_its_least_delays_is_told_from_them() {
        // From the reference: most cross in 50 µs, one in eight takes 2 ms.
        let m: Vec<Matched> = (0..32)
            .map(|k| {
                packet(
                    1,
                    k * S,
                    if k % 8 == 3 { 2_000 * US } else { 50 * US },
                    0,
                    false,
                )
            })
            .collect();
        let c = cross_clock(&m, "hv", &[]).unwrap();
        let p = sync(&c);
        assert_eq!((p.direction, p.from_reference), (Direction::Delays, 32));
        assert_eq!(p.pieces[0].bound, Bound::NoLater);
        assert_eq!(p.pieces[0].offset_ns, -50 * US);
    }

    /// The packets both machines captured in a real recording of the `qemu-vm-pause`
    /// lab (a TCG guest, QMP `stop` for 4 s): the source's last address byte (1: the
    /// guest's adverts, 0: the host's clock probes, 2: the backup's one advert the guest
    /// received as it resumed), then the first and last sighting on the host (`a`) and
    /// in the guest (`b`), in ns from the host's first. The probes sent during the pause
    /// reach the guest all at the instant its clock stopped.
    const LAB_PAUSE: [(u8, i64, i64, i64, i64); 32] = [
        (0, 0, 0, 14030000, 14030000),
        (1, 796931000, 796998000, 808491000, 808491000),
        (0, 1097771000, 1097771000, 1112004000, 1112004000),
        (1, 1797476000, 1797526000, 1809887000, 1809887000),
        (0, 2098203000, 2098203000, 2111176000, 2111176000),
        (1, 2798973000, 2799019000, 2811338000, 2811338000),
        (0, 3099696000, 3099696000, 3112759000, 3112759000),
        (1, 3800282000, 3800348000, 3812673000, 3812673000),
        (0, 4100918000, 4100918000, 4113950000, 4113950000),
        (1, 4806450000, 4806511000, 4818886000, 4818886000),
        (0, 5107070000, 5107070000, 5120131000, 5120131000),
        (1, 5808631000, 5808668000, 5820913000, 5820913000),
        (0, 6109316000, 6109316000, 6025061000, 6025061000),
        (0, 7111216000, 7111216000, 6025068000, 6025068000),
        (0, 8113069000, 8113069000, 6025069000, 6025069000),
        (0, 9115070000, 9115070000, 6025069000, 6025069000),
        (2, 9419509000, 9419546000, 6025069000, 6025069000),
        (1, 10019377000, 10019419000, 6030470000, 6030470000),
        (0, 10119680000, 10119680000, 6133171000, 6133171000),
        (1, 11026280000, 11026328000, 7039322000, 7039322000),
        (0, 11126591000, 11126591000, 7140170000, 7140170000),
        (1, 12028061000, 12028141000, 8041034000, 8041034000),
        (0, 12128909000, 12128909000, 8142526000, 8142526000),
        (1, 13029453000, 13029513000, 9042486000, 9042486000),
        (0, 13129781000, 13129781000, 9143306000, 9143306000),
        (1, 14030715000, 14030766000, 10043622000, 10043622000),
        (0, 14131007000, 14131007000, 10144992000, 10144992000),
        (1, 15031861000, 15031903000, 11044981000, 11044981000),
        (0, 15132151000, 15132151000, 11145743000, 11145743000),
        (1, 16033957000, 16033992000, 12046941000, 12046941000),
        (0, 16134289000, 16134289000, 12148096000, 12148096000),
        (1, 17036198000, 17036237000, 13049228000, 13049228000),
    ];

    #[test]
    fn a_real_4_s_vm_pause_is_one_jump_of_4_s_and_the_backups_lone_advert_is_left_out() {
        let m: Vec<Matched> = LAB_PAUSE
            .iter()
            .map(|&(src, a0, a1, b0, b1)| Matched {
                src: ip(src),
                a: (a0, a1),
                b: (b0, b1),
                at: 0,
            })
            .collect();
        let c = cross_clock(&m, "hv", &[]).unwrap();
        let p = sync(&c);
        // The adverts and the probes tell the two ways apart; the backup's one advert
        // cannot be told, and is not assumed (taken as the guest's, it cut the clock
        // where it never jumped: a 550 ms jump, and a silence that never was).
        assert_eq!(
            (p.direction, p.matched),
            (Direction::BothWays, 31),
            "{p:#?}"
        );
        // The first probes crossed a millisecond slower than the rest: no jump.
        assert_eq!(p.jumps.len(), 1, "{p:#?}");
        let behind = p.jumps[0].behind_ns;
        assert!((3_990 * MS..4_010 * MS).contains(&behind), "{p:#?}");
        for piece in &p.pieces {
            assert!(piece.error_bound_ns.unwrap() < MS as u64, "{p:#?}");
        }
        // The guest ran 12.7 ms ahead before the pause (its adverts reached the tap
        // 12.3 ms "early", its probes 13.1 ms "late").
        assert!(
            (-13_100 * US..=-12_300 * US).contains(&p.pieces[0].offset_ns),
            "{p:#?}"
        );
    }
}
