//! The table of live sampled allocations: a fixed-size, lock-free open-addressing hash set keyed by address.
//!
//! Invariants:
//! - a slot's key goes EMPTY → BUSY → address → TOMB → BUSY → address … and never back to EMPTY, so a lookup
//!   may stop at the first EMPTY slot of its probe window;
//! - an insert places its key within `MAX_PROBE` slots of the home slot, so lookups never look further;
//! - the payload (size, weight, stack, seq) is written while the key is BUSY and published by the Release store
//!   of the address; readers load the key with Acquire and re-check it after reading the payload.
//!
//! In front of the table sits a counting filter small enough to stay in L1 cache (2^13 8-bit counters, 8 KiB,
//! one counter per address bucket; a counter that reaches 255 sticks there and the bucket always goes to the table): `free` of a non-sampled pointer almost always finds its counter at zero and never
//! touches the (large, cold) table. Counters are incremented before an insert is published and decremented after
//! a successful removal, so a zero counter proves the pointer is not in the table. `free` never takes a lock.
//! A full probe window drops the sample (counted in `DROPPED`).

use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

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

const FILTER_BITS: u32 = 13;
const STUCK: u8 = u8::MAX;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU8 = AtomicU8::new(0);
static FILTER: [AtomicU8; 1 << FILTER_BITS] = [ZERO; 1 << FILTER_BITS];

/// Increments a filter counter unless it is stuck at 255.
fn filter_inc(f: &AtomicU8) {
    let _ = f.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| if c == STUCK { None } else { Some(c + 1) });
}

/// Decrements a filter counter unless it is stuck at 255 (then it stays: always look in the table).
fn filter_dec(f: &AtomicU8) {
    let _ =
        f.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| if c == STUCK || c == 0 { None } else { Some(c - 1) });
}

#[inline(always)]
fn filter(addr: usize) -> &'static AtomicU8 {
    let h = (addr >> 4).wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - FILTER_BITS);
    &FILTER[h & ((1 << FILTER_BITS) - 1)]
}

static SLOTS: AtomicUsize = AtomicUsize::new(0);
static MASK: AtomicUsize = AtomicUsize::new(0);
/// Number of live samples; `free` skips the lookup while it is zero.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

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
    let f = filter(addr);
    filter_inc(f);
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
    filter_dec(f);
    DROPPED.fetch_add(1, Ordering::Relaxed);
    false
}

/// Forgets `addr` if it was sampled. Must run before the real free (after it the address can be reused).
#[inline(always)]
pub fn remove(addr: usize) {
    let f = filter(addr);
    if f.load(Ordering::Acquire) == 0 {
        return;
    }
    let base = SLOTS.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    let mask = MASK.load(Ordering::Relaxed);
    let h = home(addr, mask);
    for i in 0..MAX_PROBE {
        let s = slot(base, (h + i) & mask);
        let k = s.key.load(Ordering::Acquire);
        if k == EMPTY {
            return;
        }
        if k == addr {
            if s.key.compare_exchange(addr, TOMB, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                LIVE.fetch_sub(1, Ordering::Relaxed);
                filter_dec(f);
            }
            return;
        }
    }
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
