//! The arrival time of every advert of the analysis's streams, for the charts that
//! show packets one by one (timeline ticks, interval distributions, Perfetto instants).
//!
//! [`Analysis`] keeps per-stream statistics, not every packet. This reads the same
//! inputs again through the analyzer's own resolver, capture reader and decoder, and
//! keeps only packets of streams the analysis found: it is the packet list behind the
//! analyzer's results, not a second analysis (no gaps, failovers or verdicts here).

use std::collections::HashMap;
use std::path::PathBuf;

use vmlat_analyzer::decode::decode;
use vmlat_analyzer::input::resolve;
use vmlat_analyzer::pcapfile::{read_capture, Record};
use vmlat_analyzer::{Analysis, GroupKey, StreamKey, Timestamp};

use crate::PlotError;

/// One advert as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub t: Timestamp,
    pub priority: Option<u8>,
}

/// Adverts by stream, each list in time order.
#[derive(Debug, Default)]
pub struct Adverts {
    by_stream: HashMap<StreamKey, Vec<Advert>>,
}

/// The analyzer's window for "the same packet seen twice" (see `Stream::duplicates`).
const DUPLICATE_NS: i64 = 1_000_000;

impl Adverts {
    /// Reads every advert of `analysis`'s streams from `inputs`, the paths the analysis
    /// was made from.
    pub fn read(inputs: &[PathBuf], analysis: &Analysis) -> Result<Self, PlotError> {
        let mut by_stream: HashMap<StreamKey, Vec<Advert>> = analysis
            .streams
            .iter()
            .map(|s| (s.key.clone(), Vec::new()))
            .collect();
        // The previous packet's identity per stream, to skip duplicates as the analyzer does.
        let mut last: HashMap<StreamKey, (i64, Option<u16>, Option<u16>, u16)> = HashMap::new();
        for source in resolve(inputs)? {
            read_capture(&source.file, &source.capture, |record| {
                let Record::Packet {
                    interface,
                    t_ns,
                    data,
                } = record
                else {
                    return;
                };
                let Ok(Some(hb)) =
                    decode(interface.link_type, t_ns, data, &analysis.heartbeat_ports)
                else {
                    return;
                };
                // Capture point naming of `docs/analysis-json.md`.
                let capture = match hb.ifindex {
                    Some(ifindex) => format!("{}:if{ifindex}", interface.name),
                    None => interface.name.clone(),
                };
                let key = StreamKey {
                    group: GroupKey {
                        capture,
                        protocol: hb.protocol,
                        vrid: hb.group,
                        vlan: hb.vlan,
                    },
                    src: hb.src,
                };
                let Some(list) = by_stream.get_mut(&key) else {
                    return;
                };
                let id = (hb.t_ns, hb.ip_id, hb.ip_checksum, hb.checksum);
                let duplicate = last.get(&key).is_some_and(|prev| {
                    (hb.t_ns - prev.0).abs() < DUPLICATE_NS
                        && (prev.1, prev.2, prev.3) == (id.1, id.2, id.3)
                });
                last.insert(key, id);
                if !duplicate {
                    list.push(Advert {
                        t: Timestamp(hb.t_ns),
                        priority: hb.priority,
                    });
                }
            })?;
        }
        for list in by_stream.values_mut() {
            list.sort_by_key(|a| a.t);
        }
        Ok(Adverts { by_stream })
    }

    /// Adverts of one stream; empty for a stream not read.
    pub fn of(&self, key: &StreamKey) -> &[Advert] {
        self.by_stream.get(key).map_or(&[], Vec::as_slice)
    }

    /// Inter-arrival times of one stream, in milliseconds.
    pub fn intervals_ms(&self, key: &StreamKey) -> Vec<f64> {
        self.of(key)
            .windows(2)
            .map(|w| (w[1].t.0 - w[0].t.0) as f64 / 1e6)
            .collect()
    }

    #[cfg(test)]
    pub fn from_lists(lists: Vec<(StreamKey, Vec<Advert>)>) -> Self {
        Adverts {
            by_stream: lists.into_iter().collect(),
        }
    }
}
