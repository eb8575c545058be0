#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    control::main()
}
