//! The exported allocator entry points.
//!
//! **Fast path.** On x86-64, `malloc`, `calloc`, `realloc` and `free` are a few instructions of assembly: charge
//! `size + 1` to the thread's countdown (initial-exec TLS, see [`crate::tls`]) or check the tag of the block, then
//! tail-jump (`jmp`, no new frame) to the real function through a plain static. Only when the countdown runs out,
//! or the block is special (sampled, bootstrap, page-aligned), do they jump to the Rust code below, passing the
//! return address (`[rsp]`) and the caller's frame pointer (`rbp`) for the stack walk. The other allocating
//! functions (`posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`, `reallocarray`) are small naked
//! trampolines into Rust that do the same charge inline.
//!
//! **Sampled blocks carry a tag.** A sampled allocation of `size` bytes with alignment A (16 for malloc, calloc
//! and realloc) is served from a real block `r` of `size + 2A` bytes and handed out as `q = r + A` (or `r + 2A`
//! when `r + A` would start a page), with two words in front of it:
//!
//! ```text
//! r … [q − 16] = SECRET ^ q     the tag
//!     [q −  8] = r              the real block, for free/realloc/malloc_usable_size
//!     [q …  q + size)           the program's bytes
//! ```
//!
//! So `free(q)` knows whether `q` was sampled by reading the word at `q − 16` — the same cache line as the chunk
//! header at `q − 8` that glibc's free reads anyway — instead of looking `q` up in a table. The tag is cleared
//! before the real free, so no stale tag can survive in reused memory. A tag is only looked for when `q − 16` is
//! in the same page as `q` (page offset ≥ 16), so it never reads an unmapped page whatever the real allocator.
//! Blocks whose alignment is a page or more (valloc, pvalloc, memalign(4096…)) cannot carry a tag; sampled ones
//! are looked up by address in the live table, only while such a sample is live ([`live::PAGE_ALIGNED_LIVE`]).
//! The secret is random per process (set once, before the first tag is written); an ordinary block is taken for
//! a sampled one only if the 8 bytes before it happen to equal `SECRET ^ q`, and then only if the word after it
//! also points just below `q` (checked before anything is freed).

use crate::real;
use crate::{charge, live, record};
use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering};

const PAGE: usize = 4096;

/// Mixed into every tag. The initial value is only there so that no tag test can pass by accident (`[q−16] == q`)
/// before [`init_secret`] runs; no tag is written before then.
static SECRET: AtomicU64 = AtomicU64::new(0x6C8E_9CF5_7093_2BD5);

/// Draws the per-process secret. Called by the constructor before sampling starts.
pub(crate) fn init_secret() {
    let mut s: u64 = 0;
    // SAFETY: getrandom writes at most 8 bytes into `s`; getpid and clock_gettime have no preconditions.
    unsafe {
        if libc::getrandom(&mut s as *mut u64 as *mut c_void, 8, libc::GRND_NONBLOCK) != 8 {
            let mut ts: libc::timespec = core::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
            s = (ts.tv_nsec as u64) << 32 ^ ts.tv_sec as u64 ^ (libc::getpid() as u64).rotate_left(17);
            s = (s ^ (s >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    // Never small: a tag must not look like a size or a small integer.
    SECRET.store(s | 1 << 62, Ordering::Release);
}

/// Whether a tag can sit in front of `q`: page offset ≥ 16, so `q − 16` is in the same (mapped) page.
#[inline(always)]
fn taggable(q: usize) -> bool {
    q & (PAGE - 16) != 0
}

/// The real block behind a sampled (tagged) pointer `q`, or `None` for any other block. `q` must be a block of
/// the real allocator (not null, not a bootstrap block).
#[inline(always)]
unsafe fn sampled_base(q: usize) -> Option<usize> {
    if !taggable(q) {
        return None;
    }
    if core::ptr::read_volatile((q - 16) as *const u64) ^ q as u64 != SECRET.load(Ordering::Relaxed) {
        return None;
    }
    let r = core::ptr::read_volatile((q - 8) as *const usize);
    (r < q && q - r <= 2 * PAGE && r & 15 == 0).then_some(r)
}

/// Serves a sampled allocation: `size` bytes aligned to `align` (a power of two ≥ 16), tagged, and records it.
/// Null (errno ENOMEM) when the real allocator fails.
unsafe fn alloc_sampled(kind: Kind, align: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    if align >= PAGE {
        // No room for a tag in front of a page-aligned block: a plain block, found by address when freed.
        let p = kind.call(align, size);
        if !p.is_null() && record(p as usize, size, ret, fp) {
            live::PAGE_ALIGNED_LIVE.fetch_add(1, Ordering::Relaxed);
        }
        return p;
    }
    let Some(total) = size.checked_add(2 * align) else {
        *libc::__errno_location() = libc::ENOMEM;
        return core::ptr::null_mut();
    };
    let r = kind.call(align, total);
    if r.is_null() {
        return r;
    }
    let r = r as usize;
    let mut q = r + align;
    if !taggable(q) {
        q += align;
    }
    core::ptr::write_volatile((q - 8) as *mut usize, r);
    core::ptr::write_volatile((q - 16) as *mut u64, SECRET.load(Ordering::Relaxed) ^ q as u64);
    record(q, size, ret, fp);
    q as *mut c_void
}

/// Which real function serves a sampled block (the same family as the program's call).
#[derive(Clone, Copy)]
enum Kind {
    Malloc,
    Calloc,
    Memalign,
    AlignedAlloc,
    PosixMemalign,
    Valloc,
}

impl Kind {
    unsafe fn call(self, align: usize, size: usize) -> *mut c_void {
        match self {
            Kind::Malloc => real::MALLOC.get()(size),
            Kind::Calloc => real::CALLOC.get()(1, size),
            Kind::Memalign => real::MEMALIGN.get()(align, size),
            Kind::AlignedAlloc => real::ALIGNED_ALLOC.get()(align, size),
            Kind::PosixMemalign => {
                let mut p = core::ptr::null_mut();
                if real::POSIX_MEMALIGN.get()(&mut p, align, size) == 0 {
                    p
                } else {
                    core::ptr::null_mut()
                }
            }
            Kind::Valloc => real::VALLOC.get()(size),
        }
    }
}

/// Frees a block whose tag matched (jumped to from the `free` fast path; never a bootstrap block, which starts a
/// page).
unsafe extern "C" fn free_tagged(p: *mut c_void) {
    let q = p as usize;
    let Some(r) = sampled_base(q) else {
        real::FREE.get()(p);
        return;
    };
    core::ptr::write_volatile((q - 16) as *mut u64, 0);
    live::remove(q);
    real::FREE.get()(r as *mut c_void);
}

/// Frees a block with page offset < 16 (jumped to from the `free` fast path; never null).
unsafe extern "C" fn free_page_aligned(p: *mut c_void) {
    if real::in_arena(p) {
        return;
    }
    forget_page_aligned(p as usize);
    real::FREE.get()(p);
}

/// Removes a page-aligned sample (if `q` is one) from the live table.
#[inline(always)]
fn forget_page_aligned(q: usize) {
    if live::PAGE_ALIGNED_LIVE.load(Ordering::Relaxed) != 0 && live::remove(q) {
        live::PAGE_ALIGNED_LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `free` in Rust (the assembly version does the same).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
unsafe fn free_common(p: *mut c_void) {
    let q = p as usize;
    if !taggable(q) {
        if !p.is_null() {
            free_page_aligned(p);
        }
    } else if sampled_base(q).is_some() {
        free_tagged(p);
    } else {
        real::FREE.get()(p);
    }
}

unsafe extern "C" fn malloc_common(size: usize, ret: usize, fp: usize) -> *mut c_void {
    if charge(size) {
        alloc_sampled(Kind::Malloc, 16, size, ret, fp)
    } else {
        real::MALLOC.get()(size)
    }
}

unsafe extern "C" fn calloc_common(n: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        return real::CALLOC.get()(n, size); // the real calloc reports the overflow
    };
    if charge(total) {
        alloc_sampled(Kind::Calloc, 16, total, ret, fp)
    } else {
        real::CALLOC.get()(n, size)
    }
}

/// realloc of a sampled block, or one that becomes sampled: a new block, a copy, and the old block freed (so a
/// sampled block is never resized in place). realloc of anything else goes to the real realloc.
unsafe extern "C" fn realloc_common(old: *mut c_void, size: usize, ret: usize, fp: usize) -> *mut c_void {
    if old.is_null() {
        return malloc_common(size, ret, fp);
    }
    if real::in_arena(old) {
        // Move a bootstrap block into the real heap.
        let new = malloc_common(size, ret, fp);
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, real::arena_size(old).min(size));
        }
        return new;
    }
    let q = old as usize;
    if let Some(r) = sampled_base(q) {
        if size == 0 {
            // glibc: realloc(p, 0) frees p and returns NULL.
            free_tagged(old);
            return core::ptr::null_mut();
        }
        let new = malloc_common(size, ret, fp);
        if !new.is_null() {
            let usable = real::USABLE_SIZE.get()(r as *mut c_void).saturating_sub(q - r);
            core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, usable.min(size));
            free_tagged(old);
        }
        return new;
    }
    if !taggable(q) {
        forget_page_aligned(q);
    }
    if size == 0 || !charge(size) {
        return real::REALLOC.get()(old, size);
    }
    let new = alloc_sampled(Kind::Malloc, 16, size, ret, fp);
    if !new.is_null() {
        let usable = real::USABLE_SIZE.get()(old);
        core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, usable.min(size));
        real::FREE.get()(old);
    }
    new
}

unsafe extern "C" fn reallocarray_impl(old: *mut c_void, n: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => realloc_common(old, total, ret, fp),
        None => {
            *libc::__errno_location() = libc::ENOMEM;
            core::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn posix_memalign_impl(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
    ret: usize,
    fp: usize,
) -> i32 {
    if charge(size) && align.is_power_of_two() && align.is_multiple_of(core::mem::size_of::<usize>()) {
        let p = alloc_sampled(Kind::PosixMemalign, align.max(16), size, ret, fp);
        if p.is_null() {
            return libc::ENOMEM;
        }
        *out = p;
        return 0;
    }
    real::POSIX_MEMALIGN.get()(out, align, size)
}

unsafe extern "C" fn aligned_alloc_impl(align: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    if charge(size) && align.is_power_of_two() {
        alloc_sampled(Kind::AlignedAlloc, align.max(16), size, ret, fp)
    } else {
        real::ALIGNED_ALLOC.get()(align, size)
    }
}

unsafe extern "C" fn memalign_impl(align: usize, size: usize, ret: usize, fp: usize) -> *mut c_void {
    if charge(size) && align.is_power_of_two() {
        alloc_sampled(Kind::Memalign, align.max(16), size, ret, fp)
    } else {
        real::MEMALIGN.get()(align, size)
    }
}

unsafe extern "C" fn valloc_impl(size: usize, ret: usize, fp: usize) -> *mut c_void {
    if charge(size) {
        alloc_sampled(Kind::Valloc, PAGE, size, ret, fp)
    } else {
        real::VALLOC.get()(size)
    }
}

unsafe extern "C" fn pvalloc_impl(size: usize, ret: usize, fp: usize) -> *mut c_void {
    let rounded = size.saturating_add(PAGE - 1) & !(PAGE - 1);
    if charge(rounded) {
        // Recorded with its rounded size (what pvalloc really gives).
        let p = real::PVALLOC.get()(size);
        if !p.is_null() && record(p as usize, rounded, ret, fp) {
            live::PAGE_ALIGNED_LIVE.fetch_add(1, Ordering::Relaxed);
        }
        p
    } else {
        real::PVALLOC.get()(size)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Exported symbols, x86-64: the assembly fast paths and the TLS block they use.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl leakscope_tls_block",
    ".hidden leakscope_tls_block",
    ".type leakscope_tls_block,@object",
    ".size leakscope_tls_block,{size}",
    "leakscope_tls_block:",
    ".zero {size}",
    ".popsection",
    size = const crate::TLS_BLOCK,
    options(att_syntax)
);

/// Interposed `malloc`: countdown fast path, else [`malloc_common`].
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rax, qword ptr [rip + leakscope_tls_block@GOTTPOFF]",
        "lea rcx, [rdi + 1]",
        "mov rdx, qword ptr fs:[rax]",
        "sub rdx, rcx",
        "jb 2f",
        "mov qword ptr fs:[rax], rdx",
        "jmp qword ptr [rip + {real}]",
        "2:",
        "mov rsi, qword ptr [rsp]",
        "mov rdx, rbp",
        "jmp {slow}",
        real = sym real::MALLOC,
        slow = sym malloc_common,
    )
}

/// Interposed `calloc`: countdown fast path (on n·size; an overflowing product goes to the real calloc, which
/// fails it), else [`calloc_common`].
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    core::arch::naked_asm!(
        "mov rax, rdi",
        "mul rsi",
        "jc 3f",
        "mov rcx, qword ptr [rip + leakscope_tls_block@GOTTPOFF]",
        "add rax, 1",
        "mov rdx, qword ptr fs:[rcx]",
        "sub rdx, rax",
        "jb 2f",
        "mov qword ptr fs:[rcx], rdx",
        "3:",
        "jmp qword ptr [rip + {real}]",
        "2:",
        "mov rdx, qword ptr [rsp]",
        "mov rcx, rbp",
        "jmp {slow}",
        real = sym real::CALLOC,
        slow = sym calloc_common,
    )
}

/// Interposed `free`: the tag test, else straight to the real free. Sampled blocks go to [`free_tagged`],
/// pointers with page offset < 16 (null, page-aligned, and so every bootstrap block) to [`free_page_aligned`].
/// Preserves errno (the real free does).
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    core::arch::naked_asm!(
        "test edi, {offset_mask}",
        "jz 3f",
        "mov rax, qword ptr [rdi - 16]",
        "xor rax, rdi",
        "cmp rax, qword ptr [rip + {secret}]",
        "je 4f",
        "jmp qword ptr [rip + {real}]",
        "3:",
        "test rdi, rdi",
        "jz 5f",
        "jmp {page_aligned}",
        "4:",
        "jmp {tagged}",
        "5:",
        "ret",
        offset_mask = const PAGE - 16,
        secret = sym SECRET,
        real = sym real::FREE,
        page_aligned = sym free_page_aligned,
        tagged = sym free_tagged,
    )
}

/// Interposed `realloc`: for an ordinary block (not sampled, page offset ≥ 16: so neither null nor a bootstrap
/// block) whose new size does not exhaust the countdown, straight to the real realloc; else [`realloc_common`].
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    core::arch::naked_asm!(
        "test edi, {offset_mask}",
        "jz 2f",
        "mov rax, qword ptr [rdi - 16]",
        "xor rax, rdi",
        "cmp rax, qword ptr [rip + {secret}]",
        "je 2f",
        "mov rax, qword ptr [rip + leakscope_tls_block@GOTTPOFF]",
        "lea rcx, [rsi + 1]",
        "mov r8, qword ptr fs:[rax]",
        "sub r8, rcx",
        "jb 2f",
        "mov qword ptr fs:[rax], r8",
        "jmp qword ptr [rip + {real}]",
        "2:",
        "mov rdx, qword ptr [rsp]",
        "mov rcx, rbp",
        "jmp {slow}",
        offset_mask = const PAGE - 16,
        secret = sym SECRET,
        real = sym real::REALLOC,
        slow = sym realloc_common,
    )
}

// The less frequent allocating functions: naked trampolines that pass the return address and the caller's frame
// pointer (in the next free argument registers) to the Rust implementation and tail-jump to it.

#[cfg(target_arch = "x86_64")]
macro_rules! trampoline {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $r1:literal, $r2:literal) => {
        /// Interposed allocator entry point (see the module docs).
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(
                concat!("mov ", $r1, ", qword ptr [rsp]"),
                concat!("mov ", $r2, ", rbp"),
                "jmp {imp}",
                imp = sym $imp,
            )
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
macro_rules! trampoline {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $r1:literal, $r2:literal) => {
        /// Interposed allocator entry point (no stack capture on this architecture).
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $imp($($arg,)* 0, 0)
        }
    };
}

#[cfg(not(target_arch = "x86_64"))]
trampoline!(malloc, malloc_common, (size: usize) -> *mut c_void, "rsi", "rdx");
#[cfg(not(target_arch = "x86_64"))]
trampoline!(calloc, calloc_common, (n: usize, size: usize) -> *mut c_void, "rdx", "rcx");
#[cfg(not(target_arch = "x86_64"))]
trampoline!(realloc, realloc_common, (p: *mut c_void, size: usize) -> *mut c_void, "rdx", "rcx");

/// Interposed `free` (no assembly fast path on this architecture).
#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    free_common(p)
}

trampoline!(valloc, valloc_impl, (size: usize) -> *mut c_void, "rsi", "rdx");
trampoline!(pvalloc, pvalloc_impl, (size: usize) -> *mut c_void, "rsi", "rdx");
trampoline!(aligned_alloc, aligned_alloc_impl, (align: usize, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(memalign, memalign_impl, (align: usize, size: usize) -> *mut c_void, "rdx", "rcx");
trampoline!(reallocarray, reallocarray_impl, (p: *mut c_void, n: usize, size: usize) -> *mut c_void, "rcx", "r8");
trampoline!(posix_memalign, posix_memalign_impl, (out: *mut *mut c_void, align: usize, size: usize) -> i32, "rcx", "r8");

/// C23 `free_sized`: same as free.
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    free(p)
}

/// C23 `free_aligned_sized`: same as free.
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    free(p)
}

/// Old alias of free, still exported by glibc.
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    free(p)
}

/// Interposed `malloc_usable_size`, aware of bootstrap and sampled blocks (what follows a sampled block's tag).
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    if real::in_arena(p) {
        return real::arena_size(p);
    }
    let q = p as usize;
    match sampled_base(q) {
        Some(r) => real::USABLE_SIZE.get()(r as *mut c_void).saturating_sub(q - r),
        None => real::USABLE_SIZE.get()(p),
    }
}

/// Interposed `pthread_create`: the first thread the program creates also starts the profiler's control thread
/// (see `server.rs`: a single-threaded program is not made multi-threaded by the profiler), then forwards.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> i32 {
    crate::server::before_thread_create();
    real::PTHREAD_CREATE.get()(thread, attr, start, arg)
}
