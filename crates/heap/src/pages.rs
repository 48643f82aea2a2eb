//! Mapping memory ahead of the thread that will write it. A fresh page costs about a microsecond when first
//! written (the fault, zeroing it, accounting); a pass whose thread is the one everything waits for can have
//! another thread, which has time to spare, take those faults first.

/// An array's memory as an address range, to be populated while the array is written elsewhere. Holding one
/// gives no access to the memory: it is only ever passed to the system.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    start: usize,
    len: usize,
}

impl Region {
    pub(crate) fn of<T>(array: &[T]) -> Region {
        Region { start: array.as_ptr() as usize, len: std::mem::size_of_val(array) }
    }

    pub(crate) fn len(self) -> usize {
        self.len
    }

    /// The `part`-th of `parts` equal parts (the last one takes the rest).
    pub(crate) fn part(self, part: usize, parts: usize) -> Region {
        let size = self.len / parts;
        let len = if part + 1 == parts { self.len - size * part } else { size };
        Region { start: self.start + size * part, len }
    }

    /// Gives the whole pages of the range back to the system (they read as zeros afterwards).
    ///
    /// # Safety
    /// The range must belong to an allocation that is dropped right after without being read (arrays of plain
    /// numbers): its contents change under it.
    pub(crate) unsafe fn discard(self) {
        #[cfg(target_os = "linux")]
        // SAFETY: the whole pages of an allocation the caller drops unread (this function's contract).
        unsafe {
            self.advise(libc::MADV_DONTNEED)
        };
    }

    /// Has the whole pages of the range mapped and writable now, their contents unchanged (Linux 5.14 and later;
    /// a no-op elsewhere, or when the system says no). The memory must stay allocated meanwhile.
    pub(crate) fn populate(self) {
        #[cfg(target_os = "linux")]
        // SAFETY: populating changes no memory contents, so it cannot race with the thread writing the array.
        unsafe {
            self.advise(libc::MADV_POPULATE_WRITE)
        };
    }

    /// `madvise` on the whole pages of the range; errors (an older kernel) are ignored: these are hints.
    ///
    /// # Safety
    /// The range must lie within a live allocation, and `advice` must not change contents still read.
    #[cfg(target_os = "linux")]
    unsafe fn advise(self, advice: libc::c_int) {
        const PAGE: usize = 4096;
        let start = self.start.next_multiple_of(PAGE);
        let end = (self.start + self.len) / PAGE * PAGE;
        if end > start {
            // SAFETY: whole pages within the range (this function's contract).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Region;

    #[test]
    fn parts_cover_the_region_and_populating_changes_nothing() {
        let mut array = vec![0u32; 3 << 20];
        for (i, slot) in array.iter_mut().enumerate().step_by(4099) {
            *slot = i as u32;
        }
        let region = Region::of(&array);
        for parts in [1, 3, 64] {
            let mut next = region.start;
            for part in 0..parts {
                let piece = region.part(part, parts);
                assert_eq!(piece.start, next, "part {part} of {parts} starts where the one before ends");
                next += piece.len;
                piece.populate();
            }
            assert_eq!(next, region.start + region.len, "the {parts} parts end where the region does");
        }
        let changed = array.iter().enumerate().filter(|&(i, &v)| v != if i % 4099 == 0 { i as u32 } else { 0 });
        assert_eq!(changed.count(), 0);
    }
}
