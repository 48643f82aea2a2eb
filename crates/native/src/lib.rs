//! Reads dumps written by `libleakscope_preload.so` (leakscope's sampling malloc interposer), symbolizes them
//! offline (ELF symbols, DWARF, V8 perf maps), aggregates live memory by stack with its expected error, diffs two
//! dumps, and turns a dump into a [`leakscope_profile::StackProfile`] ([`export`]) for pprof, folded stacks and
//! flamegraph SVG.
//!
//! The dump format is documented in `docs/native.md` and in [`dump`].

pub mod dump;
pub mod export;
pub mod report;
pub mod symbolize;

pub use dump::{Dump, DumpError};
pub use export::stack_profile;
pub use report::{diff, series_verdicts, Diff, DiffRow, Estimate, Profile, SeriesRow, StackRow, Verdict};
pub use symbolize::{Frame, FrameKind, Symbolizer};
