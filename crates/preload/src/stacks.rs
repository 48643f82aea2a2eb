//! The stack table: deduplicated call stacks (return addresses, leaf first) in an append-only arena.
//!
//! Layout of the arena (u64 words): for each stack `[alloc_objects f64 bits, alloc_space f64 bits, len, frames…]`.
//! `OFFSETS[id]` is the word offset of stack `id`; `COUNT` publishes how many ids exist (Release after the words
//! are written), so dumps read stacks without the lock. Interning and the alloc totals are updated under `LOCK`,
//! taken only on the sampling slow path.

use crate::mem::SpinLock;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub const MAX_FRAMES: usize = 64;
const ARENA_WORDS: usize = 8 << 20; // 64 MiB of address space
const MAX_STACKS: usize = 1 << 20;
const INDEX_BITS: u32 = 21;

static ARENA: AtomicUsize = AtomicUsize::new(0);
static OFFSETS: AtomicUsize = AtomicUsize::new(0);
static INDEX: AtomicUsize = AtomicUsize::new(0);
static USED: AtomicUsize = AtomicUsize::new(0);
pub static COUNT: AtomicU32 = AtomicU32::new(0);
static LOCK: SpinLock = SpinLock::new();

pub fn init() -> bool {
    let arena = crate::mem::map(ARENA_WORDS * 8);
    let offsets = crate::mem::map(MAX_STACKS * 8);
    let index = crate::mem::map((1usize << INDEX_BITS) * 4);
    if arena.is_null() || offsets.is_null() || index.is_null() {
        return false;
    }
    ARENA.store(arena as usize, Ordering::Relaxed);
    OFFSETS.store(offsets as usize, Ordering::Relaxed);
    INDEX.store(index as usize, Ordering::Release);
    true
}

fn words() -> *mut u64 {
    ARENA.load(Ordering::Acquire) as *mut u64
}

fn word(i: usize) -> &'static AtomicU64 {
    // SAFETY: `i` < ARENA_WORDS is checked by callers; the mapping lives forever and AtomicU64 has u64's layout.
    unsafe { &*(words().add(i) as *const AtomicU64) }
}

fn offset_of(id: u32) -> usize {
    // SAFETY: id < COUNT ≤ MAX_STACKS, inside the OFFSETS mapping.
    unsafe {
        (*((OFFSETS.load(Ordering::Acquire) as *const AtomicU64).add(id as usize))).load(Ordering::Acquire) as usize
    }
}

fn hash(frames: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x100_0000_01b3);
        h ^= h >> 29;
    }
    h ^ frames.len() as u64
}

fn add_f64(w: &AtomicU64, v: f64) {
    // Only called under LOCK, so a plain load/store is enough; readers see either value.
    let old = f64::from_bits(w.load(Ordering::Relaxed));
    w.store((old + v).to_bits(), Ordering::Relaxed);
}

/// Returns the id of `frames` (interning it if new) and adds one sample to its alloc totals; `None` when full.
pub fn intern(frames: &[usize], weight: f64, size: u64) -> Option<u32> {
    if INDEX.load(Ordering::Acquire) == 0 {
        return None;
    }
    let _g = LOCK.lock();
    let index = INDEX.load(Ordering::Relaxed) as *mut u32;
    let mask = (1usize << INDEX_BITS) - 1;
    let mut i = hash(frames) as usize & mask;
    loop {
        // SAFETY: i is masked into the index mapping; accessed only under LOCK.
        let entry = unsafe { &mut *index.add(i) };
        if *entry == 0 {
            break;
        }
        let id = *entry - 1;
        let off = offset_of(id);
        let len = word(off + 2).load(Ordering::Relaxed) as usize;
        if len == frames.len() && (0..len).all(|k| word(off + 3 + k).load(Ordering::Relaxed) == frames[k] as u64) {
            add_f64(word(off), weight);
            add_f64(word(off + 1), weight * size as f64);
            return Some(id);
        }
        i = (i + 1) & mask;
    }
    let id = COUNT.load(Ordering::Relaxed);
    let off = USED.load(Ordering::Relaxed);
    if id as usize >= MAX_STACKS || id as usize > mask / 2 || off + 3 + frames.len() > ARENA_WORDS {
        return None;
    }
    word(off).store(weight.to_bits(), Ordering::Relaxed);
    word(off + 1).store((weight * size as f64).to_bits(), Ordering::Relaxed);
    word(off + 2).store(frames.len() as u64, Ordering::Relaxed);
    for (k, &f) in frames.iter().enumerate() {
        word(off + 3 + k).store(f as u64, Ordering::Relaxed);
    }
    USED.store(off + 3 + frames.len(), Ordering::Relaxed);
    // SAFETY: id < MAX_STACKS, inside the OFFSETS mapping.
    unsafe {
        (*((OFFSETS.load(Ordering::Relaxed) as *const AtomicU64).add(id as usize))).store(off as u64, Ordering::Release)
    };
    // SAFETY: as above, under LOCK.
    unsafe { *index.add(i) = id + 1 };
    COUNT.store(id + 1, Ordering::Release);
    Some(id)
}

/// Reads stack `id` (< COUNT): alloc_objects, alloc_space, and the frames passed to `f`.
pub fn read(id: u32, mut f: impl FnMut(f64, f64, &mut dyn Iterator<Item = u64>)) {
    let off = offset_of(id);
    let objects = f64::from_bits(word(off).load(Ordering::Relaxed));
    let space = f64::from_bits(word(off + 1).load(Ordering::Relaxed));
    let len = (word(off + 2).load(Ordering::Relaxed) as usize).min(MAX_FRAMES);
    let mut it = (0..len).map(|k| word(off + 3 + k).load(Ordering::Relaxed));
    f(objects, space, &mut it);
}
