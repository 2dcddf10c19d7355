//! Reads a keepalived.conf and the files it includes into one stream of
//! tokenized lines. keepalived splices an `include` in place, at any depth of
//! any block, so includes are resolved here, below the block structure.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::import::Location;

use super::{
    error::ParseError,
    lexer::{Token, tokenize},
};

/// No real configuration nests this deep; the limit bounds a chain of
/// distinct files (a true loop is caught earlier, by path).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One non-empty line after comment stripping.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) tokens: Vec<Token>,
    pub(crate) at: Location,
}

/// An `include` whose glob matched nothing. keepalived only logs this, so the
/// importer reports it instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedInclude {
    pub pattern: String,
    pub at: Location,
}

#[derive(Debug, Default)]
pub(crate) struct Source {
    pub(crate) lines: Vec<Line>,
    /// Every file read, in the order reading started.
    pub(crate) files: Vec<PathBuf>,
    pub(crate) unmatched_includes: Vec<UnmatchedInclude>,
}

pub(crate) fn read(path: &Path) -> Result<Source, ParseError> {
    let mut reader = Reader::default();
    reader.read_file(path, None)?;
    Ok(reader.source)
}

#[derive(Default)]
struct Reader {
    source: Source,
    /// Canonical paths of the files being read, outermost first.
    open: Vec<PathBuf>,
}

impl Reader {
    /// `included_at` is the `include` line that led here (None for the top file).
    fn read_file(&mut self, path: &Path, included_at: Option<&Location>) -> Result<(), ParseError> {
        let read_error = |source| ParseError::Read {
            path: path.to_owned(),
            source,
        };
        let canonical = fs::canonicalize(path).map_err(read_error)?;
        if let Some(at) = included_at {
            if self.open.contains(&canonical) {
                return Err(ParseError::IncludeLoop {
                    path: path.to_owned(),
                    at: at.clone(),
                });
            }
            if self.open.len() >= MAX_INCLUDE_DEPTH {
                return Err(ParseError::IncludeTooDeep {
                    limit: MAX_INCLUDE_DEPTH,
                    at: at.clone(),
                });
            }
        }
        let bytes = fs::read(path).map_err(read_error)?;
        // Comments in real files are not always UTF-8; the directives are ASCII.
        let text = String::from_utf8_lossy(&bytes);
        self.open.push(canonical);
        if !self.source.files.iter().any(|f| f == path) {
            self.source.files.push(path.to_owned());
        }
        for (index, raw) in text.lines().enumerate() {
            let at = Location::new(path, index + 1);
            let tokens = tokenize(raw, &at)?;
            match tokens.first() {
                None => {}
                Some(Token::Word(word)) if word == "include" => self.include(path, &tokens, &at)?,
                Some(_) => self.source.lines.push(Line { tokens, at }),
            }
        }
        self.open.pop();
        Ok(())
    }

    fn include(&mut self, from: &Path, tokens: &[Token], at: &Location) -> Result<(), ParseError> {
        let [_, Token::Word(pattern)] = tokens else {
            return Err(ParseError::IncludeArgs { at: at.clone() });
        };
        let full = resolve(from, pattern);
        let paths = glob::glob(&full).map_err(|source| ParseError::IncludeGlob {
            pattern: pattern.clone(),
            at: at.clone(),
            source,
        })?;
        let mut matched = false;
        for entry in paths {
            let path = entry.map_err(|e| ParseError::Read {
                path: e.path().to_owned(),
                source: e.into(),
            })?;
            // A directory matched by `conf.d/*` holds no directives itself.
            if path.is_dir() {
                continue;
            }
            matched = true;
            self.read_file(&path, Some(at))?;
        }
        if !matched {
            self.source.unmatched_includes.push(UnmatchedInclude {
                pattern: pattern.clone(),
                at: at.clone(),
            });
        }
        Ok(())
    }
}

/// keepalived resolves a relative include against the including file's
/// directory, not the working directory. That directory is escaped so that a
/// `[` in it is not taken for a glob.
fn resolve(from: &Path, pattern: &str) -> String {
    if Path::new(pattern).is_absolute() {
        return pattern.to_owned();
    }
    let dir = from.parent().unwrap_or_else(|| Path::new(""));
    if dir.as_os_str().is_empty() {
        return pattern.to_owned();
    }
    let dir = glob::Pattern::escape(&dir.to_string_lossy());
    format!("{}/{pattern}", dir.trim_end_matches('/'))
}
