//! One module per subcommand: its flags and the call into the libraries.

pub mod analyze;
pub mod export;
pub mod inspect;
pub mod lab;
pub mod plot;
pub mod record;
pub mod report;
pub mod watch;

use vmlat_analyzer::{Analysis, AnalyzeOptions, HeartbeatPort};

/// Parses `udp:PORT`, the one heartbeat kind besides VRRP/CARP that can be named (the
/// analyzer's [`HeartbeatPort`] syntax).
pub fn parse_heartbeat(spec: &str) -> Result<u16, String> {
    spec.parse::<HeartbeatPort>().map(|h| h.0)
}

/// The inputs and analysis flags of every command that analyzes (`analyze`, `plot`,
/// `report`, `export`): the same everywhere, so that a chart shows exactly what
/// `analyze` prints.
#[derive(clap::Args)]
pub struct AnalysisInput {
    /// Bundle directories written by `vmlat record`, and pcap/pcapng files (tcpdump,
    /// dumpcap).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<std::path::PathBuf>,

    /// A gap is an inter-arrival time above F × the advertised interval (F > 1).
    #[arg(long, value_name = "F", default_value_t = 1.5, value_parser = parse_factor)]
    pub gap_factor: f64,

    /// Also follow this UDP heartbeat (e.g. udp:5405); VRRP, CARP, corosync (5405) and
    /// BFD (3784) are always followed.
    #[arg(long = "heartbeat", value_name = "udp:PORT", value_parser = parse_heartbeat)]
    pub heartbeats: Vec<u16>,

    /// Evidence window: examine the recording from SECS before each incident (to one
    /// interval after it), to see what led into the silence.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_seconds)]
    pub window: f64,

    /// keepalived's own log: its lines from each incident's window are shown with the
    /// incident. Read: keepalived's console log (`-l`), syslog files (classic and RFC 3339),
    /// and `journalctl -o short`, `short-precise`, `short-iso`, `short-iso-precise` and
    /// `json` saved to a file; one file may mix them, other programs' lines are skipped.
    /// Times without a zone (console log, classic syslog) are taken as UTC unless
    /// --log-utc-offset says otherwise. Repeat for several routers. Without it, the
    /// keepalived journal lines a bundle carries (recorded on a machine with a systemd
    /// journal) are read.
    #[arg(long = "keepalived-log", value_name = "FILE")]
    pub keepalived_logs: Vec<std::path::PathBuf>,

    /// The time zone of the --keepalived-log lines that do not carry one: the writer's
    /// offset from UTC (+01:00 for CET in winter, -05:00 for EST; one offset for every
    /// line).
    #[arg(
        long,
        value_name = "+HH:MM",
        default_value = "+00:00",
        allow_hyphen_values = true,
        value_parser = parse_utc_offset
    )]
    pub log_utc_offset: i32,
}

impl AnalysisInput {
    /// Runs the analyzer on the inputs.
    pub fn analyze(&self) -> anyhow::Result<Analysis> {
        Ok(vmlat_analyzer::analyze(&self.inputs, &self.options())?)
    }

    /// Runs the analyzer on the inputs, keeping every advert for the charts.
    pub fn analyze_with_adverts(&self) -> anyhow::Result<Analysis> {
        let opts = AnalyzeOptions {
            keep_adverts: true,
            ..self.options()
        };
        Ok(vmlat_analyzer::analyze(&self.inputs, &opts)?)
    }

    fn options(&self) -> AnalyzeOptions {
        AnalyzeOptions {
            gap_factor: self.gap_factor,
            heartbeats: self.heartbeats.iter().copied().map(HeartbeatPort).collect(),
            window_ns: (self.window * 1e9) as i64,
            keepalived_logs: self.keepalived_logs.clone(),
            log_utc_offset_secs: self.log_utc_offset,
            ..AnalyzeOptions::default()
        }
    }
}

pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 1.0 && f.is_finite() => Ok(f),
        _ => Err(format!(
            "'{s}': the gap factor is a number above 1, e.g. 1.5"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if (0.0..=3600.0).contains(&w) => Ok(w),
        _ => Err(format!(
            "'{s}': the window is a number of seconds from 0 to 3600"
        )),
    }
}

/// `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH` or `Z`: seconds east of UTC.
fn parse_utc_offset(s: &str) -> Result<i32, String> {
    let err = || {
        format!("'{s}': the offset from UTC is +HH:MM or -HH:MM, e.g. +01:00 (CET), -05:00 (EST), +00:00")
    };
    if s == "Z" || s == "z" {
        return Ok(0);
    }
    let (sign, rest) = match s.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(err()),
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let digits = |t: &str| (1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return Err(err());
    }
    let (hours, minutes): (i32, i32) = (
        hours.parse().map_err(|_| err())?,
        minutes.parse().map_err(|_| err())?,
    );
    if hours > 18 || minutes > 59 || (hours == 18 && minutes > 0) {
        return Err(err());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_udp_ports() {
        assert_eq!(parse_heartbeat("udp:5405"), Ok(5405));
        assert!(parse_heartbeat("tcp:80").is_err());
        assert!(parse_heartbeat("udp:0").is_err());
        assert!(parse_heartbeat("udp:70000").is_err());
    }

    #[test]
    fn gap_factor_and_window_are_checked() {
        assert_eq!(parse_factor("2"), Ok(2.0));
        assert!(parse_factor("1").is_err());
        assert!(parse_factor("NaN").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        assert!(parse_seconds("-1").is_err());
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+00:00"), Ok(0));
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        assert_eq!(parse_utc_offset("+01:00"), Ok(3600));
        assert_eq!(parse_utc_offset("-05:30"), Ok(-19800));
        assert_eq!(parse_utc_offset("+0545"), Ok(20700));
        assert_eq!(parse_utc_offset("+9"), Ok(32400));
        for bad in [
            "",
            "01:00",
            "+1:",
            "+19:00",
            "+01:60",
            "+aa:bb",
            "UTC",
            "+01:00:00",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }
}
