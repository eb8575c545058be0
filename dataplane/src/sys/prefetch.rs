//! A software prefetch: a hint that starts loading the cache line holding a
//! value, so that the miss overlaps with other work (the NAT core issues it
//! for every packet of a burst before translating any).
//!
//! Safe Rust has no prefetch; a plain load does the same only until the
//! processor's reorder window fills (a few misses), while a prefetch
//! instruction retires at once, so a burst's misses all overlap.
//!
//! What this module does not do: anything on targets other than x86-64
//! (there it is a no-op), or anything a program could observe but time.

/// Starts loading the cache line holding `value` into every cache level.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address,
    // and changes nothing the program can read; the address comes from a
    // live reference besides.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(core::ptr::from_ref(value).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference to a zero-sized value may hold a dangling address, here
    /// in the unmapped first page: the hint must not fault there, as a load
    /// would.
    #[test]
    fn an_unmapped_address_does_not_fault() {
        let empty: Vec<u64> = Vec::new();
        let nothing: &[u64; 0] = empty.as_slice().try_into().unwrap();
        assert!(nothing.as_ptr().addr() < 4096, "{:p} is not in the first page", nothing.as_ptr());
        prefetch(nothing);
    }
}
