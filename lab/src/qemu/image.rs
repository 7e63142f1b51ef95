//! The guest's boot image, built from the machine's own Debian packages and cached.
//!
//! Kernel: Debian's cloud kernel (`linux-image-cloud-amd64`) as installed in /boot, used
//! in place. Initramfs: one uncompressed cpio (TCG is slow at decompressing; the page
//! cache is not) holding busybox (`busybox-static`), keepalived and `vmlat` with the
//! shared libraries `ldd` lists for them (vmlat stripped of its debug info), the virtio
//! modules of that kernel, and `init.sh` as /init.
//!
//! The cache, under [`CACHE_DIR`], is keyed by a list of its inputs (every file's path,
//! size and mtime, and a checksum of /init): the image is rebuilt only when that list
//! changes, e.g. after `apt-get upgrade` or a rebuild of vmlat. The archive itself is
//! reproducible (see [`cpio`](super::cpio)).

use std::fs;
use std::io::BufWriter;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::accel::{self, Accel};
use super::cpio::Cpio;
use crate::cmd;
use crate::lab::io;
use crate::LabError;

/// Where the image and its list of inputs are kept.
pub const CACHE_DIR: &str = "/var/cache/vmlat/guest";

/// The guest's /init.
const INIT: &str = include_str!("init.sh");

/// The modules /init loads, in dependency order (busybox insmod resolves none).
const MODULES: [&str; 9] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
];

/// The kernel flavour whose modules we know to work (`docs/scenarios.md`).
const KERNEL_FLAVOUR: &str = "-cloud-amd64";

/// Bumped when the layout of the image changes without any input changing.
const LAYOUT: u32 = 1;

/// A built image: the kernel to boot, the initramfs to give it, and the accelerator
/// it runs on here.
#[derive(Debug, Clone)]
pub struct Image {
    /// The kernel, in /boot.
    pub kernel: PathBuf,
    /// The cached initramfs.
    pub initramfs: PathBuf,
    /// KVM where it works on this host, TCG otherwise.
    pub accel: Accel,
    /// Whether this call built it (`false`: it came from the cache).
    pub built: bool,
}

fn missing(what: &str, fix: &str) -> LabError {
    LabError::Guest {
        router: "(image)".into(),
        problem: format!("{what}: {fix} (scripts/setup.sh installs everything)"),
    }
}

/// Returns the image for a guest running `vmlat` (the binary to put inside), building it
/// first if its inputs changed.
pub fn ensure(vmlat: &Path) -> Result<Image, LabError> {
    let kernel = find_kernel()?;
    let version = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or_default()
        .to_owned();
    let modules = find_modules(&Path::new("/lib/modules").join(&version))?;
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return Err(missing("no /bin/busybox", "apt-get install busybox-static"));
    }
    let keepalived = cmd::find_on_path("keepalived")
        .ok_or_else(|| missing("keepalived not on PATH", "apt-get install keepalived"))?;
    if !vmlat.is_file() {
        return Err(missing(
            &format!("the vmlat binary {} does not exist", vmlat.display()),
            "build it with `cargo build --release --bin vmlat`",
        ));
    }
    let mut programs = vec![
        (busybox.to_path_buf(), "bin/busybox".to_owned()),
        (keepalived.clone(), "usr/sbin/keepalived".to_owned()),
    ];
    let mut libs = Vec::new();
    for bin in [&keepalived, &vmlat.to_path_buf()] {
        for lib in shared_libraries(bin)? {
            if !libs.contains(&lib) {
                libs.push(lib);
            }
        }
    }

    let mut inputs = format!(
        "layout {LAYOUT}\ninit {:08x}\n",
        crc32fast::hash(INIT.as_bytes())
    );
    for path in std::iter::once(&kernel)
        .chain(&modules)
        .chain(programs.iter().map(|(p, _)| p))
        .chain(std::iter::once(&vmlat.to_path_buf()))
        .chain(&libs)
    {
        let m = fs::metadata(path).map_err(io(path))?;
        inputs.push_str(&format!(
            "{} {} {}.{:09}\n",
            path.display(),
            m.len(),
            m.mtime(),
            m.mtime_nsec()
        ));
    }

    let dir = Path::new(CACHE_DIR);
    fs::create_dir_all(dir).map_err(io(dir))?;
    let accel = accel::choose(&kernel, dir);
    let initramfs = dir.join("initramfs.cpio");
    let inputs_file = dir.join("inputs");
    if fs::read_to_string(&inputs_file).is_ok_and(|old| old == inputs) && initramfs.is_file() {
        return Ok(Image {
            kernel,
            initramfs,
            accel,
            built: false,
        });
    }

    // Stripped: the guest needs vmlat's code, not its 50 MB of debug info.
    let stripped = dir.join(format!("vmlat.stripped.{}", std::process::id()));
    cmd::run(
        "strip",
        &[
            "--strip-debug",
            "-o",
            &stripped.to_string_lossy(),
            &vmlat.to_string_lossy(),
        ],
    )
    .map_err(|e| missing(&format!("stripping vmlat: {e}"), "apt-get install binutils"))?;
    programs.push((stripped.clone(), "usr/bin/vmlat".to_owned()));

    // Written beside the old one and renamed over it: a concurrent lab reads either.
    let tmp = dir.join(format!("initramfs.cpio.{}", std::process::id()));
    let written = write_initramfs(&tmp, &programs, &libs, &modules);
    let _ = fs::remove_file(&stripped);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &initramfs).map_err(io(&initramfs))?;
    fs::write(&inputs_file, inputs).map_err(io(&inputs_file))?;
    Ok(Image {
        kernel,
        initramfs,
        accel,
        built: true,
    })
}

fn write_initramfs(
    to: &Path,
    programs: &[(PathBuf, String)],
    libs: &[PathBuf],
    modules: &[PathBuf],
) -> Result<(), LabError> {
    let file = fs::File::create(to).map_err(io(to))?;
    let mut c = Cpio::new(BufWriter::new(file));
    let mut dirs: Vec<String> = [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "etc",
        "var",
        "lib",
        "lib/modules",
    ]
    .iter()
    .map(|d| (*d).to_owned())
    .collect();
    let lib_paths: Vec<String> = libs
        .iter()
        .map(|l| l.to_string_lossy().trim_start_matches('/').to_owned())
        .collect();
    for l in &lib_paths {
        let mut parent = Path::new(l).parent();
        let mut chain = Vec::new();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            chain.push(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
        for d in chain.into_iter().rev() {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    let w = |e: std::io::Error| LabError::Io {
        path: to.to_path_buf(),
        source: e,
    };
    for d in &dirs {
        c.dir(d).map_err(w)?;
    }
    // The kernel opens /dev/console for /init's stdio before devtmpfs is mounted.
    c.char_dev("dev/console", 5, 1).map_err(w)?;
    c.file("init", 0o755, INIT.as_bytes()).map_err(w)?;
    for (src, dst) in programs {
        let data = fs::read(src).map_err(io(src))?;
        c.file(dst, 0o755, &data).map_err(w)?;
    }
    for (src, dst) in libs.iter().zip(&lib_paths) {
        let data = fs::read(src).map_err(io(src))?;
        c.file(dst, 0o755, &data).map_err(w)?;
    }
    for m in modules {
        let name = m.file_name().map(|n| n.to_string_lossy().into_owned());
        let data = fs::read(m).map_err(io(m))?;
        c.file(
            &format!("lib/modules/{}", name.unwrap_or_default()),
            0o644,
            &data,
        )
        .map_err(w)?;
    }
    let mut out = c.finish().map_err(w)?;
    std::io::Write::flush(&mut out).map_err(w)
}

/// The newest cloud kernel in /boot.
fn find_kernel() -> Result<PathBuf, LabError> {
    let mut kernels: Vec<PathBuf> = fs::read_dir("/boot")
        .map_err(io(Path::new("/boot")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with(KERNEL_FLAVOUR))
        })
        .collect();
    kernels.sort();
    kernels.pop().ok_or_else(|| {
        missing(
            &format!("no /boot/vmlinuz-*{KERNEL_FLAVOUR}"),
            "apt-get install linux-image-cloud-amd64",
        )
    })
}

/// The .ko files of [`MODULES`] under `dir`, in load order.
fn find_modules(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let mut found: Vec<Option<PathBuf>> = vec![None; MODULES.len()];
    let mut stack = vec![dir.join("kernel")];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io(&d))?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if let Some(i) = MODULES.iter().position(|m| format!("{m}.ko") == name) {
                found[i] = Some(path);
            }
        }
    }
    MODULES
        .iter()
        .zip(found)
        .map(|(m, p)| {
            p.ok_or_else(|| {
                missing(
                    &format!("module {m}.ko not found under {}", dir.display()),
                    "reinstall linux-image-cloud-amd64",
                )
            })
        })
        .collect()
}

/// The shared libraries (and the loader) a dynamic executable needs, as `ldd` resolves
/// them; none for a static one.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>, LabError> {
    let out = match cmd::run("ldd", &[&bin.to_string_lossy()]) {
        Ok(out) => out,
        // ldd exits 1 on a static executable ("not a dynamic executable").
        Err(LabError::Command { stderr, .. }) if stderr.contains("not a dynamic") => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut libs = Vec::new();
    for line in out.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        match path {
            Some(p) if p.starts_with('/') => libs.push(PathBuf::from(p)),
            Some("not") => {
                return Err(missing(
                    &format!("{}: {}", bin.display(), line.trim()),
                    "install the package that provides that library",
                ))
            }
            _ => {}
        }
    }
    Ok(libs)
}
