#![forbid(unsafe_code)]

use clap::Parser;
use control::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
