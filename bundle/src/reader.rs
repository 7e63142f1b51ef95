//! Streaming, torn-tail tolerant reader of `events.vmlat`.
//!
//! The reader holds one chunk in memory at a time. It stops at the first chunk that is
//! short, has a bad magic or fails its CRC, and reports that as a torn tail instead of
//! an error: a recorder killed mid-write leaves exactly that.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::writer::{
    CHUNK_HEADER_LEN, CHUNK_MAGIC, EVENTS_VERSION, EVENTS_VERSION_MIN, FILE_MAGIC,
};
use crate::{BundleError, Record, EVENTS_FILE};

/// What a finished read found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub chunks: u64,
    pub records: u64,
    /// The file ended inside a chunk, or its last chunk was corrupt.
    pub torn_tail: bool,
    /// Why the tail was considered torn, for `vmlat inspect`.
    pub torn_reason: Option<String>,
}

/// Iterates the records of an event stream, in file order.
pub struct EventReader {
    input: BufReader<File>,
    path: PathBuf,
    payload: Vec<u8>,
    cursor: usize,
    remaining_in_chunk: u32,
    summary: ReadSummary,
    done: bool,
    version: Option<u32>,
}

/// Opens the event stream of the bundle in `dir`.
pub fn read_bundle_events(dir: &Path) -> Result<EventReader, BundleError> {
    EventReader::open(&dir.join(EVENTS_FILE))
}

impl EventReader {
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let file = File::open(path).map_err(|e| BundleError::io(path, e))?;
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut header = [0u8; 12];
        let complete = read_full(&mut input, &mut header).map_err(|e| BundleError::io(path, e))?;
        let mut reader = EventReader {
            input,
            path: path.to_path_buf(),
            payload: Vec::new(),
            cursor: 0,
            remaining_in_chunk: 0,
            summary: ReadSummary::default(),
            done: false,
            version: None,
        };
        if !complete {
            // Killed before the header was out: an empty, torn stream.
            reader.mark_torn("the file ends inside its header");
            return Ok(reader);
        }
        if &header[0..8] != FILE_MAGIC {
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                reason: "the event stream does not start with VMLATEV".into(),
            });
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version > EVENTS_VERSION {
            return Err(BundleError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: EVENTS_VERSION,
            });
        }
        if version < EVENTS_VERSION_MIN {
            return Err(BundleError::AncientVersion {
                path: path.to_path_buf(),
                found: version,
                first: EVENTS_VERSION_MIN,
            });
        }
        reader.version = Some(version);
        Ok(reader)
    }

    /// The stream's format version from its header (1 or 2; see
    /// [`EVENTS_VERSION`](crate::EVENTS_VERSION)); `None` when the file ends inside
    /// its header. Version 1 streams hold no `Freezer` records: the recorder did not
    /// sample the cgroup freezer.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// What has been read so far; final once the iterator returned `None`.
    pub fn summary(&self) -> &ReadSummary {
        &self.summary
    }

    fn mark_torn(&mut self, reason: &str) {
        self.summary.torn_tail = true;
        self.summary.torn_reason = Some(reason.to_string());
        self.done = true;
    }

    /// Loads the next chunk; `Ok(false)` at a clean end or a torn tail.
    fn next_chunk(&mut self) -> Result<bool, BundleError> {
        let mut header = [0u8; CHUNK_HEADER_LEN];
        let mut first = [0u8; 1];
        match self.input.read(&mut first) {
            Ok(0) => return Ok(false),
            Ok(_) => header[0] = first[0],
            Err(e) => return Err(BundleError::io(&self.path, e)),
        }
        if !read_full(&mut self.input, &mut header[1..])
            .map_err(|e| BundleError::io(&self.path, e))?
        {
            self.mark_torn("the file ends inside a chunk header");
            return Ok(false);
        }
        if &header[0..4] != CHUNK_MAGIC {
            self.mark_torn("a chunk header has a bad magic");
            return Ok(false);
        }
        let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let count = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
        if len > 64 << 20 {
            self.mark_torn("a chunk header announces an impossible length");
            return Ok(false);
        }
        // Read what is there rather than allocate what the header claims: a hostile
        // or torn header costs no more memory than the file holds.
        self.payload.clear();
        (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut self.payload)
            .map_err(|e| BundleError::io(&self.path, e))?;
        if self.payload.len() < len {
            self.mark_torn("the file ends inside a chunk");
            return Ok(false);
        }
        if crc32fast::hash(&self.payload) != crc {
            self.mark_torn("the last chunk fails its CRC");
            return Ok(false);
        }
        self.cursor = 0;
        self.remaining_in_chunk = count;
        self.summary.chunks += 1;
        Ok(true)
    }
}

impl Iterator for EventReader {
    type Item = Result<Record, BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining_in_chunk == 0 {
            if self.done {
                return None;
            }
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        match postcard::take_from_bytes::<Record>(&self.payload[self.cursor..]) {
            Ok((record, rest)) => {
                self.cursor = self.payload.len() - rest.len();
                self.remaining_in_chunk -= 1;
                self.summary.records += 1;
                Some(Ok(record))
            }
            Err(e) => {
                // The CRC matched, so this is a writer of a newer format or a bug:
                // say so instead of guessing at the rest.
                self.done = true;
                Some(Err(BundleError::NotABundle {
                    path: self.path.clone(),
                    reason: format!(
                        "record {} of chunk {} does not decode ({e}); written by a newer vmlat?",
                        self.summary.records, self.summary.chunks
                    ),
                }))
            }
        }
    }
}

/// Fills `buf` entirely; `Ok(false)` if the input ended first.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
