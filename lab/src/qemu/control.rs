//! The host's end of the guest's control channel: the guest's second serial port
//! (/dev/ttyS1), which QEMU connects to a unix socket. One command line out, one reply
//! line back, `ok ...` or `error ...` (the commands are in `init.sh`).
//!
//! A serial port rather than the QEMU guest agent: nothing to install in the guest, and
//! busybox's shell can serve it. Bytes sent before the guest opens the port can be lost
//! (the UART's FIFO is reset when the port opens), so [`Control::connect`] pings with a
//! fresh token until the guest answers that token.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One connection to a guest's control channel.
#[derive(Debug)]
pub(crate) struct Control {
    stream: UnixStream,
    /// Bytes read past the last reply line.
    pending: Vec<u8>,
}

impl Control {
    /// Connects to the socket at `socket` and waits up to `timeout` for the guest to answer
    /// a ping; `alive` is asked between tries and ends the wait with its error (QEMU died).
    pub(crate) fn connect(
        socket: &Path,
        timeout: Duration,
        mut alive: impl FnMut() -> Result<(), String>,
    ) -> Result<Control, String> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            alive()?;
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("cannot connect to {}: {e}", socket.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let mut ctl = Control {
            stream,
            pending: Vec::new(),
        };
        let mut token = 0u32;
        loop {
            token = token.wrapping_add(1);
            alive()?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "the guest did not answer on its control channel within {timeout:?}"
                ));
            }
            let want = format!("ok pong {token}");
            if ctl.send(&format!("ping {token}")).is_err() {
                continue;
            }
            let until = Instant::now() + Duration::from_millis(500);
            while let Ok(line) = ctl.read_line(until) {
                if line == want {
                    return Ok(ctl);
                }
            }
        }
    }

    /// Sends `command` and returns the reply after `ok` (trimmed), or the guest's error.
    pub(crate) fn call(&mut self, command: &str, timeout: Duration) -> Result<String, String> {
        self.send(command)?;
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.read_line(deadline)?;
            if let Some(rest) = line.strip_prefix("ok") {
                return Ok(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("error") {
                return Err(format!(
                    "the guest answered `{command}` with: {}",
                    rest.trim()
                ));
            }
            // A late pong or a partial line from before the port opened: not an answer.
        }
    }

    fn send(&mut self, command: &str) -> Result<(), String> {
        let line = format!("{command}\n");
        self.stream
            .write_all(line.as_bytes())
            .map_err(|e| format!("writing `{command}` to the control channel: {e}"))
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, String> {
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_matches(|c| c == '\r' || c == '\n').to_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no reply on the control channel in time".into());
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 512];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("the control channel was closed (QEMU exited?)".into()),
                Ok(n) => self
                    .pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(format!("reading the control channel: {e}")),
            }
        }
    }
}
