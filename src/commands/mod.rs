//! One module per subcommand: its flags and the call into the libraries.

pub mod inspect;
pub mod record;

/// Parses `udp:PORT`, the one heartbeat kind besides VRRP/CARP that can be named.
pub fn parse_heartbeat(spec: &str) -> Result<u16, String> {
    let port = spec
        .strip_prefix("udp:")
        .ok_or_else(|| format!("'{spec}' is not a heartbeat: write udp:PORT (e.g. udp:5405)"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("'{port}' is not a UDP port (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_heartbeat;

    #[test]
    fn heartbeats_are_udp_ports() {
        assert_eq!(parse_heartbeat("udp:5405"), Ok(5405));
        assert!(parse_heartbeat("tcp:80").is_err());
        assert!(parse_heartbeat("udp:0").is_err());
        assert!(parse_heartbeat("udp:70000").is_err());
    }
}
