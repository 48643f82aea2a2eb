//! leakscope-heap: read V8 `.heapsnapshot` files of any size into a compact graph, and compute the numbers
//! Chrome DevTools shows (shallow and retained sizes, dominators, distances, class names, Summary, Statistics).
//!
//! The library does no I/O of its own: hand [`parse`] any `Read` (a file, a gzip decoder, a byte slice).

pub mod analysis;
mod error;
pub mod inspect;
pub mod origin;
mod pages;
mod parse;
pub mod scripts;
mod sizes;
mod snapshot;
mod strings;
mod threads;
pub mod units;
mod vectors;

pub use analysis::{release, Analysis, AnalysisOptions};
pub use error::{Location, ParseError};
#[doc(hidden)]
pub use parse::check_number_scanners;
pub use parse::{parse, parse_bytes, parse_in_place, parse_in_place_giving_back};
pub use sizes::CompactSizes;
pub use snapshot::{
    AllocationTrace, EdgeIndex, EdgeType, HeapSnapshot, NodeIndex, NodeType, SnapshotInfo, SourceLocation,
    TraceFunction, TraceNode,
};
pub use strings::StringTable;
