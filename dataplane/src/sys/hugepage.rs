//! Asking the kernel to back a large table with transparent huge pages.
//!
//! A table of a million connections spans about 90 MB; with 4 KiB pages
//! every look-up that misses the caches also misses the TLB and walks the
//! page tables. With 2 MiB pages the whole table fits in the TLB. Linux
//! honours the advice when transparent huge pages are `madvise` or `always`
//! (`/sys/kernel/mm/transparent_hugepage/enabled`); with `never`, or on
//! other systems, the advice is ignored and nothing else changes.
//!
//! What this module does not do: allocate, or make sure the pages are huge
//! (memory already touched keeps its pages until khugepaged collapses them;
//! the advice takes effect for pages faulted in after it).

/// Advises that the memory of `buffer`, spare capacity included, be backed
/// by huge pages. Call it before the memory is first written. Returns
/// whether the kernel took the advice (false for a buffer smaller than a
/// page, or where the advice is not supported).
pub fn advise_huge_pages<T>(buffer: &Vec<T>) -> bool {
    const PAGE: usize = 4096;
    let start = buffer.as_ptr() as usize;
    let end = start.saturating_add(buffer.capacity().saturating_mul(core::mem::size_of::<T>()));
    // Whole pages inside the allocation only.
    let first = start.div_ceil(PAGE) * PAGE;
    let last = end / PAGE * PAGE;
    if last <= first {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: [first, last) is page-aligned and lies inside the
        // allocation `buffer` owns; MADV_HUGEPAGE changes how the kernel
        // backs those pages, never their contents or their mapping.
        let rc = unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_keeps_the_contents_and_small_buffers_are_left_alone() {
        let mut big: Vec<u64> = Vec::with_capacity(1 << 20);
        assert!(advise_huge_pages(&big), "8 MiB of anonymous memory takes the advice");
        big.extend(0..1 << 20);
        assert!(big.iter().enumerate().all(|(i, &v)| v == i as u64));
        let small = vec![7u8; 100];
        assert!(!advise_huge_pages(&small));
        assert_eq!(small, vec![7u8; 100]);
    }
}
