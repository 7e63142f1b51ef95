//! iostat -x figures from consecutive /proc/diskstats samples, computed exactly as
//! sysstat does, and the whole recording's disk lanes kept compact.
//!
//! For two samples Δt apart: r_await = Δread_ms / Δreads, w_await = Δwrite_ms /
//! Δwrites (0 without completions), aqu-sz = Δtime_in_queue_ms / Δt_ms, %util =
//! Δio_ticks_ms / Δt_ms × 100. `in_flight` is not cumulative and is kept raw: an I/O
//! stuck for seconds shows only there (and as io_ticks rising) until it completes.

use std::collections::BTreeMap;

use vmlat_bundle::DiskSample;

use crate::model::{DiskLane, DiskPoint};
use crate::time::Timestamp;

/// Recordings longer than this get their whole-recording disk lanes at 1 point/s.
const FULL_RATE_FOR_NS: u64 = 600_000_000_000;
const COARSE_STEP_NS: u64 = 1_000_000_000;

/// The iostat figures between `prev` and `cur`, stamped `t` (UTC of `cur`); `None` when
/// the samples are not in order or a counter went backwards (a device re-added).
pub fn point(prev: &DiskSample, cur: &DiskSample, t: Timestamp) -> Option<DiskPoint> {
    let dt_ms = cur.t.checked_sub(prev.t).filter(|&d| d > 0)? as f64 / 1e6;
    let d = |a: u64, b: u64| b.checked_sub(a).map(|v| v as f64);
    let reads = d(prev.reads, cur.reads)?;
    let writes = d(prev.writes, cur.writes)?;
    let per_io = |ms: f64, ios: f64| if ios > 0.0 { ms / ios } else { 0.0 };
    Some(DiskPoint {
        t,
        r_await_ms: per_io(d(prev.read_ms, cur.read_ms)?, reads),
        w_await_ms: per_io(d(prev.write_ms, cur.write_ms)?, writes),
        aqu_sz: d(prev.time_in_queue_ms, cur.time_in_queue_ms)? / dt_ms,
        util_pct: d(prev.io_ticks_ms, cur.io_ticks_ms)? / dt_ms * 100.0,
        in_flight: cur.in_flight,
    })
}

/// Whether a device did or had I/O between two samples.
pub fn busy(prev: &DiskSample, cur: &DiskSample) -> bool {
    cur.reads != prev.reads || cur.writes != prev.writes || cur.in_flight > 0
}

/// One device's whole-recording lane, built as samples stream by.
///
/// Invariant: `full` holds a point per sample interval while the recording is at most
/// [`FULL_RATE_FOR_NS`] long; past that it is dropped and `coarse` (a point per ≥ 1 s,
/// from the counters at each step's ends, so the figures stay exact) is the lane.
#[derive(Debug, Default)]
struct Device {
    first_t: Option<u64>,
    prev: Option<DiskSample>,
    step_from: Option<DiskSample>,
    full: Option<Vec<DiskPoint>>,
    coarse: Vec<DiskPoint>,
    did_io: bool,
}

/// Every device's whole-recording lane.
#[derive(Debug, Default)]
pub struct DiskSeries {
    devices: BTreeMap<String, Device>,
}

impl DiskSeries {
    /// Takes the next sample of a device; `t` is its UTC.
    pub fn push(&mut self, sample: &DiskSample, t: Timestamp) {
        let dev = self.devices.entry(sample.device.clone()).or_default();
        let first = *dev.first_t.get_or_insert(sample.t);
        if let Some(prev) = &dev.prev {
            dev.did_io |= busy(prev, sample);
            if sample.t.saturating_sub(first) > FULL_RATE_FOR_NS {
                dev.full = None;
            } else if let Some(p) = point(prev, sample, t) {
                dev.full.get_or_insert_with(Vec::new).push(p);
            }
        }
        match &dev.step_from {
            Some(from) if sample.t.saturating_sub(from.t) >= COARSE_STEP_NS => {
                if let Some(p) = point(from, sample, t) {
                    dev.coarse.push(p);
                }
                dev.step_from = Some(sample.clone());
            }
            Some(_) => {}
            None => dev.step_from = Some(sample.clone()),
        }
        dev.prev = Some(sample.clone());
    }

    /// The lanes of the devices that did I/O.
    pub fn finish(self, host: &str) -> Vec<DiskLane> {
        self.devices
            .into_iter()
            .filter(|(_, d)| d.did_io)
            .map(|(device, d)| DiskLane {
                host: host.to_string(),
                device,
                points: d.full.unwrap_or(d.coarse),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: u64, writes: u64, write_ms: u64, ticks: u64, queue: u64) -> DiskSample {
        DiskSample {
            t: t_ms * 1_000_000,
            device: "vda".into(),
            major: 254,
            minor: 0,
            reads: 0,
            reads_merged: 0,
            sectors_read: 0,
            read_ms: 0,
            writes,
            writes_merged: 0,
            sectors_written: 0,
            write_ms,
            in_flight: 1,
            io_ticks_ms: ticks,
            time_in_queue_ms: queue,
            discards: 0,
            discard_ms: 0,
            flushes: 0,
            flush_ms: 0,
        }
    }

    #[test]
    fn figures_are_iostats() {
        // 4 writes took 200 ms in all, the disk was busy 50 of 100 ms, 120 ms queued.
        let p = point(
            &sample(1000, 10, 100, 500, 600),
            &sample(1100, 14, 300, 550, 720),
            Timestamp(0),
        )
        .unwrap();
        assert_eq!(
            (
                p.w_await_ms,
                p.r_await_ms,
                p.util_pct,
                p.aqu_sz,
                p.in_flight
            ),
            (50.0, 0.0, 50.0, 1.2, 1)
        );
        assert!(point(
            &sample(1100, 14, 0, 0, 0),
            &sample(1000, 10, 0, 0, 0),
            Timestamp(0)
        )
        .is_none());
    }

    #[test]
    fn long_recordings_keep_one_point_per_second() {
        let mut series = DiskSeries::default();
        for k in 0..=6_100u64 {
            // 100 ms samples for 610 s.
            series.push(&sample(k * 100, k, k, k, k), Timestamp(0));
        }
        let lanes = series.finish("h");
        assert_eq!(lanes.len(), 1);
        assert_eq!(lanes[0].points.len(), 610);
        assert_eq!(lanes[0].points[0].w_await_ms, 1.0);
    }
}
