//! What can go wrong reading a keepalived.conf, each with the place it went wrong.

use std::{io, path::PathBuf};

use crate::import::Location;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{at}: unterminated quoted string")]
    UnterminatedQuote { at: Location },
    #[error("{at}: block `{name}` is never closed with `}}`")]
    UnterminatedBlock { name: String, at: Location },
    #[error("{at}: `}}` without an open block")]
    UnexpectedClose { at: Location },
    #[error("{at}: `{{` does not follow a directive")]
    OrphanOpen { at: Location },
    #[error("{at}: `include` needs exactly one file name or glob")]
    IncludeArgs { at: Location },
    #[error("{at}: bad include glob `{pattern}`")]
    IncludeGlob {
        pattern: String,
        at: Location,
        #[source]
        source: glob::PatternError,
    },
    #[error("{at}: include loop: {} is already being read", path.display())]
    IncludeLoop { path: PathBuf, at: Location },
    #[error("{at}: includes nested deeper than {limit} files")]
    IncludeTooDeep { limit: usize, at: Location },
}
