//! `wharf vtep`: a userspace VXLAN tunnel endpoint, driven from the command
//! line like `ip link add type vxlan`. [`spec`] reads and validates what the
//! user asked for, [`run`] opens the devices and moves the packets, and
//! [`stats`] serves the counters; [`tunnel`] is `--tunnel-gso`'s path.

pub mod run;
pub mod spec;
pub mod stats;
pub mod tunnel;

use std::process::ExitCode;

use crate::cli::{VtepAction, VtepCommand};

/// `wharf vtep ...`: run a VTEP, or print a running one's counters.
pub fn main(command: VtepCommand) -> ExitCode {
    let result = match command.action {
        Some(VtepAction::Stats { name, socket }) => match (socket, name) {
            (Some(path), _) => stats::fetch(&path).map(|text| print!("{text}")).map_err(|e| e.to_string()),
            (None, Some(name)) => {
                stats::fetch(&stats::socket_path(&name)).map(|text| print!("{text}")).map_err(|e| e.to_string())
            }
            (None, None) => Err("wharf vtep stats: give the VTEP's TAP or device NAME, or --socket PATH".into()),
        },
        None => command.run.spec().map_err(|e| format!("wharf vtep: {e}")).and_then(|spec| {
            let socket =
                command.run.stats_socket.clone().unwrap_or_else(|| stats::socket_path(spec.vnis[0].port.name()));
            run::run(&spec, &socket).map_err(|e| format!("wharf vtep: {e}"))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
