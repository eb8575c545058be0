//! A TCP transfer whose integrity can be checked: `blast send ADDR:PORT
//! BYTES SEED` sends BYTES pseudo-random bytes from SEED and prints their
//! hash; `blast recv ADDR:PORT` accepts one connection, reads to the end and
//! prints the byte count and hash of what arrived. The two lines must match.
//!
//! The hash is 64-bit FNV-1a: enough to tell a lost, duplicated or changed
//! byte, with nothing to install.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

struct Fnv(u64);

impl Fnv {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// xorshift64*: deterministic bytes from a seed.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

fn run(args: &[String]) -> Result<String, String> {
    match args {
        [mode, addr] if mode == "recv" => {
            let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
            println!("listening");
            let (mut stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
            let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
            let mut total = 0u64;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = stream.read(&mut buf).map_err(|e| format!("read after {total} bytes: {e}"))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                total += n as u64;
            }
            Ok(format!("{total} {:016x}", hash.0))
        }
        [mode, addr, bytes, seed] if mode == "send" => {
            let bytes: u64 = bytes.parse().map_err(|e| format!("BYTES {bytes}: {e}"))?;
            let mut state: u64 = seed.parse().map_err(|e| format!("SEED {seed}: {e}"))?;
            state |= 1;
            let mut stream =
                TcpStream::connect_timeout(&addr.parse().map_err(|e| format!("{addr}: {e}"))?, Duration::from_secs(10))
                    .map_err(|e| format!("connect {addr}: {e}"))?;
            let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
            let mut buf = vec![0u8; 1 << 16];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                fill(&mut state, &mut buf[..n]);
                stream.write_all(&buf[..n]).map_err(|e| format!("write with {left} bytes left: {e}"))?;
                hash.update(&buf[..n]);
                left -= n as u64;
            }
            stream.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
            // Wait for the receiver to close, so every byte was read.
            let _ = stream.read(&mut buf);
            Ok(format!("{bytes} {:016x}", hash.0))
        }
        _ => Err("usage: blast recv ADDR:PORT | blast send ADDR:PORT BYTES SEED".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blast: {e}");
            ExitCode::FAILURE
        }
    }
}
