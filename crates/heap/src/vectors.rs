//! Loops the compiler vectorizes, compiled for wider vectors where the CPU has them. The crate is built for the
//! baseline x86-64 (SSE2: no per-lane shifts, no unsigned 32-bit minimum or maximum); a function declared with
//! [`avx2_twin!`] is compiled a second time for AVX2, and that copy runs when the CPU has it.

/// Declares a function whose body is compiled twice, for the baseline and for AVX2, and picks the copy at run
/// time. Everything the body calls must be `#[inline(always)]` to get the wider vectors too.
macro_rules! avx2_twin {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn portable($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    portable($($arg),*)
                }
                // SAFETY: the CPU has AVX2.
                return unsafe { avx2($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use avx2_twin;
