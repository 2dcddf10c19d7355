//! Importers: keepalived.conf and ldirectord.cf to lbd's configuration model.
//!
//! Reading is strict (a file keepalived itself would reject is an error with
//! its file and line); converting is lenient: a directive with no lbd
//! equivalent, or a value lbd cannot use, becomes a [`Skipped`] entry that
//! the YAML output carries as a `# not imported:` comment; a directive that
//! was imported but means something different in lbd (a default or method
//! lbd changed) is listed under `changed`, as `# imported with a change:`.
//! Every directive read is either in the YAML or in one of the two lists.

pub mod keepalived;
pub mod ldirectord;
mod location;
mod skipped;
mod values;

use std::path::Path;

pub use location::Location;
pub use skipped::{CHANGED, NOT_IMPORTED, Skipped};

use crate::config::{self, Config};

/// A converted configuration and what could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub config: Config,
    /// Directives left out of `config`.
    pub skipped: Vec<Skipped>,
    /// Directives carried into `config` with a change (the reason says
    /// what lbd does instead).
    pub changed: Vec<Skipped>,
}

impl Imported {
    /// The YAML for `lbd.yaml`, preceded by one `# not imported:` comment
    /// line per skipped directive and one `# imported with a change:` line
    /// per changed one, so a reviewer sees them first.
    pub fn to_yaml_with_comments(&self) -> String {
        let mut out = skipped::comment_block(skipped::NOT_IMPORTED, &self.skipped);
        out.push_str(&skipped::comment_block(skipped::CHANGED, &self.changed));
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&config::to_yaml(&self.config));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Keepalived(#[from] keepalived::ParseError),
    #[error(transparent)]
    Ldirectord(#[from] ldirectord::LdParseError),
}

/// Reads a keepalived.conf (following `include`) and converts it.
pub fn import_keepalived(path: &Path) -> Result<Imported, ImportError> {
    let parsed = keepalived::parse_file(path)?;
    Ok(keepalived::convert(&parsed))
}

/// Reads an ldirectord.cf and converts it.
pub fn import_ldirectord(path: &Path) -> Result<Imported, ImportError> {
    let parsed = ldirectord::parse_file(path)?;
    Ok(ldirectord::convert(&parsed))
}
