//! [`Comm`]: a task's kernel name, held inline.
//!
//! The kernel keeps a task's name in 16 bytes (`TASK_COMM_LEN`, NUL included). A
//! record carries one or two of them; as `String`s they cost an allocation and a free
//! each, and 24 bytes of every record, millions of times a second under a busy load
//! (BENCHMARKS.md). A [`Comm`] is the 16 bytes themselves. It is serialized as the str
//! a `String` was, so every bundle reads the same whichever wrote it.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A task's name: at most [`Comm::CAPACITY`] bytes of UTF-8, NUL-padded.
///
/// Built from anything longer (a name whose invalid UTF-8 became U+FFFD, which takes
/// three bytes for one; a long name in an older bundle), it keeps the longest prefix
/// that fits, cut between characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Comm([u8; Comm::CAPACITY]);

impl Comm {
    /// The kernel's `TASK_COMM_LEN`. The kernel's own names have at most 15 bytes and a
    /// NUL; one byte more holds a full array without a NUL, as a payload may have.
    pub const CAPACITY: usize = 16;

    /// The name `text`, up to its first NUL, cut to fit.
    pub fn new(text: &str) -> Comm {
        let text = text.split('\0').next().unwrap_or_default();
        let mut end = text.len().min(Self::CAPACITY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Comm(bytes)
    }

    /// The name in `bytes` as the kernel stores it: up to the first NUL, invalid UTF-8
    /// replaced by U+FFFD, cut to fit.
    pub fn from_bytes(bytes: &[u8]) -> Comm {
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        match std::str::from_utf8(text) {
            Ok(text) => Comm::new(text),
            Err(_) => Comm::new(&String::from_utf8_lossy(text)),
        }
    }

    pub fn as_str(&self) -> &str {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(Self::CAPACITY);
        // SAFETY: every `Comm` is built by `Comm::new` (or is all zeros, `Default`),
        // which copies a `&str` cut between characters: the bytes before the first NUL
        // are valid UTF-8. Checking them again on every read was a tenth of the
        // analysis of a large bundle (BENCHMARKS.md); a debug build still checks.
        debug_assert!(std::str::from_utf8(&self.0[..len]).is_ok());
        unsafe { std::str::from_utf8_unchecked(&self.0[..len]) }
    }
}

impl Deref for Comm {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Comm {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Hashes as its str does, so that maps keyed by `Comm` can be searched by `&str`.
impl Hash for Comm {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for Comm {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Comm {
    fn from(text: &str) -> Comm {
        Comm::new(text)
    }
}

impl From<&String> for Comm {
    fn from(text: &String) -> Comm {
        Comm::new(text)
    }
}

impl From<String> for Comm {
    fn from(text: String) -> Comm {
        Comm::new(&text)
    }
}

impl From<Comm> for String {
    fn from(comm: Comm) -> String {
        comm.as_str().to_owned()
    }
}

impl PartialEq<str> for Comm {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Comm {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Comm {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Comm> for str {
    fn eq(&self, other: &Comm) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Comm> for &str {
    fn eq(&self, other: &Comm) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Comm> for String {
    fn eq(&self, other: &Comm) -> bool {
        self == other.as_str()
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Comm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Comm, D::Error> {
        struct CommVisitor;
        impl Visitor<'_> for CommVisitor {
            type Value = Comm;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a task name")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Comm, E> {
                Ok(Comm::new(text))
            }
        }
        deserializer.deserialize_str(CommVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_exactly_as_the_string_it_replaced() {
        for name in ["", "keepalived", "kworker/u4:2-ev", "0123456789abcdef"] {
            let comm = Comm::new(name);
            assert_eq!(comm, name);
            assert_eq!(
                postcard::to_allocvec(&comm).unwrap(),
                postcard::to_allocvec(&name.to_string()).unwrap()
            );
            let bytes = postcard::to_allocvec(&name.to_string()).unwrap();
            assert_eq!(postcard::from_bytes::<Comm>(&bytes).unwrap(), name);
            assert_eq!(serde_json::to_string(&comm).unwrap(), format!("{name:?}"));
        }
    }

    #[test]
    fn longer_names_keep_the_prefix_that_fits_between_characters() {
        // An older bundle's long name reads, cut; never an error.
        let bytes = postcard::to_allocvec("a-name-of-twenty-bytes").unwrap();
        assert_eq!(
            postcard::from_bytes::<Comm>(&bytes).unwrap(),
            "a-name-of-twenty"
        );
        // Five U+FFFD of three bytes fill 15: the sixth does not fit whole.
        let invalid = Comm::from_bytes(b"\xff\xff\xff\xff\xff\xffok");
        assert_eq!(invalid, "\u{fffd}".repeat(5));
        assert_eq!(Comm::from_bytes(b"haproxy\0garbage!"), "haproxy");
        assert_eq!(Comm::from_bytes(b"sixteen-bytes-ok"), "sixteen-bytes-ok");
        assert_eq!(Comm::new("nul\0after"), "nul");
    }

    #[test]
    fn orders_and_hashes_as_its_str() {
        use std::collections::HashMap;
        let mut names = [Comm::new("abc"), Comm::new("ab"), Comm::new("b")];
        names.sort();
        assert_eq!(names.map(|c| c.to_string()), ["ab", "abc", "b"]);
        let map: HashMap<Comm, u32> = [(Comm::new("nginx"), 1)].into();
        assert_eq!(map.get("nginx"), Some(&1));
        assert_eq!(std::mem::size_of::<Comm>(), 16);
    }
}
