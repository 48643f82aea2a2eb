//! The table of live sampled allocations: a fixed-size, lock-free open-addressing hash set keyed by address.
//!
//! Invariants:
//! - a slot's key goes EMPTY → BUSY → address → TOMB → BUSY → address … and never back to EMPTY, so a lookup
//!   may stop at the first EMPTY slot of its probe window;
//! - an insert places its key within `MAX_PROBE` slots of the home slot, so lookups never look further;
//! - the payload (size, weight, stack, seq) is written while the key is BUSY and published by the Release store
//!   of the address; readers load the key with Acquire and re-check it after reading the payload.
//!
//! `free` does not consult this table for ordinary blocks: sampled blocks carry a tag in front of them (see
//! `hooks.rs`), so only the frees of sampled blocks, and of page-aligned blocks while a page-aligned sample is live
//! ([`PAGE_ALIGNED_LIVE`]), come here. A full probe window drops the sample (counted in `DROPPED`).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const EMPTY: usize = 0;
const BUSY: usize = 1;
const TOMB: usize = 2;
const MAX_PROBE: usize = 64;

#[repr(C, align(32))]
pub struct Slot {
    key: AtomicUsize,
    size: AtomicU64,
    weight_bits: AtomicU64,
    /// stack id in the low 32 bits, sample sequence number in the high 32 bits.
    stack_seq: AtomicU64,
}

static SLOTS: AtomicUsize = AtomicUsize::new(0);
static MASK: AtomicUsize = AtomicUsize::new(0);
/// Number of live samples.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Live samples of page-aligned blocks (alignment ≥ 4096: they cannot carry a tag); while it is zero, `free` of a
/// page-aligned pointer does not look here.
pub static PAGE_ALIGNED_LIVE: AtomicUsize = AtomicUsize::new(0);

/// Allocates the table with `1 << bits` slots. Called once from the constructor.
pub fn init(bits: u32) -> bool {
    let n = 1usize << bits;
    let p = crate::mem::map(n * core::mem::size_of::<Slot>());
    if p.is_null() {
        return false;
    }
    MASK.store(n - 1, Ordering::Relaxed);
    SLOTS.store(p as usize, Ordering::Release);
    true
}

#[inline(always)]
fn home(addr: usize, mask: usize) -> usize {
    ((addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & mask
}

#[inline(always)]
fn slot(base: usize, i: usize) -> &'static Slot {
    // SAFETY: `base` is the start of the mapping made by `init` with MASK+1 slots and `i` is masked by the
    // callers; the mapping is never unmapped, so the reference is valid for 'static.
    unsafe { &*((base as *const Slot).add(i)) }
}

/// Records a live sample. Returns false when the table is missing or the probe window is full.
pub fn insert(addr: usize, size: u64, weight: f64, stack: u32, seq: u64) -> bool {
    let base = SLOTS.load(Ordering::Acquire);
    if base == 0 || addr <= TOMB {
        return false;
    }
    let mask = MASK.load(Ordering::Relaxed);
    let h = home(addr, mask);
    for i in 0..MAX_PROBE {
        let s = slot(base, (h + i) & mask);
        let k = s.key.load(Ordering::Relaxed);
        if (k == EMPTY || k == TOMB) && s.key.compare_exchange(k, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            s.size.store(size, Ordering::Relaxed);
            s.weight_bits.store(weight.to_bits(), Ordering::Relaxed);
            s.stack_seq.store(u64::from(stack) | (seq << 32), Ordering::Relaxed);
            s.key.store(addr, Ordering::Release);
            LIVE.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
    false
}

/// Forgets `addr` if it is in the table; returns whether it was. Must run before the real free (after it the
/// address can be reused).
pub fn remove(addr: usize) -> bool {
    let base = SLOTS.load(Ordering::Acquire);
    if base == 0 {
        return false;
    }
    let mask = MASK.load(Ordering::Relaxed);
    let h = home(addr, mask);
    for i in 0..MAX_PROBE {
        let s = slot(base, (h + i) & mask);
        let k = s.key.load(Ordering::Acquire);
        if k == EMPTY {
            return false;
        }
        if k == addr {
            let removed = s.key.compare_exchange(addr, TOMB, Ordering::AcqRel, Ordering::Relaxed).is_ok();
            if removed {
                LIVE.fetch_sub(1, Ordering::Relaxed);
            }
            return removed;
        }
    }
    false
}

/// One live sample as read by a dump.
pub struct Live {
    pub addr: usize,
    pub size: u64,
    pub weight: f64,
    pub stack: u32,
    pub seq: u32,
}

/// Calls `f` for every live sample (a consistent view per slot, not a global snapshot).
pub fn for_each(mut f: impl FnMut(Live)) {
    let base = SLOTS.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    let n = MASK.load(Ordering::Relaxed) + 1;
    for i in 0..n {
        let s = slot(base, i);
        let k = s.key.load(Ordering::Acquire);
        if k <= TOMB {
            continue;
        }
        let size = s.size.load(Ordering::Relaxed);
        let weight = f64::from_bits(s.weight_bits.load(Ordering::Relaxed));
        let ss = s.stack_seq.load(Ordering::Relaxed);
        if s.key.load(Ordering::Acquire) != k {
            continue;
        }
        f(Live { addr: k, size, weight, stack: ss as u32, seq: (ss >> 32) as u32 });
    }
}
