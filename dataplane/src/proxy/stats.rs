//! Per-mapping counters of the proxy, and their text form for the stats
//! socket and SIGUSR1: one line per mapping, `key=value` pairs.
//!
//! The worker threads share them: relaxed atomic counters.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use super::mapping::Mapping;

/// One counter, shared by the worker threads (relaxed atomics: each is
/// read alone, and updated once per system call, not per byte).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one mapping has done.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: Counter,
    /// TCP connections open now.
    pub active: Counter,
    /// Bytes from clients to the container (TCP and UDP payload).
    pub bytes_in: Counter,
    /// Bytes from the container to clients.
    pub bytes_out: Counter,
    /// UDP flows open now.
    pub flows: Counter,
    pub flows_total: Counter,
    /// Flows removed to make room (`-udp-max-flows`).
    pub flows_evicted: Counter,
    pub datagrams_in: Counter,
    pub datagrams_out: Counter,
    /// Connections that failed (container unreachable, reset, ...) and
    /// datagrams that could not be forwarded.
    pub errors: Counter,
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
            c.connections.get(),
            c.active.get(),
            c.bytes_in.get(),
            c.bytes_out.get(),
            c.flows.get(),
            c.flows_total.get(),
            c.flows_evicted.get(),
            c.datagrams_in.get(),
            c.datagrams_out.get(),
            c.errors.get()
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
        let counters = [Counters::default(), Counters::default()];
        counters[0].connections.add(3);
        counters[0].active.add(2);
        counters[0].active.sub(1);
        counters[0].bytes_in.add(10);
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
