//! A QMP client: QEMU's JSON machine protocol over its unix socket, for the few commands
//! the lab needs (`stop`, `cont`, `query-status`, `object-add`, `object-del`).
//!
//! One connection per command: QEMU's QMP socket serves one client at a time, and a fresh
//! connection lets a fault's undo (which may run from the signal thread) talk to QEMU
//! without sharing state with the thread that paused it. The exchange, as QEMU documents
//! it: a greeting from QEMU, `qmp_capabilities` to leave negotiation mode, then one
//! command and its `return` or `error`; asynchronous `event` lines are skipped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// How long QEMU gets to answer; it answers at once even while the guest is stopped.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `command` (one without arguments) on the QMP socket at `socket`; returns
/// QEMU's `return` value, or a sentence saying what failed.
pub(crate) fn execute(socket: &Path, command: &str) -> Result<Value, String> {
    execute_with(socket, command, None)
}

/// Runs `command` with `arguments` (a JSON object) on the QMP socket at `socket`.
pub(crate) fn execute_with(
    socket: &Path,
    command: &str,
    arguments: Option<Value>,
) -> Result<Value, String> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to QMP at {}: {e} (is QEMU running?)",
            socket.display()
        )
    })?;
    let set = stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)));
    set.map_err(|e| format!("QMP socket {}: {e}", socket.display()))?;
    let mut qmp = Qmp {
        reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
        writer: stream,
    };
    let greeting = qmp.read()?;
    if greeting.get("QMP").is_none() {
        return Err(format!(
            "QMP at {}: no greeting, got {greeting}",
            socket.display()
        ));
    }
    qmp.call("qmp_capabilities", None)?;
    qmp.call(command, arguments)
}

struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn call(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, String> {
        let mut message = json!({ "execute": command });
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        let mut line = message.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| format!("QMP {command}: {e}"))?;
        loop {
            let msg = self.read()?;
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                let desc = err
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("no description");
                return Err(format!("QMP {command} failed: {desc}"));
            }
            // Anything else is an event ("STOP", "RESUME"...), not our answer.
        }
    }

    fn read(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("QMP: QEMU closed the connection".into()),
            Ok(_) => serde_json::from_str(&line).map_err(|e| format!("QMP sent {line:?}: {e}")),
            Err(e) => Err(format!("QMP: no answer within {TIMEOUT:?}: {e}")),
        }
    }
}

/// The guest's run state from `query-status` (`running`, `paused`...).
pub(crate) fn status(socket: &Path) -> Result<String, String> {
    let ret = execute(socket, "query-status")?;
    ret.get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("QMP query-status returned {ret}"))
}
