//! Link-time layout of the shipped wharf-proxy: a static (`crt-static`) x86_64 glibc build is
//! linked by lld with `wharf-proxy.order`, the functions it runs from exec until idle, placed
//! first in `.text` (`--symbol-ordering-file`). The kernel maps a file's code 64 KiB around each
//! fault, so start-up code spread over the binary keeps nearly all of it resident; packed, it is a
//! few windows (README, "Idle RSS"). The list comes from `benches/proxy-startup-order.sh`;
//! `wharf-proxy.ld` moves glibc's `.init` and `.iplt`, also run at start-up, next to them.
//! Other builds (tests, a plain `cargo build --release`, other targets) link as before.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wharf-proxy.order");
    println!("cargo:rerun-if-changed=wharf-proxy.ld");
    let cfg = |key: &str| env::var(key).unwrap_or_default();
    let crt_static = cfg("CARGO_CFG_TARGET_FEATURE").split(',').any(|feature| feature == "crt-static");
    let linux_gnu_x86_64 = cfg("CARGO_CFG_TARGET_OS") == "linux"
        && cfg("CARGO_CFG_TARGET_ENV") == "gnu"
        && cfg("CARGO_CFG_TARGET_ARCH") == "x86_64";
    if !crt_static || !linux_gnu_x86_64 {
        return;
    }
    // lld takes the ordering file; rustc ships it as `gcc-ld/ld.lld` for `cc -fuse-ld=lld`.
    let Some(gcc_ld) = rust_lld_dir() else {
        println!("cargo:warning=rust-lld not found: wharf-proxy is linked without its start-up ordering");
        return;
    };
    let here = PathBuf::from(cfg("CARGO_MANIFEST_DIR"));
    for arg in [
        "-fuse-ld=lld".to_string(),
        format!("-B{}", gcc_ld.display()),
        format!("-Wl,--symbol-ordering-file={}", here.join("wharf-proxy.order").display()),
        // Names from another toolchain or glibc are skipped, not an error.
        "-Wl,--no-warn-symbol-ordering".to_string(),
        // .init and .iplt moved next to them.
        format!("-Wl,-T,{}", here.join("wharf-proxy.ld").display()),
    ] {
        println!("cargo:rustc-link-arg-bin=wharf-proxy={arg}");
    }
}

/// The directory holding rustc's `ld.lld` wrapper for the host (`<sysroot>/lib/rustlib/<host>/bin/gcc-ld`).
fn rust_lld_dir() -> Option<PathBuf> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = String::from_utf8(output.stdout).ok()?;
    let dir = Path::new(sysroot.trim()).join("lib/rustlib").join(env::var("HOST").ok()?).join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
}
