//! Directives the importers could not carry over, and how they are shown to
//! the user: as `# not imported:` comments above the YAML.

use std::fmt;

use super::Location;

/// One source directive with no lbd equivalent (or a value lbd cannot use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The directive as written, e.g. `notification_email` or `lvs_method DR`.
    pub directive: String,
    pub at: Location,
    /// Why, in a few words the user can act on.
    pub reason: String,
}

impl Skipped {
    pub(crate) fn new(
        directive: impl Into<String>,
        at: &Location,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            directive: directive.into(),
            at: at.clone(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.directive, self.at, self.reason)
    }
}

/// What the comment and the command's stderr call each list.
pub const NOT_IMPORTED: &str = "not imported";
pub const CHANGED: &str = "imported with a change";

/// `# not imported: ...` (or `# imported with a change: ...`) lines, one
/// per directive. Newlines in a value would end the comment and corrupt
/// the YAML, so they become spaces.
pub(crate) fn comment_block(label: &str, skipped: &[Skipped]) -> String {
    let mut out = String::new();
    for item in skipped {
        let line = item.to_string().replace(['\n', '\r'], " ");
        out.push_str("# ");
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&line);
        out.push('\n');
    }
    out
}
