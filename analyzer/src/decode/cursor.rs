//! A bounds-checked reader over a packet's bytes, in the spirit of tcpdump's `GET_*`
//! accessors: every read either returns the bytes it asked for or an error naming what
//! was cut short, so that decoders never index a slice and a short packet can never
//! panic or be read past its end.

use super::Malformed;

/// Reads fields front to back; each read consumes what it returns.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    rest: &'a [u8],
    /// What a short read reports, e.g. "truncated VRRP header".
    truncated: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], truncated: &'static str) -> Self {
        Cursor {
            rest: data,
            truncated,
        }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Everything not read yet, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.rest.len() {
            return Err(Malformed(self.truncated));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Malformed> {
        self.bytes(n).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Malformed(self.truncated))?;
        self.rest = tail;
        Ok(*head)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn be_u16(&mut self) -> Result<u16, Malformed> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn be_u32(&mut self) -> Result<u32, Malformed> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn le_u32(&mut self) -> Result<u32, Malformed> {
        self.array().map(u32::from_le_bytes)
    }

    /// A 16-bit field in the byte order given (pcapng blocks are in their section's order).
    pub fn u16_in(&mut self, big_endian: bool) -> Result<u16, Malformed> {
        let bytes = self.array()?;
        Ok(if big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    /// A 32-bit field in the byte order given.
    pub fn u32_in(&mut self, big_endian: bool) -> Result<u32, Malformed> {
        let bytes = self.array()?;
        Ok(if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_fail_without_consuming() {
        let mut c = Cursor::new(&[1, 2, 3], "truncated test");
        assert_eq!(c.be_u16(), Ok(0x0102));
        assert_eq!(c.be_u16(), Err(Malformed("truncated test")));
        assert_eq!(c.u8(), Ok(3));
        assert_eq!(c.bytes(1), Err(Malformed("truncated test")));
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn byte_orders() {
        let data = [1, 0, 0, 0, 0, 1];
        let mut c = Cursor::new(&data, "t");
        assert_eq!(c.le_u32(), Ok(1));
        assert_eq!(c.u16_in(true), Ok(1));
        let mut c = Cursor::new(&data, "t");
        assert_eq!(c.u32_in(false), Ok(1));
        assert_eq!(c.u16_in(false), Ok(0x0100));
    }
}
