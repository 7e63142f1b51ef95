//! vmlat's recorder: collectors on their own threads feed one bundle writer.
//!
//! Collectors (packets with libpcap, tracepoints with perf, counters from /proc) hand
//! records over bounded crossbeam channels; the writer merges them into CLOCK_MONOTONIC
//! order and streams them into the bundle. Everything that needs privileges lives here,
//! so that the analyzer and plots build and test without them.

pub mod capture;
pub mod cgroup;
pub mod clock;
pub mod journal;
pub mod pipeline;
pub mod sampler;
pub mod sorter;

pub mod perf;
pub mod privileges;
pub mod probe;
pub mod qemu;
pub mod recorder;
pub mod sysinfo;
pub mod tracefs;
