//! The `wharf` command line, in Docker's words.

use clap::Parser;

/// wharf: a userspace data plane for container networks.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about, long_about = None)]
pub struct Cli {}
