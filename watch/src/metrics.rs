//! `--metrics ADDR:PORT`: the watch's state in the Prometheus text format at `/metrics`.
//!
//! The exposition is the `prometheus` crate's (TiKV's, the most used Rust client): its
//! `TextEncoder` writes the classic text format 0.0.4 that every Prometheus scrapes and
//! that Debian 12's `promtool check metrics` lints cleanly (prometheus-client writes
//! OpenMetrics only, whose `_total` samples under a suffix-less `# TYPE` that promtool
//! 2.42 rejects). It is served by tiny_http on one thread of its own: a few scrapes a
//! minute need no async runtime. Metrics are updated where things happen (each
//! advert, each tick, each incident) and only read by a scrape.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use prometheus::{
    Counter, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use vmlat_analyzer::{GroupKey, Timestamp};
use vmlat_bundle::Losses;

/// Inter-advert interval buckets, in seconds: around keepalived's usual 1 s interval
/// (late adverts: 1.1 to 1.5, the default gap threshold), and around VRRP's master-down
/// interval (3 × 1 s + skew: 3 to 4 s), then real outages.
pub const INTERVAL_BUCKETS: [f64; 15] = [
    0.1, 0.25, 0.5, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 3.5, 4.0, 5.0, 10.0, 30.0,
];

const STREAM: [&str; 4] = ["capture", "protocol", "vrid", "router"];
const GROUP: [&str; 3] = ["capture", "protocol", "vrid"];

/// A heartbeat stream: capture point, protocol, VRID (or UDP port), sender.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct StreamLabels {
    pub capture: String,
    pub protocol: String,
    pub vrid: String,
    pub router: String,
}

impl StreamLabels {
    pub fn new(group: &GroupKey, router: IpAddr) -> Self {
        StreamLabels {
            capture: group.capture.clone(),
            protocol: group.protocol.name().to_string(),
            vrid: group.vrid.to_string(),
            router: router.to_string(),
        }
    }

    fn values(&self) -> [&str; 4] {
        [&self.capture, &self.protocol, &self.vrid, &self.router]
    }

    fn group(&self) -> [&str; 3] {
        [&self.capture, &self.protocol, &self.vrid]
    }
}

/// Every metric of a watch; cheap to clone (each is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    adverts: IntCounterVec,
    intervals: HistogramVec,
    master: IntGaugeVec,
    master_silence: GaugeVec,
    incidents: IntCounterVec,
    losses: IntCounterVec,
    cpu: Counter,
    memory: IntGauge,
    window_bytes: IntGauge,
    /// Every sender seen, for the master gauges.
    senders: Arc<Mutex<HashSet<StreamLabels>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` in `registry`; the names are fixed and distinct, so that it
/// cannot fail but by a bug here.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("fixed, distinct metric names");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("vmlat".into()), None).expect("a valid prefix");
        let r = &registry;
        let opts = |name: &str, help: &str| Opts::new(name, help);
        Metrics {
            adverts: register(r, IntCounterVec::new(
                opts("adverts_received_total", "Heartbeat adverts received per stream (duplicates of one packet not counted)"),
                &STREAM,
            ).expect("valid")),
            intervals: register(r, HistogramVec::new(
                HistogramOpts::new("advert_interval_seconds", "Time between a stream's consecutive adverts, in seconds")
                    .buckets(INTERVAL_BUCKETS.to_vec()),
                &STREAM,
            ).expect("valid")),
            master: register(r, IntGaugeVec::new(
                opts("master", "1 for each group's current master, 0 for its other senders"),
                &STREAM,
            ).expect("valid")),
            master_silence: register(r, GaugeVec::new(
                opts("master_silence_seconds", "Seconds since each group's current master last advertised"),
                &GROUP,
            ).expect("valid")),
            incidents: register(r, IntCounterVec::new(
                opts("incidents_total", "Incidents written, by the analyzed kind (silence, open, takeover, split-brain) and verdict"),
                &["kind", "verdict"],
            ).expect("valid")),
            losses: register(r, IntCounterVec::new(
                opts("lost_total", "What the recorder lost, by counter: pcap_dropped, pcap_if_dropped, perf_lost, queue_dropped, sampler_overruns, decode_errors, late_records (written out of order, not lost), window_overflow (records and packets an incident's window lost to --max-memory)"),
                &["counter"],
            ).expect("valid")),
            cpu: register(r, Counter::with_opts(
                opts("process_cpu_seconds_total", "CPU time of the vmlat process, user and system, in seconds"),
            ).expect("valid")),
            memory: register(r, IntGauge::with_opts(
                opts("process_resident_memory_bytes", "Resident memory of the vmlat process, in bytes"),
            ).expect("valid")),
            window_bytes: register(r, IntGauge::with_opts(
                opts("window_bytes", "Memory held by the watch window, in bytes"),
            ).expect("valid")),
            senders: Arc::default(),
            registry,
        }
    }

    /// One advert counted, `interval_ns` after the stream's previous one.
    pub fn advert(&self, stream: &StreamLabels, interval_ns: Option<i64>) {
        self.adverts.with_label_values(&stream.values()).inc();
        if let Some(ns) = interval_ns {
            self.intervals
                .with_label_values(&stream.values())
                .observe(ns as f64 / 1e9);
        }
        if let Ok(mut senders) = self.senders.lock() {
            if !senders.contains(stream) {
                senders.insert(stream.clone());
            }
        }
    }

    /// Each group's master now (group, router, last advert) at `now_ns`.
    pub fn masters(&self, masters: &[(GroupKey, IpAddr, Timestamp)], now_ns: i64) {
        let Ok(senders) = self.senders.lock() else {
            return;
        };
        for (group, router, last) in masters {
            let master = StreamLabels::new(group, *router);
            self.master_silence
                .with_label_values(&master.group())
                .set((now_ns - last.0) as f64 / 1e9);
            for sender in senders.iter().filter(|s| s.group() == master.group()) {
                self.master
                    .with_label_values(&sender.values())
                    .set(i64::from(*sender == master));
            }
        }
    }

    /// An incident written and analyzed.
    pub fn incident(&self, kind: &str, verdict: &str) {
        self.incidents.with_label_values(&[kind, verdict]).inc();
    }

    /// The cumulative loss counters, the window's own losses, and the process's CPU
    /// time and memory, read now.
    pub fn refresh(&self, losses: &Losses, window_overflow: u64, window_bytes: usize) {
        let counters = [
            ("pcap_dropped", losses.pcap_dropped),
            ("pcap_if_dropped", losses.pcap_if_dropped),
            ("perf_lost", losses.perf_lost),
            ("queue_dropped", losses.queue_dropped),
            ("sampler_overruns", losses.sampler_overruns),
            ("decode_errors", losses.decode_errors),
            ("late_records", losses.late_records),
            ("window_overflow", window_overflow),
        ];
        for (name, value) in counters {
            let counter = self.losses.with_label_values(&[name]);
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        self.window_bytes.set(window_bytes as i64);
        if let Ok(stat) = procfs::process::Process::myself().and_then(|p| p.stat()) {
            let cpu = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
            self.cpu.inc_by((cpu - self.cpu.get()).max(0.0));
            self.memory.set((stat.rss * procfs::page_size()) as i64);
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered metrics into memory does not fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The `/metrics` endpoint, served on its own thread until dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr`; fails at once (a port in use, an address not here).
    pub fn start(addr: SocketAddr, metrics: Metrics) -> Result<Self, std::io::Error> {
        let server = Arc::new(
            tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("vmlat-metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        tiny_http::Response::from_string(metrics.encode()).with_header(
                            tiny_http::Header::from_bytes(
                                "Content-Type",
                                TextEncoder::new().format_type(),
                            )
                            .expect("a valid header"),
                        )
                    } else {
                        tiny_http::Response::from_string("vmlat watch: metrics are at /metrics\n")
                            .with_status_code(404)
                    };
                    // A scraper that went away is its own problem.
                    let _ = request.respond(response);
                }
            })?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::group;

    #[test]
    fn exposes_streams_masters_incidents_and_losses() {
        let m = Metrics::new();
        let vr1 = StreamLabels::new(&group(), "10.0.0.1".parse().unwrap());
        let vr2 = StreamLabels::new(&group(), "10.0.0.2".parse().unwrap());
        m.advert(&vr1, None);
        m.advert(&vr1, Some(1_000_000_000));
        m.advert(&vr1, Some(4_100_000_000));
        m.advert(&vr2, None);
        m.masters(
            &[(
                group(),
                "10.0.0.1".parse().unwrap(),
                Timestamp(1_000_000_000),
            )],
            3_500_000_000,
        );
        m.incident("silence", "app-stopped");
        let losses = Losses {
            perf_lost: 7,
            ..Losses::default()
        };
        m.refresh(&losses, 0, 1234);
        let text = m.encode();
        let stream = r#"capture="eth0@vr2",protocol="vrrp",router="10.0.0.1",vrid="51""#;
        for line in [
            format!("vmlat_adverts_received_total{{{stream}}} 3"),
            format!("vmlat_advert_interval_seconds_bucket{{{stream},le=\"1\"}} 1"),
            format!("vmlat_advert_interval_seconds_bucket{{{stream},le=\"4\"}} 1"),
            format!("vmlat_advert_interval_seconds_bucket{{{stream},le=\"5\"}} 2"),
            format!("vmlat_master{{{stream}}} 1"),
            r#"vmlat_master{capture="eth0@vr2",protocol="vrrp",router="10.0.0.2",vrid="51"} 0"#
                .to_string(),
            r#"vmlat_master_silence_seconds{capture="eth0@vr2",protocol="vrrp",vrid="51"} 2.5"#
                .to_string(),
            r#"vmlat_incidents_total{kind="silence",verdict="app-stopped"} 1"#.to_string(),
            r#"vmlat_lost_total{counter="perf_lost"} 7"#.to_string(),
            "vmlat_window_bytes 1234".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert!(text.contains("vmlat_process_cpu_seconds_total "));
        assert!(text.contains("vmlat_process_resident_memory_bytes "));
    }
}
