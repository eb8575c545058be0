//! Per-mapping counters of the proxy, and their text form for the stats
//! socket and SIGUSR1: one line per mapping, `key=value` pairs.
//!
//! The event loop is single-threaded, so these are plain integers.

use std::fmt::{self, Write};

use super::mapping::Mapping;

/// What one mapping has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: u64,
    /// TCP connections open now.
    pub active: u64,
    /// Bytes from clients to the container (TCP and UDP payload).
    pub bytes_in: u64,
    /// Bytes from the container to clients.
    pub bytes_out: u64,
    /// UDP flows open now.
    pub flows: u64,
    pub flows_total: u64,
    /// Flows removed to make room (`-udp-max-flows`).
    pub flows_evicted: u64,
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Connections that failed (container unreachable, reset, ...) and
    /// datagrams that could not be forwarded.
    pub errors: u64,
}

/// Writes one line per mapping, in the order given.
pub fn render(mappings: &[Mapping], counters: &[Counters]) -> String {
    let mut out = String::new();
    for (mapping, c) in mappings.iter().zip(counters) {
        let _ = writeln!(out, "mapping={mapping} {}", Line(c));
    }
    out
}

struct Line<'a>(&'a Counters);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(
            f,
            "connections={} active={} bytes_in={} bytes_out={} flows={} flows_total={} flows_evicted={} \
             datagrams_in={} datagrams_out={} errors={}",
            c.connections,
            c.active,
            c.bytes_in,
            c.bytes_out,
            c.flows,
            c.flows_total,
            c.flows_evicted,
            c.datagrams_in,
            c.datagrams_out,
            c.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_mapping() {
        let mappings: Vec<Mapping> =
            vec!["tcp:0.0.0.0:80:10.0.0.2:80".parse().unwrap(), "udp:0.0.0.0:53:10.0.0.2:53".parse().unwrap()];
        let counters =
            [Counters { connections: 3, active: 1, bytes_in: 10, ..Counters::default() }, Counters::default()];
        let text = render(&mappings, &counters);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "mapping=tcp:0.0.0.0:80:10.0.0.2:80 connections=3 active=1 bytes_in=10 bytes_out=0 flows=0 flows_total=0 \
             flows_evicted=0 datagrams_in=0 datagrams_out=0 errors=0"
        );
        assert!(lines[1].starts_with("mapping=udp:0.0.0.0:53:10.0.0.2:53 connections=0"));
    }
}
