//! The `wharf` command, built again inside the tests crate (under another
//! name, so the two binaries do not collide) so that end-to-end tests always
//! run the current code through `CARGO_BIN_EXE_wharf-e2e`, whatever
//! `cargo test` selection built them.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    control::main()
}
