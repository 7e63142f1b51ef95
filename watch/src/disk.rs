//! `--max-disk`: the incident directories of DIR stay within a size, the oldest
//! deleted first (their names begin with their UTC time, so name order is age order).

use std::path::{Path, PathBuf};

/// An incident directory and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentDir {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The incident directories in `dir` (those whose name ends `-vridN`, optionally with a
/// `-K` suffix), oldest first.
pub fn incident_dirs(dir: &Path) -> std::io::Result<Vec<IncidentDir>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && name.contains("-vrid") {
            found.push(IncidentDir {
                bytes: size(&entry.path()),
                path: entry.path(),
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
        .unwrap_or(0)
}

/// Deletes the oldest incident directories of `dir` until they take at most
/// `max_bytes`, never `keep` (the one just written, even if alone it is larger).
/// Returns what was deleted.
pub fn enforce(dir: &Path, max_bytes: u64, keep: &Path) -> std::io::Result<Vec<IncidentDir>> {
    let dirs = incident_dirs(dir)?;
    let mut total: u64 = dirs.iter().map(|d| d.bytes).sum();
    let mut deleted = Vec::new();
    for d in dirs {
        if total <= max_bytes {
            break;
        }
        if d.path == keep {
            continue;
        }
        std::fs::remove_dir_all(&d.path)?;
        total -= d.bytes;
        deleted.push(d);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(dir: &Path, name: &str, bytes: usize) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.join("pcap")).unwrap();
        std::fs::write(path.join("pcap/x.pcap"), vec![0u8; bytes]).unwrap();
        path
    }

    #[test]
    fn deletes_the_oldest_incidents_first_and_never_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let old = incident(tmp.path(), "20261201T010000Z-vrid51", 4000);
        let mid = incident(tmp.path(), "20261201T020000Z-vrid51", 4000);
        let new = incident(tmp.path(), "20261201T030000Z-vrid52", 9000);
        std::fs::write(tmp.path().join("notes.txt"), "not an incident").unwrap();
        let deleted = enforce(tmp.path(), 10_000, &new).unwrap();
        assert_eq!(
            deleted.iter().map(|d| d.path.clone()).collect::<Vec<_>>(),
            vec![old, mid]
        );
        assert!(new.exists() && tmp.path().join("notes.txt").exists());
        assert!(enforce(tmp.path(), 10_000, &new).unwrap().is_empty());
    }
}
