//! What can go wrong reading an ldirectord.cf.

use std::{io, path::PathBuf};

use crate::import::Location;

#[derive(Debug, thiserror::Error)]
pub enum LdParseError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{at}: expected `key=value`, found `{text}`")]
    NotASetting { text: String, at: Location },
    #[error("{at}: indented setting outside a `virtual=` section")]
    OutsideVirtual { at: Location },
}
