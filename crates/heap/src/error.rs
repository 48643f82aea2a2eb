//! Errors of the snapshot parser: every one says what was wrong and where (byte offset, section, array index).

use std::fmt;

/// Where in the input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Byte offset into the (decompressed) snapshot text.
    pub offset: u64,
    /// The top-level section being read (`nodes`, `edges`, `strings`, ...).
    pub section: Option<&'static str>,
    /// The position inside that section's array, when it is an array.
    pub index: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}", self.offset)?;
        match (self.section, self.index) {
            (Some(section), Some(index)) => write!(f, " (in `{section}`, array index {index})"),
            (Some(section), None) => write!(f, " (in `{section}`)"),
            _ => Ok(()),
        }
    }
}

/// A snapshot that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{location}: {message}")]
    Syntax { location: Location, message: String },
    #[error("the file ends early, at {location}: {message} (truncated file?)")]
    Truncated { location: Location, message: String },
    #[error("not a V8 heap snapshot: {0}")]
    NotASnapshot(String),
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
    #[error("snapshot is larger than leakscope supports: {0}")]
    TooLarge(String),
    #[error("read error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

impl ParseError {
    /// The byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ParseError::Syntax { location, .. } | ParseError::Truncated { location, .. } => Some(location.offset),
            ParseError::Io { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}
