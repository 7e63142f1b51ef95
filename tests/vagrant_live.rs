//! The Vagrantfile (`docs/vagrant.md`) checked by Vagrant itself, with the libvirt
//! provider installed as scripts/setup.sh installs it. No box can be downloaded here, so
//! nothing is booted: `vagrant validate` parses the file and checks every VM's settings
//! for the providers it configures.

use std::path::Path;
use std::process::Command;

#[test]
fn the_vagrantfile_is_valid_for_vagrant() {
    let Ok(out) = Command::new("vagrant").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "vagrant missing in CI: scripts/setup.sh installs vagrant and vagrant-libvirt"
        );
        eprintln!("SKIPPED: no vagrant (apt-get install vagrant vagrant-libvirt)");
        return;
    };
    assert!(out.status.success());
    // Vagrant writes its state (.vagrant/) next to the Vagrantfile it reads: a copy in
    // a temporary directory keeps the checkout clean.
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("Vagrantfile"), dir.path().join("Vagrantfile")).unwrap();
    let out = Command::new("vagrant")
        .arg("validate")
        .current_dir(dir.path())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Vagrantfile validated successfully"),
        "{text}"
    );
    let plugins = Command::new("vagrant")
        .args(["plugin", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plugins.stdout).contains("vagrant-libvirt"),
        "the libvirt provider the Vagrantfile targets first is not installed"
    );
}
