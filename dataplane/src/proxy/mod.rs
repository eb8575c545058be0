//! `wharf-proxy`: forwards published ports to containers, as Docker's
//! `docker-proxy` does and with its exact command line and readiness
//! protocol, so dockerd can run it through `"userland-proxy-path"`.
//!
//! - [`args`]: the Go-style flags, and `-map`/`-config` for many ports in
//!   one process.
//! - [`mapping`]: what is forwarded where.
//! - [`run`]: the single-threaded event loop, start-up, signals, drain.
//! - [`tcp`]: the TCP relay (splice through pooled pipes, or copy).
//! - [`udp`] and [`flows`]: the UDP relay and its bounded flow table.
//! - [`proxy_protocol`]: PROXY protocol v1/v2 headers.
//! - [`stats`]: per-mapping counters.
//!
//! What this module does not do: publish ports in the firewall, or choose
//! them (dockerd, or `wharf`, does).

pub mod args;
pub mod flows;
pub mod mapping;
pub mod proxy_protocol;
pub mod run;
pub mod stats;
pub mod tcp;
pub mod udp;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;

use crate::sys::process;

/// The whole program: parses `args` (after the program name), starts, runs,
/// and returns the exit code (0 done, 1 start-up or run failure, 2 bad
/// command line).
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    // Take docker's descriptors before anything else can open one and land
    // on these numbers.
    let ready = process::inherited_fd(3).map(File::from);
    let listen_fd = process::inherited_fd(4);
    let options = match args::parse(args) {
        Ok(args::Command::Run(options)) => options,
        Ok(args::Command::Version) => {
            println!("wharf-proxy {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(args::Command::Help) => {
            eprint!("{}", args::USAGE);
            return 0;
        }
        Err(err) => {
            eprintln!("{err}");
            eprint!("{}", args::USAGE);
            report(ready, Err(&err.0));
            return 2;
        }
    };
    let _ = process::raise_nofile_limit();
    let threads = options.threads;
    let started =
        run::Proxy::start(options, listen_fd).and_then(|mut proxy| proxy.spawn_workers(threads).map(|()| proxy));
    let proxy = match started {
        Ok(proxy) => proxy,
        Err(err) => {
            crate::stderr_line!("wharf-proxy: {}", err.0);
            report(ready, Err(&err.0));
            return 1;
        }
    };
    report(ready, Ok(()));
    match proxy.run() {
        Ok(()) => 0,
        Err(err) => {
            crate::stderr_line!("wharf-proxy: event loop: {err}");
            1
        }
    }
}

/// docker-proxy's readiness protocol on fd 3: `0\n` when listening, or
/// `1\n` and the error; then close.
fn report(ready: Option<File>, outcome: Result<(), &str>) {
    let Some(mut pipe) = ready else { return };
    let _ = match outcome {
        Ok(()) => pipe.write_all(b"0\n"),
        Err(message) => pipe.write_all(format!("1\n{message}").as_bytes()),
    };
}
