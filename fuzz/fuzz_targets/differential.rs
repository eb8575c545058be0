//! wharf's whole-frame walk against etherparse on arbitrary bytes: both
//! accept or both reject, and agree on every field both expose. The
//! comparison, and the differences by design, are shared with the
//! differential test in dataplane/tests/support/etherparse_diff.rs.
#![no_main]

#[path = "../../dataplane/tests/support/etherparse_diff.rs"]
mod diff;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = diff::compare(data) {
        panic!("{disagreement}");
    }
});
