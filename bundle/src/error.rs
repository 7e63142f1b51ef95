//! Errors of reading and writing bundles, each naming the file and what to do.

use std::path::PathBuf;

/// Everything that can go wrong with a bundle on disk.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: disk full while writing; the recording was stopped and everything flushed before this point is readable (free some space, or record to another disk with -o)")]
    DiskFull { path: PathBuf },
    #[error("{path} is not a vmlat bundle: {reason}")]
    NotABundle { path: PathBuf, reason: String },
    #[error("{path}: bundle format version {found} is newer than this vmlat understands ({supported}); upgrade vmlat")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: bundle format version {found} is older than any vmlat wrote (the first was {first}): the file is damaged or not vmlat's; record again")]
    AncientVersion {
        path: PathBuf,
        found: u32,
        first: u32,
    },
    #[error("{path}: manifest is not valid JSON: {source}")]
    BadManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl BundleError {
    /// Wraps an I/O error, turning ENOSPC/EDQUOT into [`BundleError::DiskFull`] so that
    /// callers can stop cleanly and say so.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(code) if code == 28 || code == 122 => BundleError::DiskFull { path },
            _ => BundleError::Io { path, source },
        }
    }

    /// True when the error is a full disk (the recorder stops and exits 2).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, BundleError::DiskFull { .. })
    }
}
