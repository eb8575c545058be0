//! wharf-proxy, built inside the tests crate so end-to-end tests can find it
//! through `CARGO_BIN_EXE_wharf-proxy-e2e`.

fn main() {
    std::process::exit(dataplane::proxy::main(std::env::args_os().skip(1)));
}
