//! Where wharf keeps its state: `WHARF_ROOT` (default `/var/lib/wharf`),
//! with runtime sockets under `WHARF_ROOT/run`.

use std::path::PathBuf;

/// The default state directory.
pub const DEFAULT_ROOT: &str = "/var/lib/wharf";

/// `WHARF_ROOT`, or [`DEFAULT_ROOT`].
pub fn wharf_root() -> PathBuf {
    std::env::var_os("WHARF_ROOT").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

/// The directory for runtime sockets.
pub fn run_dir() -> PathBuf {
    wharf_root().join("run")
}
