//! The heartbeats inside the gaps' windows, at every capture point of every input:
//! the packet lanes of each gap, and the advert times the sender is matched against.
//!
//! A second streaming read of the capture files keeps only what falls into a window.

use std::collections::HashMap;
use std::net::IpAddr;

use super::windows::{Window, WindowSet};
use crate::decode::Heartbeat;
use crate::input::Source;
use crate::model::{CaptureLane, Gap};
use crate::time::Timestamp;
use crate::{AnalyzeError, AnalyzeOptions, HeartbeatSink};

/// Heartbeats in windows, by capture point.
#[derive(Debug, Default)]
pub struct PacketLanes {
    captures: Vec<String>,
    /// The input each capture point came from (index into the sources' inputs).
    owners: Vec<usize>,
    seen: Vec<(usize, Heartbeat)>,
    windows: WindowSet,
    current_input: usize,
}

impl HeartbeatSink for PacketLanes {
    type Capture = usize;

    fn capture(&mut self, name: &str) -> usize {
        if let Some(i) = self.captures.iter().position(|c| c == name) {
            return i;
        }
        self.captures.push(name.to_string());
        self.owners.push(self.current_input);
        self.captures.len() - 1
    }

    fn observe(&mut self, capture: usize, hb: &Heartbeat) {
        if self.windows.find(hb.t_ns).is_some() {
            self.seen.push((capture, *hb));
        }
    }
}

impl PacketLanes {
    /// Reads every source again, keeping the heartbeats in `windows`. `input_of` gives
    /// each source's input index (capture points are owned by the input they came
    /// from).
    pub fn read(
        sources: &[Source],
        input_of: impl Fn(&Source) -> usize,
        opts: &AnalyzeOptions,
        windows: &WindowSet,
    ) -> Result<Self, AnalyzeError> {
        let mut lanes = PacketLanes {
            windows: windows.clone(),
            ..PacketLanes::default()
        };
        let ports = opts.udp_ports();
        for source in sources {
            lanes.current_input = input_of(source);
            crate::read_source(source, &ports, opts, &mut lanes)?;
        }
        lanes.seen.sort_by_key(|(_, hb)| hb.t_ns);
        Ok(lanes)
    }

    /// The input index that holds capture point `name`.
    pub fn owner(&self, name: &str) -> Option<usize> {
        let i = self.captures.iter().position(|c| c == name)?;
        self.owners.get(i).copied()
    }

    fn same_group(gap: &Gap, hb: &Heartbeat) -> bool {
        let g = &gap.stream.group;
        hb.protocol == g.protocol
            && hb.group == g.vrid
            && hb.vlan == g.vlan
            && hb.src.is_ipv6() == gap.stream.src.is_ipv6()
    }

    /// The gap's group at every capture point in `w`, by capture point and sender.
    pub fn lanes(&self, gap: &Gap, w: Window) -> Vec<CaptureLane> {
        let mut lanes: HashMap<(usize, IpAddr), Vec<Timestamp>> = HashMap::new();
        for (c, hb) in self.in_window(w) {
            if Self::same_group(gap, hb) {
                lanes
                    .entry((*c, hb.src))
                    .or_default()
                    .push(Timestamp(hb.t_ns));
            }
        }
        let mut out: Vec<CaptureLane> = lanes
            .into_iter()
            .map(|((c, src), packets)| CaptureLane {
                capture: self.captures.get(c).cloned().unwrap_or_default(),
                src,
                packets,
            })
            .collect();
        out.sort_by(|a, b| (&a.capture, a.src).cmp(&(&b.capture, b.src)));
        out
    }

    /// Times of the gap's sender's packets at capture point `capture` in `w`.
    pub fn sender_times(&self, gap: &Gap, capture: &str, w: Window) -> Vec<i64> {
        let Some(c) = self.captures.iter().position(|n| n == capture) else {
            return Vec::new();
        };
        self.in_window(w)
            .filter(|(ci, hb)| *ci == c && hb.src == gap.stream.src && Self::same_group(gap, hb))
            .map(|(_, hb)| hb.t_ns)
            .collect()
    }

    /// Capture points (with their input) that saw the gap's sender in `w`.
    pub fn captures_of_sender(&self, gap: &Gap, w: Window) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (c, hb) in self.in_window(w) {
            if hb.src == gap.stream.src && Self::same_group(gap, hb) {
                let name = self.captures.get(*c).cloned().unwrap_or_default();
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, self.owners.get(*c).copied().unwrap_or(usize::MAX)));
                }
            }
        }
        out.sort();
        out
    }

    fn in_window(&self, w: Window) -> impl Iterator<Item = &(usize, Heartbeat)> {
        let a = self.seen.partition_point(|(_, hb)| hb.t_ns < w.start);
        let b = self.seen.partition_point(|(_, hb)| hb.t_ns <= w.end);
        self.seen.get(a..b.max(a)).unwrap_or_default().iter()
    }
}
