//! `wharf-proxy`: a drop-in replacement for Docker's docker-proxy. See
//! [`dataplane::proxy`].

fn main() {
    std::process::exit(dataplane::proxy::main(std::env::args_os().skip(1)));
}
