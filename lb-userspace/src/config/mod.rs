//! The YAML configuration: the model, loading with precise diagnostics,
//! writing YAML back, and what `lbd run` does not implement yet.
//!
//! Loading reads the file twice: once into the typed [`Config`] (serde does
//! the schema: types, unknown keys, enums), once into an untyped tree that
//! keeps every position, so the semantic checks and serde's own errors can
//! name the key, line and column they are about.

mod diagnostic;
mod ip_prefix;
mod lenient;
mod model;
mod path;
#[cfg(test)]
mod reference;
mod spans;
mod unsupported;
mod validate;
mod yaml_error;

use std::{collections::HashSet, fs, path::Path};

pub use diagnostic::{ConfigError, Diagnostic, Severity};
pub use ip_prefix::{IpPrefix, IpPrefixError};
pub use model::*;
pub use path::{KeyPath, Segment};
pub use unsupported::UnsupportedKey;
pub(crate) use validate::AH_REFUSED;

use spans::{Node, Pos};

/// A config that loaded without errors, and the warnings it raised.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// The file name diagnostics use.
    origin: String,
    /// Positions, for diagnostics found after loading (`unsupported`).
    tree: Option<Node>,
}

impl Loaded {
    fn pos(&self, path: &KeyPath) -> Pos {
        self.tree
            .as_ref()
            .map(|t| t.pos_of(path))
            .unwrap_or_default()
    }

    /// An error about the key at `path`, found after loading, with the
    /// place the loader's own diagnostics would give.
    pub fn error_at(&self, path: &KeyPath, message: String) -> Diagnostic {
        let pos = self.pos(path);
        Diagnostic {
            file: self.origin.clone(),
            line: pos.line,
            column: pos.column,
            severity: Severity::Error,
            message,
        }
    }
}

/// Reads, parses and validates a config file.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in diagnostics.
/// On failure the error lists every problem found (and the warnings).
pub fn load_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
    let tree = Node::parse(text);
    let options = serde_saphyr::options! { with_snippet: false };
    let (parsed, deferred) =
        lenient::collect(|| serde_saphyr::from_str_with_options::<Config>(text, options));

    let diagnostic = |pos: Pos, severity, message| Diagnostic {
        file: origin.to_owned(),
        line: pos.line,
        column: pos.column,
        severity,
        message,
    };
    // Values out of range were recorded while serde went on reading.
    let mut diagnostics: Vec<Diagnostic> = deferred
        .iter()
        .map(|d| {
            let key = tree
                .as_ref()
                .and_then(|t| t.value_at(d.pos))
                .and_then(|path| path.last_key().map(str::to_owned));
            diagnostic(d.pos, Severity::Error, d.problem.message(key.as_deref()))
        })
        .collect();

    let config = match parsed {
        Ok(config) => Some(config),
        Err(err) => {
            let (pos, message) = yaml_error::describe(&err, tree.as_ref());
            diagnostics.push(diagnostic(pos, Severity::Error, message));
            None
        }
    };
    if let Some(config) = &config {
        let poisoned: HashSet<Pos> = deferred.iter().map(|d| d.pos).collect();
        diagnostics.extend(validate::Checker::new(origin, tree.as_ref(), &poisoned).run(config));
    }
    // File order reads best; the sort is stable, so one place's problems
    // keep the order the checks found them in.
    diagnostics.sort_by_key(|d| (d.line, d.column));

    match config {
        Some(config) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(Loaded {
            config,
            warnings: diagnostics,
            origin: origin.to_owned(),
            tree,
        }),
        _ => Err(ConfigError::Invalid { diagnostics }),
    }
}

/// The config as YAML that `load_str` reads back to an equal `Config`.
/// Keys left at their defaults are left out.
pub fn to_yaml(config: &Config) -> String {
    // Plain structs, enums and strings into a String: the serializer has
    // nothing that can fail on them (no non-string map keys, no I/O).
    serde_saphyr::to_string(config).expect("a Config always serializes to YAML")
}
