//! Brings up the default VRRP pair and keeps it up until Ctrl-C, printing where to look:
//! `sudo cargo run -p vmlat-lab --example lab_up`. Handy for poking a lab by hand (tcpdump,
//! the recorder, fault injection) and a working sample of the signal-safe cleanup path.

use std::time::Duration;

use vmlat_lab::{cleanup_on_signal, sweep_stale, Lab, LabError, LabSpec, LAB_PREFIX};

fn main() -> Result<(), LabError> {
    // Before anything exists, so Ctrl-C at any point tears down what was built.
    cleanup_on_signal()?;
    for leftover in sweep_stale(LAB_PREFIX)? {
        eprintln!("removed leftover of a dead run: {leftover}");
    }
    let lab = Lab::build(&LabSpec::pair())?;
    let took = lab.wait_for_master("vr1", Duration::from_secs(15))?;
    println!(
        "lab {} up, vr1 master after {took:?}; files in {}",
        lab.run_id(),
        lab.dir().display()
    );
    for r in lab.routers() {
        println!(
            "  {} prio {:3}  {}  capture {}  port {}  keepalived {} (vrrp child {})",
            r.name(),
            r.priority(),
            r.addr(),
            r.capture_point(),
            r.bridge_port_capture_point(),
            r.main_pid(),
            lab.vrrp_pid(r.name())?,
        );
    }
    println!("  bridge capture {}", lab.bridge_capture_point());
    println!("Ctrl-C tears it all down.");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
