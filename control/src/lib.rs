//! wharf's control plane: what a container is and how it is wired into the
//! data plane. It holds the command-line interface; containers run by runc
//! with their images, volumes and limits; and the `wharf vtep` and
//! `wharf nat` runners. Networks, IPAM and DNS land here as they are built.

#![forbid(unsafe_code)]

pub mod cli;
pub mod container;
pub mod image;
pub mod nat;
pub mod network;
pub mod paths;
pub mod state;
pub mod volume;
pub mod vtep;

use std::process::ExitCode;

use clap::Parser;

/// The `wharf` command: parses the arguments and runs what they ask.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Vtep(command) => vtep::main(command),
        cli::Command::Nat(command) => nat::main(command),
        cli::Command::Container(command) => container::cli::main(command),
    }
}
