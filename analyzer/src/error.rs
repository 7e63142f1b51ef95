//! Why an input could not be analyzed, each error naming the file and the fix.
//!
//! Only inputs that cannot be read at all are errors; a malformed packet is counted, and
//! a torn or corrupt record ends the file's reading with the reason in the analysis.

use std::path::PathBuf;

/// An input that cannot be analyzed (the CLI exits with code 2).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a pcap or pcapng file ({reason}); pass a capture written by tcpdump, dumpcap or vmlat, or a vmlat bundle directory")]
    NotACapture { path: PathBuf, reason: String },
    #[error("{path}: link type {linktype} is not supported; vmlat reads Ethernet (1), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 12, 14), NULL (0) and LOOP (108): capture with `tcpdump -i IFACE` or `tcpdump -i any`")]
    UnsupportedLinkType { path: PathBuf, linktype: u32 },
    #[error("{path} is a directory but not a vmlat bundle (no manifest.json); pass a bundle directory or a .pcap/.pcapng file")]
    NotABundle { path: PathBuf },
    #[error(transparent)]
    Bundle(#[from] vmlat_bundle::BundleError),
    #[error("no input given; pass one or more bundle directories or pcap/pcapng files")]
    NoInputs,
    #[error("{path}: cannot read this keepalived log ({reason}); --keepalived-log takes a file of keepalived's log lines: its console log (keepalived -l), a syslog file such as /var/log/syslog, or its journal saved with `journalctl -u keepalived -o short-iso-precise > FILE` (or `-o json`)")]
    KeepalivedLog { path: PathBuf, reason: String },
}

impl AnalyzeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => AnalyzeError::NotFound { path },
            _ => AnalyzeError::Io { path, source },
        }
    }
}
