//! Errors of the profile library: every one says what was wrong with the input or the output.

/// Something that could not be read, computed or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The text is not JSON, or not the shape of a `SamplingHeapProfile`.
    #[error("not a V8 sampling heap profile: {0}")]
    Format(String),
    /// The node tree nests deeper than we are willing to recurse into.
    #[error("the profile's call tree is nested {depth} levels deep (limit {limit}): refusing to read it")]
    TooDeep { depth: usize, limit: usize },
    /// Two nodes share an id, or a sample names a node that does not exist.
    #[error("inconsistent profile: {0}")]
    Inconsistent(String),
    /// A writer failed (disk full, closed pipe...).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The flame graph renderer refused the input.
    #[error("flame graph: {0}")]
    Flamegraph(String),
}

pub type Result<T, E = ProfileError> = std::result::Result<T, E>;
