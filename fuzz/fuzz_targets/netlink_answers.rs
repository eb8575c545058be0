//! `wharf vtep --tunnel-gso`'s reader of the kernel's netlink answers to
//! `NTF_USE` (`dataplane::sys::neigh::count_errors`): arbitrary bytes as one
//! read. Checked: nothing panics, and no more errors are counted than
//! 16-byte message headers fit.
#![no_main]

use dataplane::sys::neigh::count_errors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(count_errors(data) <= data.len() / 16);
});
