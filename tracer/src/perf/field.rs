//! Typed accessors for tracepoint fields, checked once against the format file.
//!
//! A decoder does not walk format fields per sample. When a tracepoint is opened, each
//! field it needs is looked up in the format and turned into an accessor ([`Int`],
//! [`Str`], [`IntArray`]) that has already checked everything the format alone can
//! tell: that the field exists, that an integer is 1, 2, 4 or 8 bytes wide, that a
//! string is a `char` array or a `__data_loc`/`__rel_loc` string. What is left for
//! decode time is only what a payload can get wrong: being too short, pointing a
//! dynamic string outside itself, or holding a value the record type cannot hold.

use vmlat_bundle::Comm;

use crate::tracefs::{EventFormat, Field, FieldKind};

use super::cursor::{Cursor, Truncated, Width};

/// A field the format does not provide the way a decoder needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` of {event}: {problem}")]
pub struct LayoutError {
    pub event: String,
    pub field: String,
    pub problem: String,
}

/// A payload that does not fit its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("field `{field}` {truncated}")]
    Truncated {
        field: &'static str,
        truncated: Truncated,
    },
    #[error("field `{field}` holds {value}, which does not fit the record")]
    OutOfRange { field: &'static str, value: i128 },
    #[error("payload of tracepoint id {0} which vmlat did not open")]
    UnknownEvent(u64),
    #[error("sample of {0} bytes is not a perf sample: {1}")]
    Sample(usize, Truncated),
}

fn lookup<'f>(format: &'f EventFormat, name: &str) -> Result<&'f Field, LayoutError> {
    format.field(name).ok_or_else(|| LayoutError {
        event: format.name.clone(),
        field: name.to_owned(),
        problem: "not in the format file (a kernel with another layout)".into(),
    })
}

fn unfit(format: &EventFormat, field: &Field, wanted: &str) -> LayoutError {
    LayoutError {
        event: format.name.clone(),
        field: field.name.clone(),
        problem: format!("wanted {wanted}, found {field}"),
    }
}

/// An integer field. Reads sign- or zero-extend by the format's `signed:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    name: &'static str,
    offset: usize,
    width: Width,
    signed: bool,
}

impl Int {
    pub fn resolve(format: &EventFormat, name: &'static str) -> Result<Self, LayoutError> {
        let field = lookup(format, name)?;
        let width = Width::from_size(field.size).filter(|_| field.kind == FieldKind::Scalar);
        match width {
            Some(width) => Ok(Int {
                name,
                offset: field.offset,
                width,
                signed: field.signed,
            }),
            None => Err(unfit(format, field, "an integer of 1, 2, 4 or 8 bytes")),
        }
    }

    /// The value, widened to 128 bits so that no u64 or i64 is ever misread.
    fn read(&self, payload: &[u8]) -> Result<i128, PayloadError> {
        let bits = Cursor::at(payload, self.offset)
            .uint(self.width)
            .map_err(|truncated| PayloadError::Truncated {
                field: self.name,
                truncated,
            })?;
        Ok(if self.signed {
            let shift = 64 - self.width.bits();
            i128::from(((bits << shift) as i64) >> shift)
        } else {
            i128::from(bits)
        })
    }

    /// The value as `T`, or an error if it does not fit (say, a negative `prev_state`
    /// read into a `u64`, or a 64-bit pid).
    pub fn get<T: TryFrom<i128>>(&self, payload: &[u8]) -> Result<T, PayloadError> {
        let value = self.read(payload)?;
        T::try_from(value).map_err(|_| PayloadError::OutOfRange {
            field: self.name,
            value,
        })
    }

    /// The value's bits as a `u64`, for fields that are bit masks or addresses whatever
    /// their declared signedness (`long prev_state`, syscall arguments).
    pub fn bits(&self, payload: &[u8]) -> Result<u64, PayloadError> {
        self.read(payload).map(|v| v as u64)
    }
}

/// A text field: a fixed `char` array or a dynamic (`__data_loc`/`__rel_loc`) string.
/// Reads stop at the first NUL and replace invalid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str {
    name: &'static str,
    offset: usize,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `len` bytes at `offset`.
    Inline { len: usize },
    /// A u32 at `offset`: low 16 bits where the text starts (from the start of the
    /// payload, or from `offset + 4` when `relative`), high 16 bits its length.
    Dynamic { relative: bool },
}

impl Str {
    pub fn resolve(format: &EventFormat, name: &'static str) -> Result<Self, LayoutError> {
        let field = lookup(format, name)?;
        let is_char = field
            .type_name
            .split_whitespace()
            .any(|w| w.starts_with("char"));
        let place = match field.kind {
            FieldKind::Array { .. } if is_char => Place::Inline { len: field.size },
            FieldKind::DataLoc if field.size == 4 => Place::Dynamic { relative: false },
            FieldKind::RelLoc if field.size == 4 => Place::Dynamic { relative: true },
            _ => return Err(unfit(format, field, "a char array or a __data_loc string")),
        };
        Ok(Str {
            name,
            offset: field.offset,
            place,
        })
    }

    /// The bytes of the field up to its first NUL.
    fn text<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], PayloadError> {
        let truncated = |truncated| PayloadError::Truncated {
            field: self.name,
            truncated,
        };
        let bytes = match self.place {
            Place::Inline { len } => Cursor::at(payload, self.offset).bytes(len),
            Place::Dynamic { relative } => {
                let loc = Cursor::at(payload, self.offset).u32().map_err(truncated)?;
                let base = if relative { self.offset + 4 } else { 0 };
                let start = base + (loc & 0xffff) as usize;
                Cursor::at(payload, start).bytes((loc >> 16) as usize)
            }
        }
        .map_err(truncated)?;
        Ok(bytes.split(|&b| b == 0).next().unwrap_or_default())
    }

    pub fn get(&self, payload: &[u8]) -> Result<String, PayloadError> {
        Ok(String::from_utf8_lossy(self.text(payload)?).into_owned())
    }

    /// A task name, held inline: no allocation (see [`Comm`]).
    pub fn comm(&self, payload: &[u8]) -> Result<Comm, PayloadError> {
        Ok(Comm::from_bytes(self.text(payload)?))
    }
}

/// A fixed array of integers, e.g. `unsigned long args[6]` (4-byte elements on a
/// 32-bit kernel). Elements are zero-extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntArray<const N: usize> {
    name: &'static str,
    offset: usize,
    width: Width,
}

impl<const N: usize> IntArray<N> {
    pub fn resolve(format: &EventFormat, name: &'static str) -> Result<Self, LayoutError> {
        let field = lookup(format, name)?;
        let width = match field.kind {
            FieldKind::Array { len: Some(len) } if len == N && field.size % N == 0 => {
                Width::from_size(field.size / N)
            }
            _ => None,
        };
        match width {
            Some(width) => Ok(IntArray {
                name,
                offset: field.offset,
                width,
            }),
            None => Err(unfit(format, field, &format!("an array of {N} integers"))),
        }
    }

    pub fn get(&self, payload: &[u8]) -> Result<[u64; N], PayloadError> {
        let mut c = Cursor::at(payload, self.offset);
        let mut out = [0; N];
        for slot in &mut out {
            *slot = c
                .uint(self.width)
                .map_err(|truncated| PayloadError::Truncated {
                    field: self.name,
                    truncated,
                })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(fields: &str) -> EventFormat {
        EventFormat::parse(&format!("name: t\nID: 1\nformat:\n{fields}")).unwrap()
    }

    #[test]
    fn integers_extend_by_signedness_and_size() {
        let f = format(
            "\tfield:short s;\toffset:0;\tsize:2;\tsigned:1;\n\
             \tfield:unsigned short u;\toffset:0;\tsize:2;\tsigned:0;\n\
             \tfield:long l;\toffset:0;\tsize:8;\tsigned:1;\n",
        );
        let payload = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Int::resolve(&f, "s").unwrap().get::<i32>(&payload), Ok(-2));
        assert_eq!(
            Int::resolve(&f, "u").unwrap().get::<i32>(&payload),
            Ok(0xfffe)
        );
        let l = Int::resolve(&f, "l").unwrap();
        assert_eq!(l.get::<i64>(&payload), Ok(-2));
        assert_eq!(l.bits(&payload), Ok(u64::MAX - 1));
        assert!(matches!(
            l.get::<u64>(&payload),
            Err(PayloadError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.get::<i64>(&payload[..7]),
            Err(PayloadError::Truncated { .. })
        ));
    }

    #[test]
    fn resolve_rejects_fields_of_the_wrong_shape() {
        let f = format(
            "\tfield:char c[3];\toffset:0;\tsize:3;\tsigned:0;\n\
             \tfield:int x;\toffset:0;\tsize:3;\tsigned:1;\n\
             \tfield:int a[2];\toffset:0;\tsize:8;\tsigned:1;\n",
        );
        assert!(Int::resolve(&f, "c").is_err());
        assert!(Int::resolve(&f, "x").is_err());
        assert!(Int::resolve(&f, "missing")
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(Str::resolve(&f, "x").is_err());
        assert!(Str::resolve(&f, "a").is_err());
        assert!(IntArray::<6>::resolve(&f, "a").is_err());
        assert!(IntArray::<2>::resolve(&f, "a").is_ok());
    }

    #[test]
    fn strings_inline_data_loc_and_rel_loc() {
        let f = format(
            "\tfield:char c[8];\toffset:0;\tsize:8;\tsigned:0;\n\
             \tfield:__data_loc char[] d;\toffset:8;\tsize:4;\tsigned:0;\n\
             \tfield:__rel_loc char[] r;\toffset:12;\tsize:4;\tsigned:0;\n",
        );
        let mut p = b"abc\0zzzz".to_vec();
        p.extend_from_slice(&(16u32 | (6 << 16)).to_ne_bytes()); // "hello\0" at 16
        p.extend_from_slice(&(6u32 | (3 << 16)).to_ne_bytes()); // 16 + 6 = 22: "ok\0"
        p.extend_from_slice(b"hello\0ok\0");
        assert_eq!(Str::resolve(&f, "c").unwrap().get(&p).unwrap(), "abc");
        assert_eq!(Str::resolve(&f, "d").unwrap().get(&p).unwrap(), "hello");
        assert_eq!(Str::resolve(&f, "r").unwrap().get(&p).unwrap(), "ok");
        // A full array without NUL, and invalid UTF-8, still read.
        let full = b"\xffbcdefgh".to_vec();
        assert_eq!(
            Str::resolve(&f, "c").unwrap().get(&full).unwrap(),
            "\u{fffd}bcdefgh"
        );
        // A location pointing outside the payload is an error, never a panic.
        let mut bad = p.clone();
        bad[8..12].copy_from_slice(&(0xfff0u32 | (0xffff << 16)).to_ne_bytes());
        assert!(Str::resolve(&f, "d").unwrap().get(&bad).is_err());
    }
}
