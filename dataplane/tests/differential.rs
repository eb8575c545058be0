//! Differential test: wharf's whole-frame walk against etherparse over
//! well-formed frames built from random fields, and over the same frames
//! deliberately broken (cut short, a length field or a byte changed). Both
//! must accept or both reject, and agree on every field both expose; the
//! differences by design, with the RFC clauses where etherparse is wrong,
//! are listed in `support/etherparse_diff.rs`.

#[path = "support/etherparse_diff.rs"]
mod diff;
#[path = "support/frames.rs"]
mod frames;

use diff::{compare, Verdict};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_frames_agree(frame in frames::frame()) {
        let verdict = compare(&frame).map_err(TestCaseError::fail)?;
        prop_assert_eq!(verdict, Verdict::BothAccept);
    }

    #[test]
    fn broken_frames_agree(frame in frames::frame(), cut in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        // Cut short anywhere.
        let short = &frame[..cut.index(frame.len() + 1)];
        compare(short).map_err(TestCaseError::fail)?;
        // One byte changed anywhere: length fields, versions, flags, ports.
        let mut changed = frame.clone();
        let i = at.index(changed.len());
        changed[i] = byte;
        compare(&changed).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bytes_agree(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        compare(&bytes).map_err(TestCaseError::fail)?;
    }
}

/// Inputs the fuzzers found, kept: each must compare without a
/// disagreement.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("differential-") {
            let frame = std::fs::read(&path).unwrap();
            compare(&frame).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}
