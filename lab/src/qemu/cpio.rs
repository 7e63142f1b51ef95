//! A writer of the cpio "newc" archives the kernel unpacks as its initramfs.
//!
//! Written here rather than by `cpio -o` so that the archive depends on the files' bytes
//! only: every entry has mtime 0, owner root and an inode number from its position, so
//! the same inputs give the same image, byte for byte.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being written to `out`; [`Cpio::finish`] writes the trailer.
pub(crate) struct Cpio<W: Write> {
    out: W,
    written: u64,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    pub(crate) fn new(out: W) -> Self {
        Cpio {
            out,
            written: 0,
            ino: 0,
        }
    }

    /// A directory; `path` has no leading slash (`usr/bin`).
    pub(crate) fn dir(&mut self, path: &str) -> io::Result<()> {
        self.entry(path, S_IFDIR | 0o755, 2, (0, 0), &[])
    }

    /// A regular file with permissions `perm` (0o755, 0o644).
    pub(crate) fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, 1, (0, 0), data)
    }

    /// A character device node, `major:minor`.
    pub(crate) fn char_dev(&mut self, path: &str, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | 0o600, 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[])?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        self.ino += 1;
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: newc entries hold at most 4 GiB"),
            )
        })?;
        let name_len = u32::try_from(path.len() + 1).unwrap_or(u32::MAX);
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_len, 0,
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(path.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Headers and data start on 4-byte boundaries.
    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..usize::try_from(n).unwrap_or(0)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_reproducible() {
        let mut c = Cpio::new(Vec::new());
        c.dir("bin").expect("dir");
        c.file("bin/hello", 0o755, b"hi\n").expect("file");
        c.char_dev("console", 5, 1).expect("dev");
        let bytes = c.finish().expect("trailer");
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let hello = bytes
            .windows(9)
            .position(|w| w == b"bin/hello")
            .expect("name");
        // 110-byte header before the name; the data follows the padded name.
        let data = (hello + 10).div_ceil(4) * 4;
        assert_eq!(&bytes[data..data + 3], b"hi\n");
        let again = {
            let mut c = Cpio::new(Vec::new());
            c.dir("bin")
                .and_then(|()| c.file("bin/hello", 0o755, b"hi\n"))
                .expect("again");
            c.char_dev("console", 5, 1).expect("dev");
            c.finish().expect("trailer")
        };
        assert_eq!(bytes, again, "same inputs, same bytes");
    }
}
