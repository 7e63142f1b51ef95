//! The heartbeats inside the gaps' windows, at every capture point of every input:
//! the packet lanes of each gap, and the advert times the sender is matched against.
//!
//! A second streaming read of the capture files keeps only what falls into a window.

use std::collections::HashMap;
use std::net::IpAddr;

use super::windows::{Window, WindowSet};
use crate::decode::Heartbeat;
use crate::input::Source;
use crate::model::{CaptureLane, StreamKey};
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

    /// Of the stream's group (its capture point aside), from any sender.
    fn same_group(key: &StreamKey, hb: &Heartbeat) -> bool {
        let g = &key.group;
        hb.protocol == g.protocol
            && hb.group == g.vrid
            && hb.vlan == g.vlan
            && hb.src.is_ipv6() == key.src.is_ipv6()
    }

    /// Whether two stream keys name the same stream, their capture points aside.
    pub fn same_stream(a: &StreamKey, b: &StreamKey) -> bool {
        let (x, y) = (&a.group, &b.group);
        a.src == b.src
            && a.peer == b.peer
            && x.protocol == y.protocol
            && x.vrid == y.vrid
            && x.vlan == y.vlan
    }

    /// Of the stream itself (its capture point aside): its group, source and peer.
    pub fn of_stream(key: &StreamKey, hb: &Heartbeat) -> bool {
        hb.src == key.src && key.peer.is_none_or(|p| p == hb.dst) && Self::same_group(key, hb)
    }

    /// The stream's group at every capture point in `w`, by capture point and sender.
    pub fn lanes(&self, key: &StreamKey, w: Window) -> Vec<CaptureLane> {
        let mut lanes: HashMap<(usize, IpAddr), Vec<Timestamp>> = HashMap::new();
        for (c, hb) in self.in_window(w) {
            if Self::same_group(key, hb) {
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

    /// Times of the stream's packets at capture point `capture` in `w`.
    pub fn sender_times(&self, key: &StreamKey, capture: &str, w: Window) -> Vec<i64> {
        self.stream_packets(key, capture, w)
            .map(|hb| hb.t_ns)
            .collect()
    }

    /// The stream's packets at capture point `capture` in `w`, in time order.
    pub fn stream_packets<'a>(
        &'a self,
        key: &'a StreamKey,
        capture: &str,
        w: Window,
    ) -> impl Iterator<Item = &'a Heartbeat> + 'a {
        let c = self.captures.iter().position(|n| n == capture);
        self.in_window(w)
            .filter(move |(ci, hb)| Some(*ci) == c && Self::of_stream(key, hb))
            .map(|(_, hb)| hb)
    }

    /// Times of the other heartbeats the stream's source sent, seen at `capture` in `w`:
    /// its other VRIDs (or ports), which keepalived may send on the same socket.
    pub fn other_groups_times(&self, key: &StreamKey, capture: &str, w: Window) -> Vec<i64> {
        let c = self.captures.iter().position(|n| n == capture);
        self.in_window(w)
            .filter(|(ci, hb)| Some(*ci) == c && hb.src == key.src && !Self::same_group(key, hb))
            .map(|(_, hb)| hb.t_ns)
            .collect()
    }

    /// Capture points (with their input) that saw the stream in `w`.
    pub fn captures_of_sender(&self, key: &StreamKey, w: Window) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (c, hb) in self.in_window(w) {
            if Self::of_stream(key, hb) {
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
