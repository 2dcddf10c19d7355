//! Where a directive came from, for error messages and "not imported" comments.

use std::{fmt, path::PathBuf};

/// A line in a source file (1-based), as the user would look it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The path as it was opened: the command-line argument, or an include
    /// glob's match (which is joined onto the including file's directory).
    pub file: PathBuf,
    pub line: usize,
}

impl Location {
    pub(crate) fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Self {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}
