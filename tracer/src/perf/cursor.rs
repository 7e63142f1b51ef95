//! A bounds-checked reader over bytes the kernel wrote.
//!
//! Every perf record and tracepoint payload is read through a [`Cursor`]: a read that
//! would cross the end of the buffer returns [`Truncated`] instead of panicking or
//! reading past it (tcpdump's `ND_TCHECK` discipline). Integers are in the host's byte
//! order, as the kernel writes them into the ring.

use std::fmt;

/// A read ran past the end of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// Where the read started.
    pub at: usize,
    /// How many bytes it needed.
    pub need: usize,
    /// How long the buffer is.
    pub len: usize,
}

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs bytes {}..{} of a {}-byte buffer",
            self.at,
            self.at.saturating_add(self.need),
            self.len
        )
    }
}

/// A position in a byte buffer. The position may lie past the end (a data offset
/// read from a corrupt record): every read then fails, because reads go through
/// `slice::get`, never through indexing.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The width of an integer field: the only sizes a cursor reads integers of. Built
/// from a format file's `size:` once, so that decoding has no "odd size" case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    W1,
    W2,
    W4,
    W8,
}

impl Width {
    pub fn from_size(size: usize) -> Option<Width> {
        match size {
            1 => Some(Width::W1),
            2 => Some(Width::W2),
            4 => Some(Width::W4),
            8 => Some(Width::W8),
            _ => None,
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            Width::W1 => 8,
            Width::W2 => 16,
            Width::W4 => 32,
            Width::W8 => 64,
        }
    }
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// A cursor at `pos`, which may lie past the end: the first read then fails.
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(Truncated {
                at: self.pos,
                need: n,
                len: self.buf.len(),
            }),
        }
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let at = self.pos;
        let bytes = self.bytes(N)?;
        // `bytes` has exactly N bytes, so this cannot fail; it is mapped rather than
        // unwrapped to keep the module panic-free by construction.
        bytes.try_into().map_err(|_| Truncated {
            at,
            need: N,
            len: self.buf.len(),
        })
    }

    pub fn u16(&mut self) -> Result<u16, Truncated> {
        self.array().map(u16::from_ne_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, Truncated> {
        self.array().map(u32::from_ne_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, Truncated> {
        self.array().map(u64::from_ne_bytes)
    }

    /// An unsigned integer of the given width, zero-extended.
    pub fn uint(&mut self, width: Width) -> Result<u64, Truncated> {
        match width {
            Width::W1 => self.array::<1>().map(|[b]| u64::from(b)),
            Width::W2 => self.u16().map(u64::from),
            Width::W4 => self.u32().map(u64::from),
            Width::W8 => self.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_host_order_and_stops_at_the_end() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0x1234u16.to_ne_bytes());
        buf.extend_from_slice(&0xdead_beefu32.to_ne_bytes());
        buf.extend_from_slice(&7u64.to_ne_bytes());
        let mut c = Cursor::new(&buf);
        assert_eq!(c.u16(), Ok(0x1234));
        assert_eq!(c.u32(), Ok(0xdead_beef));
        assert_eq!(c.u64(), Ok(7));
        assert_eq!(
            c.uint(Width::W1),
            Err(Truncated {
                at: 14,
                need: 1,
                len: 14
            })
        );
        assert_eq!(
            c.uint(Width::W1),
            Err(Truncated {
                at: 14,
                need: 1,
                len: 14
            }),
            "a failed read does not move"
        );
    }

    #[test]
    fn sized_reads_zero_extend() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert_eq!(Cursor::new(&buf).uint(Width::W1), Ok(0xff));
        assert_eq!(Cursor::new(&buf).uint(Width::W2), Ok(0xffff));
        assert_eq!(Cursor::new(&buf).uint(Width::W4), Ok(0xffff_ffff));
        assert_eq!(Cursor::new(&buf).uint(Width::W8), Ok(0xffff_ffff));
        assert_eq!(Width::from_size(3), None);
    }

    #[test]
    fn positions_past_the_end_and_huge_lengths_fail_cleanly() {
        let buf = [1u8, 2, 3];
        assert!(Cursor::at(&buf, 3).u16().is_err());
        assert!(Cursor::at(&buf, usize::MAX).bytes(1).is_err());
        assert!(Cursor::at(&buf, 1).bytes(usize::MAX).is_err());
        assert_eq!(Cursor::at(&buf, 1).bytes(2), Ok(&buf[1..3]));
        assert_eq!(Cursor::at(&buf, 3).bytes(0), Ok(&buf[3..3]));
    }
}
