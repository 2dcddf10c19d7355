//! The YAML configuration: the model, loading with precise diagnostics,
//! writing YAML back, and what `lbd run` does not implement yet.
//!
//! Loading reads the file twice: once into the typed [`Config`] (serde does
//! the schema: types, unknown keys, enums), once into an untyped tree that
//! keeps every position, so the semantic checks and serde's own errors can
//! name the key, line and column they are about.

mod diagnostic;
mod include;
mod ip_prefix;
mod lenient;
mod model;
mod path;
mod reference;
mod reference_man;
mod reference_schema;
mod spans;
mod unsupported;
mod validate;
mod yaml_error;

use std::{collections::HashSet, fs, path::Path};

pub use diagnostic::{ConfigError, Diagnostic, Severity};
pub use ip_prefix::{IpPrefix, IpPrefixError};
pub use model::*;
pub use path::{KeyPath, Segment};
pub use reference_man::man_page as reference_man_page;
pub use reference_schema::schema_json as reference_json_schema;
pub use unsupported::UnsupportedKey;
pub(crate) use validate::AH_REFUSED;

use spans::{Node, Pos};

/// A config that loaded without errors, and the warnings it raised.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// The file names diagnostics use: the main file, then those it includes.
    files: Vec<String>,
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

    /// The name of the file a position is in.
    fn file(&self, pos: Pos) -> &str {
        &self.files[pos.file]
    }

    /// An error about the key at `path`, found after loading, with the
    /// place (file, line, column) the loader's own diagnostics would give.
    pub fn error_at(&self, path: &KeyPath, message: String) -> Diagnostic {
        self.diagnostic_at(path, Severity::Error, message)
    }

    /// A warning about the key at `path`, found after loading.
    pub fn warning_at(&self, path: &KeyPath, message: String) -> Diagnostic {
        self.diagnostic_at(path, Severity::Warning, message)
    }

    fn diagnostic_at(&self, path: &KeyPath, severity: Severity, message: String) -> Diagnostic {
        let pos = self.pos(path);
        Diagnostic {
            file: self.file(pos).to_owned(),
            line: pos.line,
            column: pos.column,
            severity,
            message,
        }
    }
}

/// Reads, parses and validates a config file and the files it includes.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in diagnostics and
/// is where its `include:` patterns are relative to (read from disk).
/// On failure the error lists every problem found (and the warnings).
pub fn load_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
    let main = include::Source {
        name: origin.to_owned(),
        text: text.to_owned(),
    };
    let (sources, problems) = include::gather(main, Node::parse(text).as_ref());
    load_sources(&sources, problems)
}

/// Loads the main file (`sources[0]`) and the files it includes, merged.
fn load_sources(
    sources: &[include::Source],
    mut diagnostics: Vec<Diagnostic>,
) -> Result<Loaded, ConfigError> {
    let files: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let mut merged: Option<Config> = None;
    let mut merged_tree: Option<Node> = None;
    let mut poisoned = HashSet::new();
    let mut complete = true;
    for (i, source) in sources.iter().enumerate() {
        let (config, tree) = load_one(source, i, &mut diagnostics, &mut poisoned);
        match (i, config) {
            (0, Some(config)) => merged = Some(config),
            (_, Some(config)) => {
                if let Some(main) = &mut merged {
                    include::merge(main, config);
                }
            }
            (_, None) => complete = false,
        }
        match (&mut merged_tree, tree) {
            (None, Some(tree)) if i == 0 => merged_tree = Some(tree),
            (Some(main), Some(tree)) => include::merge_tree(main, tree),
            _ => {}
        }
    }
    let config = merged.filter(|_| complete);
    if let Some(config) = &config {
        diagnostics
            .extend(validate::Checker::new(&files, merged_tree.as_ref(), &poisoned).run(config));
    }
    // File order reads best; the sort is stable, so one place's problems
    // keep the order the checks found them in.
    let index = |name: &str| files.iter().position(|f| f == name).unwrap_or(0);
    diagnostics.sort_by_key(|d| (index(&d.file), d.line, d.column));

    match config {
        Some(config) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(Loaded {
            config,
            warnings: diagnostics,
            files,
            tree: merged_tree,
        }),
        _ => Err(ConfigError::Invalid { diagnostics }),
    }
}

/// Reads one file into a `Config` (`None` if serde could not) and its
/// position tree marked as file number `file`; its problems go to
/// `diagnostics`, the places of values already reported to `poisoned`.
fn load_one(
    source: &include::Source,
    file: usize,
    diagnostics: &mut Vec<Diagnostic>,
    poisoned: &mut HashSet<Pos>,
) -> (Option<Config>, Option<Node>) {
    let text = &source.text;
    let mut tree = Node::parse(text);
    let options = serde_saphyr::options! { with_snippet: false };
    let (parsed, deferred) =
        lenient::collect(|| serde_saphyr::from_str_with_options::<Config>(text, options));

    let diagnostic = |pos: Pos, message| Diagnostic {
        file: source.name.clone(),
        line: pos.line,
        column: pos.column,
        severity: Severity::Error,
        message,
    };
    // Values out of range were recorded while serde went on reading.
    for d in &deferred {
        let key = tree
            .as_ref()
            .and_then(|t| t.value_at(d.pos))
            .and_then(|path| path.last_key().map(str::to_owned));
        diagnostics.push(diagnostic(d.pos, d.problem.message(key.as_deref())));
        poisoned.insert(Pos { file, ..d.pos });
    }
    let config = match parsed {
        Ok(config) => Some(config),
        Err(err) => {
            let (pos, message) = yaml_error::describe(&err, tree.as_ref());
            diagnostics.push(diagnostic(pos, message));
            None
        }
    };
    if let Some(tree) = &mut tree {
        if file > 0 {
            diagnostics.extend(include::main_only_keys(tree, &source.name));
        }
        tree.set_file(file);
    }
    (config, tree)
}

/// The config as YAML that `load_str` reads back to an equal `Config`.
/// Keys left at their defaults are left out.
pub fn to_yaml(config: &Config) -> String {
    // Plain structs, enums and strings into a String: the serializer has
    // nothing that can fail on them (no non-string map keys, no I/O).
    serde_saphyr::to_string(config).expect("a Config always serializes to YAML")
}
