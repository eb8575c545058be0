//! The RFC 1624 incremental update against a full recomputation: the first
//! byte picks a 16-bit-aligned field, the next four are its new value, the
//! rest is the checksummed data.
#![no_main]

use dataplane::wire::checksum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [at, a, b, c, d, rest @ ..] = data else { return };
    if rest.len() < 4 {
        let _ = checksum::sum(rest);
        return;
    }
    let at = (usize::from(*at) % (rest.len() - 3)) & !1;
    let before = !checksum::sum(rest);
    let mut rewritten = rest.to_vec();
    rewritten[at..at + 4].copy_from_slice(&[*a, *b, *c, *d]);
    let full = !checksum::sum(&rewritten);
    // All-zero data is the one case where RFC 1624 eqn. 3 and a full
    // recomputation pick different zeros (0x0000 vs 0xffff); no IP or
    // transport header is all zero.
    if rewritten.iter().all(|&byte| byte == 0) {
        return;
    }
    let old = u32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
    let new = u32::from_be_bytes([*a, *b, *c, *d]);
    assert_eq!(checksum::update32(before, old, new), full);
    assert_eq!(checksum::update_bytes(before, &rest[at..at + 4], &rewritten[at..at + 4]), full);
    let mut half = rest.to_vec();
    half[at..at + 2].copy_from_slice(&[*a, *b]);
    if half.iter().any(|&byte| byte != 0) {
        let old16 = u16::from_be_bytes([rest[at], rest[at + 1]]);
        assert_eq!(checksum::update16(before, old16, u16::from_be_bytes([*a, *b])), !checksum::sum(&half));
    }
});
