//! Send-side rates on loopback for one sender, in a network namespace of its
//! own: `sendto` per datagram, `sendmmsg` batches of 64, and UDP GSO sends of
//! 44 segments of 1,450 bytes (what the VTEP's sender chooses between). A
//! measurement, not a benchmark of record: one run, half a second each.
//!
//! Run as root: `cargo run --release -p benches --example udp_send_rates`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dataplane::sys::netns::run_in_new_netns;
use dataplane::sys::udp::{Transmit, UdpSocket};

fn rate(name: &str, per_call: usize, send: &dyn Fn() -> usize) {
    let start = Instant::now();
    let (mut calls, mut datagrams) = (0u64, 0u64);
    while start.elapsed() < Duration::from_millis(500) {
        datagrams += send() as u64 * per_call as u64;
        calls += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name:>28}: {:>9.0} datagrams/s, {:>8.0} calls/s", datagrams as f64 / secs, calls as f64 / secs);
}

fn main() {
    let measured = run_in_new_netns(|| -> std::io::Result<()> {
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (a, b) = (UdpSocket::bind(localhost)?, UdpSocket::bind(localhost)?);
        let dst = b.local_addr()?;
        let datagram = [0u8; 1450];
        let big = vec![0u8; 1450 * 44];
        rate("sendto, 1 per call", 1, &|| a.send_to(&datagram, dst).map_or(0, |_| 1));
        rate("sendmmsg, 64 per call", 1, &|| a.send_batch((0..64).map(|_| Transmit::new(dst, &datagram))).unwrap_or(0));
        rate("GSO, 44 segments per send", 44, &|| {
            a.send_batch([Transmit { segment_size: Some(1450), ..Transmit::new(dst, &big) }]).unwrap_or(0)
        });
        Ok(())
    });
    if let Err(e) = measured.and_then(|inner| inner) {
        eprintln!("udp_send_rates: {e} (run it as root: it makes a network namespace)");
        std::process::exit(1);
    }
}
