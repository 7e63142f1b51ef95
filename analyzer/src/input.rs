//! What an input path is: a capture file, or a bundle directory whose `pcap/` files are
//! read like capture files, each under the capture name its manifest gives, with their
//! realtime stamps put on the bundle's time line ([`crate::align`]).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmlat_bundle::{Manifest, KEEPALIVED_JOURNAL_FILE, MANIFEST_FILE, PCAP_DIR};

use crate::align::BundleClock;
use crate::AnalyzeError;

/// One capture file to read, and the capture point name its packets get.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The path the user gave.
    pub input: PathBuf,
    pub file: PathBuf,
    pub capture: String,
    /// The bundle's clock, shared by its capture files, which converts their realtime
    /// stamps; `None` for a capture file given alone, whose stamps are kept.
    pub clock: Option<Arc<BundleClock>>,
}

/// Resolves every input before any is read, so that a wrong path fails at once.
pub fn resolve(inputs: &[PathBuf]) -> Result<Vec<Source>, AnalyzeError> {
    if inputs.is_empty() {
        return Err(AnalyzeError::NoInputs);
    }
    let mut sources = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(|e| AnalyzeError::io(input, e))?;
        if meta.is_dir() {
            sources.extend(bundle(input)?);
        } else if meta.len() == 0 {
            // A file given alone that holds nothing is not a quiet network.
            return Err(AnalyzeError::NotACapture {
                path: input.clone(),
                reason: "it is empty (0 bytes)".into(),
            });
        } else {
            sources.push(Source {
                input: input.clone(),
                file: input.clone(),
                capture: file_name(input),
                clock: None,
            });
        }
    }
    Ok(sources)
}

/// The copies of keepalived's journal lines that bundle inputs carry
/// (`docs/bundle-format.md`): the keepalived logs of an analysis given none.
pub fn bundle_journals(inputs: &[PathBuf]) -> Vec<PathBuf> {
    inputs
        .iter()
        .map(|i| i.join(KEEPALIVED_JOURNAL_FILE))
        .filter(|j| j.is_file())
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The manifest's captures first, under their names; then any pcap in `pcap/` the
/// manifest does not list (a recorder killed before rewriting it), under its file name.
/// A bundle with captures has its clock anchors read here, once (see
/// [`BundleClock::read`]).
fn bundle(dir: &Path) -> Result<Vec<Source>, AnalyzeError> {
    if !dir.join(MANIFEST_FILE).exists() {
        return Err(AnalyzeError::NotABundle {
            path: dir.to_path_buf(),
        });
    }
    let manifest = Manifest::load(dir)?;
    let mut sources: Vec<Source> = manifest
        .recorded
        .captures
        .iter()
        .map(|c| Source {
            input: dir.to_path_buf(),
            file: dir.join(&c.file),
            capture: c.name.clone(),
            clock: None,
        })
        .collect();
    let listed: HashSet<PathBuf> = sources.iter().map(|s| s.file.clone()).collect();
    let pcap_dir = dir.join(PCAP_DIR);
    let mut unlisted = Vec::new();
    match fs::read_dir(&pcap_dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(|e| AnalyzeError::io(&pcap_dir, e))?.path();
                let is_capture = path
                    .extension()
                    .is_some_and(|e| e == "pcap" || e == "pcapng");
                if is_capture && !listed.contains(&path) {
                    unlisted.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AnalyzeError::io(&pcap_dir, e)),
    }
    unlisted.sort();
    sources.extend(unlisted.into_iter().map(|file| Source {
        input: dir.to_path_buf(),
        capture: file_name(&file),
        file,
        clock: None,
    }));
    if sources.is_empty() {
        return Ok(sources);
    }
    let clock = Arc::new(BundleClock::read(dir, &manifest)?);
    for s in &mut sources {
        s.clock = Some(Arc::clone(&clock));
    }
    Ok(sources)
}

impl Source {
    /// When the recording of its bundle stopped (UTC ns on the bundle's time line, from
    /// its manifest's stop pair); `None` for a capture file, whose last packet is its
    /// end.
    pub fn stopped_ns(&self) -> Option<i64> {
        self.clock.as_ref().and_then(|c| c.stopped_ns())
    }
}
