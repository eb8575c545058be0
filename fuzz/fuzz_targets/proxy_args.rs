//! wharf-proxy's command line: a `-map` SPEC, a `-config` file's text and a
//! whole argument list (NUL-separated) never panic, a SPEC that parses
//! prints back to one that parses to the same mapping, and a duration that
//! parses is one the clock can take.
#![no_main]

use std::ffi::OsString;

use dataplane::proxy::{args, mapping::Mapping};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mapping) = text.parse::<Mapping>() {
        let again: Mapping = mapping.to_string().parse().expect("a printed SPEC parses");
        assert_eq!(again, mapping);
        assert_eq!(mapping.pairs().count(), mapping.host_ports.len());
    }
    let _ = args::parse_config(text);
    // Every duration the proxy takes can be added to the clock: the drain
    // deadline and a flow's expiry are `now + duration`.
    if let Ok(duration) = args::parse_duration(text) {
        assert!(duration <= args::MAX_DURATION);
        let _ = std::time::Instant::now() + duration;
    }
    // -config would read a file: keep the fuzzer off the file system.
    let argv: Vec<OsString> = text.split('\0').filter(|a| !a.contains("config")).map(OsString::from).collect();
    if let Ok(args::Command::Run(options)) = args::parse(argv) {
        let now = std::time::Instant::now();
        let _ = (now + options.drain_timeout, now + options.udp_timeout);
    }
});
