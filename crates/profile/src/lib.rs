//! `leakscope-profile`: V8 sampling heap profiles and the stack-profile writers around them.
//!
//! - [`HeapProfile`]: the `.heapprofile` model (`HeapProfiler.SamplingHeapProfile`), parsed from Node
//!   (`--heap-prof`), DevTools or leakscope files and written back byte for byte.
//! - [`ProfileAnalysis`]: estimated live bytes and objects per stack and per function (self and total), the
//!   sampling interval, and the expected error (see [`analysis`] for the maths).
//! - [`StackProfile`]: a profiler-neutral set of stacks with values, written as gzipped pprof
//!   ([`StackProfile::write_pprof_gz`]), folded stacks ([`StackProfile::write_folded`]) or a flame graph SVG
//!   ([`StackProfile::write_flamegraph`]). Other samplers (e.g. a native malloc sampler) can fill one too.
//!
//! No I/O of its own: everything reads from slices and writes to `std::io::Write`.

pub mod analysis;
mod error;
pub mod heapprofile;
pub mod pprof;
pub mod stacks;

pub use analysis::{
    relative_error, FunctionStats, IntervalSource, NodeStats, ProfileAnalysis, StackStats, DEFAULT_INTERVAL,
};
pub use error::{ProfileError, Result};
pub use heapprofile::{CallFrame, HeapProfile, ProfileNode, Sample};
pub use stacks::{Frame, Mapping, NumLabel, StackProfile, StackSample, ValueType};
