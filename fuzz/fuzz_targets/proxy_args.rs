//! wharf-proxy's command line: a `-map` SPEC, a `-config` file's text and a
//! whole argument list (NUL-separated) never panic, and a SPEC that parses
//! prints back to one that parses to the same mapping.
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
    let _ = args::parse_duration(text);
    // -config would read a file: keep the fuzzer off the file system.
    let argv: Vec<OsString> = text.split('\0').filter(|a| !a.contains("config")).map(OsString::from).collect();
    let _ = args::parse(argv);
});
