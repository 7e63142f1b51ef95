//! Streaming writer of `events.vmlat`.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! file   := header chunk*
//! header := "VMLATEV\0" version:u32
//! chunk  := "CHNK" payload_len:u32 record_count:u32 crc32(payload):u32 payload
//! payload:= postcard(Record)*
//! ```
//!
//! A chunk is written with one `write_all` when [`EventWriter::flush`] is called or the
//! pending payload passes [`EventWriter::CHUNK_BYTES`]. A process killed at any instant
//! therefore leaves whole chunks followed by at most one partial one, which the reader
//! recognises by its length or CRC and reports as a torn tail.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{BundleError, Record};

pub(crate) const FILE_MAGIC: &[u8; 8] = b"VMLATEV\0";
pub(crate) const CHUNK_MAGIC: &[u8; 4] = b"CHNK";
/// Version of the event stream this crate writes, in the file header.
///
/// - 1: records 0 to 15 (`SchedSwitch` to `Losses`).
/// - 2: adds `Record::Freezer` (16), the cgroup freezer state of traced threads.
///
/// A version-2 stream says the recorder sampled the freezer: no `Freezer` record for
/// a thread there means its cgroups could not be read, not that nobody looked.
pub const EVENTS_VERSION: u32 = 2;
/// The oldest event stream version the reader accepts.
pub const EVENTS_VERSION_MIN: u32 = 1;
pub(crate) const CHUNK_HEADER_LEN: usize = 16;

/// Appends records to an event stream in CRC-framed chunks.
pub struct EventWriter {
    file: File,
    path: PathBuf,
    /// The chunk being built: room for its header, then the payload. Reused for every
    /// chunk, so that a busy recorder allocates nothing per chunk.
    chunk: Vec<u8>,
    pending_records: u32,
    records_written: u64,
    bytes_written: u64,
}

/// A chunk buffer holding only the room for its header.
fn empty_chunk() -> Vec<u8> {
    let mut chunk = Vec::with_capacity(CHUNK_HEADER_LEN + EventWriter::CHUNK_BYTES + 4096);
    chunk.resize(CHUNK_HEADER_LEN, 0);
    chunk
}

impl EventWriter {
    /// A chunk is cut once its payload reaches this size, bounding memory.
    pub const CHUNK_BYTES: usize = 1 << 20;

    /// Creates the file (it must not exist) and writes its header.
    pub fn create(path: &Path) -> Result<Self, BundleError> {
        let mut file = crate::create_bundle_file(path).map_err(|e| BundleError::io(path, e))?;
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(FILE_MAGIC);
        header.extend_from_slice(&EVENTS_VERSION.to_le_bytes());
        file.write_all(&header)
            .map_err(|e| BundleError::io(path, e))?;
        Ok(EventWriter {
            file,
            path: path.to_path_buf(),
            chunk: empty_chunk(),
            pending_records: 0,
            records_written: 0,
            bytes_written: header.len() as u64,
        })
    }

    /// Queues one record; cuts a chunk when the pending payload is large enough.
    pub fn append(&mut self, record: &Record) -> Result<(), BundleError> {
        // `to_extend` pushes the few bytes of each field in place; `to_io` went through
        // `Write::write_all`, a memcpy call per field, which was a quarter of the
        // recorder's CPU under a busy load balancer (BENCHMARKS.md).
        self.chunk = postcard::to_extend(record, std::mem::take(&mut self.chunk))
            .expect("extending a Vec cannot fail");
        self.pending_records += 1;
        if self.chunk.len() - CHUNK_HEADER_LEN >= Self::CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything queued as one chunk, so that it survives the process.
    pub fn flush(&mut self) -> Result<(), BundleError> {
        if self.pending_records == 0 {
            return Ok(());
        }
        let payload_len = (self.chunk.len() - CHUNK_HEADER_LEN) as u32;
        let crc = crc32fast::hash(&self.chunk[CHUNK_HEADER_LEN..]);
        let header = &mut self.chunk[..CHUNK_HEADER_LEN];
        header[0..4].copy_from_slice(CHUNK_MAGIC);
        header[4..8].copy_from_slice(&payload_len.to_le_bytes());
        header[8..12].copy_from_slice(&self.pending_records.to_le_bytes());
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        // One write per chunk: a kill mid-write tears only the end of the file.
        self.file
            .write_all(&self.chunk)
            .map_err(|e| BundleError::io(&self.path, e))?;
        self.records_written += u64::from(self.pending_records);
        self.bytes_written += self.chunk.len() as u64;
        self.chunk.truncate(CHUNK_HEADER_LEN);
        self.pending_records = 0;
        Ok(())
    }

    /// Flushes and forces the data to stable storage.
    pub fn sync(&mut self) -> Result<(), BundleError> {
        self.flush()?;
        self.file
            .sync_data()
            .map_err(|e| BundleError::io(&self.path, e))
    }

    pub fn records_written(&self) -> u64 {
        self.records_written
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
}
