//! tracefs: where the kernel describes its tracepoints.
//!
//! Every tracepoint has a directory `events/GROUP/NAME/` holding its numeric `id` (what
//! `perf_event_open` takes) and its `format`: the byte layout of the payload the kernel
//! writes for it. Layouts change between kernels (fields are added, `char[16]` comms
//! become `__data_loc` strings, `long` is 4 bytes on 32-bit kernels), so vmlat never
//! hard-codes an offset: it parses the `format` file ([`EventFormat::parse`]) and reads
//! payloads by the fields found there.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where tracefs is normally mounted (kernel ≥ 4.1).
const TRACEFS: &str = "/sys/kernel/tracing";
/// Where it appears on kernels that only expose it through debugfs.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Why tracefs or one of its files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted (looked for {TRACEFS}/events and {DEBUGFS_TRACING}/events) \
         and mounting it at {TRACEFS} failed: {mount_error}; run as root, or mount it \
         yourself with `mount -t tracefs nodev {TRACEFS}` (the kernel needs CONFIG_FTRACE)"
    )]
    NotMounted { mount_error: io::Error },
    #[error(
        "tracepoint {group}:{name} does not exist on this kernel \
         ({path} is missing; `ls {root}/events/{group}` lists what it has)",
        root = root.display(),
        path = path.display()
    )]
    NoSuchEvent {
        group: String,
        name: String,
        root: PathBuf,
        path: PathBuf,
    },
    #[error(
        "cannot read {path}: {source}; tracefs files are readable by root only: run as root",
        path = path.display()
    )]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a tracepoint format file the way vmlat reads them: {source}", path = path.display())]
    Format { path: PathBuf, source: FormatError },
}

/// A mounted tracefs.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Finds tracefs at its usual places, mounting it at `/sys/kernel/tracing` when it
    /// is nowhere (a fresh machine, a minimal container) and we are allowed to.
    pub fn locate() -> Result<Self, TracefsError> {
        if let Some(found) = Self::find()? {
            return Ok(found);
        }
        mount_tracefs(Path::new(TRACEFS))
            .map_err(|mount_error| TracefsError::NotMounted { mount_error })?;
        Self::find()?.ok_or_else(|| TracefsError::NotMounted {
            mount_error: io::Error::other(format!(
                "mounted, but {TRACEFS}/events is still missing"
            )),
        })
    }

    /// Uses the tracefs mounted at `root` (e.g. in a test, or an unusual mount point).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Tracefs { root: root.into() }
    }

    /// The first usual place with an `events` directory (an unmounted
    /// /sys/kernel/tracing is an empty directory). A place we may not look into
    /// (tracefs is mode 0700) is an error: mounting would not help.
    fn find() -> Result<Option<Self>, TracefsError> {
        for root in [TRACEFS, DEBUGFS_TRACING].map(Path::new) {
            let events = root.join("events");
            match fs::metadata(&events) {
                Ok(meta) if meta.is_dir() => return Ok(Some(Self::at(root))),
                Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(TracefsError::Read {
                        path: events,
                        source,
                    })
                }
                _ => {}
            }
        }
        Ok(None)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads and parses the format of tracepoint `group:name`.
    pub fn event_format(&self, group: &str, name: &str) -> Result<EventFormat, TracefsError> {
        let path = self
            .root
            .join("events")
            .join(group)
            .join(name)
            .join("format");
        let text = fs::read_to_string(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                TracefsError::NoSuchEvent {
                    group: group.to_owned(),
                    name: name.to_owned(),
                    root: self.root.clone(),
                    path: path.clone(),
                }
            } else {
                TracefsError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        EventFormat::parse(&text).map_err(|source| TracefsError::Format { path, source })
    }
}

/// `mount -t tracefs nodev TARGET`.
fn mount_tracefs(target: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; `data`
    // may be null for tracefs.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A line of a `format` file that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("line {line}: {reason}: {text:?}")]
    BadLine {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("no `ID:` line")]
    NoId,
    #[error("no `name:` line")]
    NoName,
}

/// How a field's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A plain integer (or `bool`, pointer) of `size` bytes.
    Scalar,
    /// A fixed array inside the record, e.g. `char comm[16]`. `len` is `None` when the
    /// kernel printed a symbolic length (`char prev_comm[TASK_COMM_LEN]`, old kernels):
    /// `size` is then the only truth.
    Array { len: Option<usize> },
    /// `__data_loc T[] name`: a u32 at `offset` whose low 16 bits are the offset of the
    /// data from the start of the record and whose high 16 bits are its length.
    DataLoc,
    /// `__rel_loc T[] name` (kernel ≥ 5.19): like `DataLoc`, but the offset counts from
    /// the end of this 4-byte field.
    RelLoc,
}

/// One `field:` line of a format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The C type as printed, without the name and array suffix (`unsigned long`,
    /// `char`, `__data_loc char[]`).
    pub type_name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    pub kind: FieldKind,
}

/// A parsed `events/GROUP/NAME/format` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    pub name: String,
    /// The tracepoint id: `perf_event_open`'s config, and `common_type` in payloads.
    pub id: u64,
    /// Every field, the `common_*` ones first, in file order.
    pub fields: Vec<Field>,
}

impl EventFormat {
    /// Parses the text of a format file. Lines other than `name:`, `ID:` and `field:`
    /// (`format:`, blank lines, `print fmt:`) are ignored.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let bad = |reason| FormatError::BadLine {
                line: index + 1,
                text: raw.to_owned(),
                reason,
            };
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                id = Some(rest.trim().parse().map_err(|_| bad("ID is not a number"))?);
            } else if line.starts_with("field:") {
                fields.push(parse_field(line).map_err(bad)?);
            }
        }
        Ok(EventFormat {
            name: name.ok_or(FormatError::NoName)?,
            id: id.ok_or(FormatError::NoId)?,
            fields,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (offset {}, size {}, {})",
            self.type_name,
            self.name,
            self.offset,
            self.size,
            if self.signed { "signed" } else { "unsigned" }
        )
    }
}

/// Parses `field:DECL;\toffset:N;\tsize:N;\tsigned:N;` (old kernels print no `signed:`:
/// it is then inferred from the C type).
fn parse_field(line: &str) -> Result<Field, &'static str> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = None;
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once(':').ok_or("a part without `key:`")?;
        let number = || value.trim().parse::<usize>().map_err(|_| "not a number");
        match key.trim() {
            "field" => decl = Some(value.trim()),
            "offset" => offset = Some(number()?),
            "size" => size = Some(number()?),
            "signed" => signed = Some(number()? != 0),
            // Unknown keys from a future kernel do not change how we read the bytes.
            _ => {}
        }
    }
    let decl = decl.ok_or("no declaration")?;
    let (type_name, name, kind) = parse_decl(decl)?;
    let signed = signed.unwrap_or_else(|| c_type_is_signed(&type_name));
    Ok(Field {
        name,
        type_name,
        offset: offset.ok_or("no offset")?,
        size: size.ok_or("no size")?,
        signed,
        kind,
    })
}

/// Splits a C declaration (`unsigned long args[6]`, `__data_loc char[] filename`,
/// `char prev_comm[TASK_COMM_LEN]`) into type, name and kind.
fn parse_decl(decl: &str) -> Result<(String, String, FieldKind), &'static str> {
    let (head, array) = match decl.strip_suffix(']') {
        Some(rest) => {
            let (head, len) = rest.rsplit_once('[').ok_or("unbalanced `]`")?;
            (head.trim_end(), Some(len.trim().parse::<usize>().ok()))
        }
        None => (decl, None),
    };
    let (type_name, name) = head
        .rsplit_once(char::is_whitespace)
        .ok_or("no type before the name")?;
    // `char *name` prints its star next to the name.
    let name = name.trim_start_matches('*');
    let stars = head.len() - type_name.len() - 1 - name.len();
    let type_name = format!("{}{}", type_name.trim_end(), "*".repeat(stars));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("the field name is not an identifier");
    }
    let kind = if type_name.starts_with("__data_loc") {
        FieldKind::DataLoc
    } else if type_name.starts_with("__rel_loc") {
        FieldKind::RelLoc
    } else if let Some(len) = array {
        FieldKind::Array { len }
    } else {
        FieldKind::Scalar
    };
    Ok((type_name, name.to_owned(), kind))
}

/// Signedness of a C type, for format files too old to print `signed:`. Only the
/// kernel's signed integer spellings are signed; `char` is treated as unsigned (it is
/// only ever text in tracepoints).
fn c_type_is_signed(type_name: &str) -> bool {
    const SIGNED: [&str; 11] = [
        "int",
        "long",
        "short",
        "long long",
        "signed char",
        "s8",
        "s16",
        "s32",
        "s64",
        "pid_t",
        "ssize_t",
    ];
    SIGNED.contains(&type_name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHED_SWITCH: &str = include_str!("../tests/data/formats/sched_switch.format");
    const SCHED_SWITCH_2_6: &str = include_str!("../tests/data/formats/sched_switch-2.6.3x.format");
    const EXEC: &str = include_str!("../tests/data/formats/sched_process_exec.format");
    const SYS_ENTER: &str = include_str!("../tests/data/formats/sys_enter.format");

    #[test]
    fn parses_a_current_sched_switch() {
        let f = EventFormat::parse(SCHED_SWITCH).unwrap();
        assert_eq!(f.name, "sched_switch");
        assert_eq!(f.id, 372);
        assert_eq!(f.fields.len(), 11);
        let state = f.field("prev_state").unwrap();
        assert_eq!((state.offset, state.size, state.signed), (32, 8, true));
        assert_eq!(state.type_name, "long");
        assert_eq!(state.kind, FieldKind::Scalar);
        let comm = f.field("next_comm").unwrap();
        assert_eq!((comm.offset, comm.size), (40, 16));
        assert_eq!(comm.kind, FieldKind::Array { len: Some(16) });
        let ty = f.field("common_type").unwrap();
        assert_eq!(
            (ty.type_name.as_str(), ty.offset, ty.size, ty.signed),
            ("unsigned short", 0, 2, false)
        );
    }

    #[test]
    fn parses_an_old_layout_without_signed_and_with_symbolic_lengths() {
        let f = EventFormat::parse(SCHED_SWITCH_2_6).unwrap();
        assert_eq!(f.field("common_lock_depth").unwrap().offset, 8);
        let state = f.field("prev_state").unwrap();
        assert_eq!((state.offset, state.size, state.signed), (40, 8, true));
        let comm = f.field("prev_comm").unwrap();
        assert_eq!(comm.kind, FieldKind::Array { len: None });
        assert_eq!((comm.offset, comm.size), (12, 16));
        assert!(f.field("next_pid").unwrap().signed, "pid_t is signed");
        assert!(
            !f.field("common_type").unwrap().signed,
            "unsigned short is not"
        );
    }

    #[test]
    fn parses_data_loc_and_arrays() {
        let f = EventFormat::parse(EXEC).unwrap();
        let file = f.field("filename").unwrap();
        assert_eq!(file.kind, FieldKind::DataLoc);
        assert_eq!(file.type_name, "__data_loc char[]");
        assert_eq!((file.offset, file.size), (8, 4));
        let f = EventFormat::parse(SYS_ENTER).unwrap();
        let args = f.field("args").unwrap();
        assert_eq!(args.kind, FieldKind::Array { len: Some(6) });
        assert_eq!((args.offset, args.size, args.signed), (16, 48, false));
    }

    #[test]
    fn parses_pointers_and_rel_loc() {
        let text =
            "name: x\nID: 7\nformat:\n\tfield:const char * name;\toffset:8;\tsize:8;\tsigned:0;\n\
                    \tfield:__rel_loc char[] msg;\toffset:16;\tsize:4;\tsigned:0;\n";
        let f = EventFormat::parse(text).unwrap();
        assert_eq!(f.field("name").unwrap().type_name, "const char *");
        assert_eq!(f.field("msg").unwrap().kind, FieldKind::RelLoc);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for text in [
            "",
            "name: x\n",
            "ID: 1\n",
            "name: x\nID: nope\n",
            "name: x\nID: 1\n\tfield:int;\toffset:0;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:int a;\toffset:zero;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:int a;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:int a[;\toffset:0;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:char a]\toffset:0;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:int a-b;\toffset:0;\tsize:4;\n",
            "name: x\nID: 1\n\tfield:\u{1F600} \u{1F600}[\u{1F600}];\toffset:0;\tsize:4;\n",
        ] {
            assert!(EventFormat::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn missing_events_name_the_path() {
        let fs = Tracefs::at("/nonexistent-tracefs");
        let err = fs.event_format("sched", "sched_switch").unwrap_err();
        assert!(matches!(err, TracefsError::NoSuchEvent { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("/nonexistent-tracefs/events/sched/sched_switch/format"));
    }
}
