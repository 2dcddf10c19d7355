//! Turns serde-saphyr's error (syntax, wrong type, unknown key) into one
//! message that names the key it is about and says what to write instead.

use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};

use super::spans::{Node, Pos};

/// The position and message for a deserialization error.
pub(crate) fn describe(err: &Error, tree: Option<&Node>) -> (Pos, String) {
    let mut err = err.without_snippet();
    // An error met through an alias: report the original, where it was used.
    if let Error::AliasError { error, .. } = err {
        err = error.without_snippet();
    }
    let mut pos = err.location().map(Pos::from).unwrap_or_default();
    let value_path = tree.and_then(|t| t.value_at(pos).or_else(|| t.key_at(pos)));
    let at = |message: String| match &value_path {
        Some(path) if !path.segments().is_empty() => format!("{path}: {message}"),
        _ => message,
    };
    let message = match err {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            // The error points at the key; name the mapping that holds it.
            let holder = tree.and_then(|t| t.key_at(pos)).map(|mut path| {
                path.pop();
                path
            });
            let place = match holder {
                Some(path) if !path.segments().is_empty() => format!(" in {path}"),
                _ => String::new(),
            };
            format!("unknown key `{field}`{place}; {}", suggest(field, expected))
        }
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            // Few enough to list them all, with the likely one first.
            let list = format!("expected one of: {}", expected.join(", "));
            at(match closest(variant, expected) {
                Some(name) => format!("unknown value `{variant}`; did you mean `{name}`? ({list})"),
                None => format!("unknown value `{variant}`; {list}"),
            })
        }
        Error::SerdeMissingField { field, .. } => {
            // Reported where the mapping ends (its last key); point at the
            // mapping itself, which is where the key belongs.
            let holder = tree.and_then(|t| {
                let path = t
                    .key_at(pos)
                    .map(|mut path| {
                        path.pop();
                        path
                    })
                    .or_else(|| t.value_at(pos))?;
                pos = t.pos_of(&path);
                Some(path)
            });
            match holder {
                Some(path) if !path.segments().is_empty() => {
                    format!("{path}: missing required key `{field}`")
                }
                _ => format!("missing required key `{field}`"),
            }
        }
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => at(format!("expected {expected}, found {unexpected}")),
        Error::InvalidScalar { ty, .. } => {
            let found = tree
                .and_then(|t| t.scalar_at(pos))
                .map(|text| format!(", found `{text}`"))
                .unwrap_or_default();
            at(format!("expected {}{found}", scalar_kind(ty)))
        }
        Error::Unexpected { expected, .. } => at(format!("expected {}", structure(expected))),
        Error::NullIntoString { .. } => at("empty value; write a string here".to_owned()),
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key `{key}`; keep only one of them")
        }
        Error::Message { msg, .. } => at(msg.clone()),
        other => UserMessageFormatter.format_message(other).into_owned(),
    };
    (pos, message)
}

/// "did you mean `priority`?" when one valid name is close, else the list.
fn suggest(given: &str, expected: &[&str]) -> String {
    if expected.is_empty() {
        return "this mapping takes no keys".to_owned();
    }
    match closest(given, expected) {
        Some(name) => format!("did you mean `{name}`?"),
        None => format!("expected one of: {}", expected.join(", ")),
    }
}

/// The valid name the user most likely meant: one starting with the same
/// word (`http_check` -> `http_get`), else one a typo or two away.
fn closest<'a>(given: &str, expected: &[&'a str]) -> Option<&'a str> {
    let word = |s: &str| s.split('_').next().unwrap_or_default().to_owned();
    let given_word = word(given);
    let same_word: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| word(name) == given_word)
        .collect();
    if let [only] = same_word.as_slice() {
        return Some(only);
    }
    expected
        .iter()
        .map(|name| (edit_distance(given, name), *name))
        .min()
        .filter(|(distance, _)| *distance <= 2.max(given.len() / 4))
        .map(|(_, name)| name)
}

/// Levenshtein distance, for typo suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// serde-saphyr names the Rust type it wanted; say it the YAML way.
fn scalar_kind(ty: &str) -> String {
    match ty {
        "bool" => "true or false".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".to_owned(),
        other => other.to_owned(),
    }
}

fn structure(expected: &str) -> String {
    match expected {
        "mapping start" => "a mapping (`key: value` lines)".to_owned(),
        "sequence start" => "a list (`- item` lines or `[a, b]`)".to_owned(),
        "string scalar" => "a single value, not a list or mapping".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name() {
        assert_eq!(
            suggest("priorty", &["name", "priority"]),
            "did you mean `priority`?"
        );
        assert_eq!(suggest("xyz", &["rr", "wrr"]), "expected one of: rr, wrr");
        assert_eq!(
            closest("http_check", &["tcp_check", "http_get"]),
            Some("http_get")
        );
        assert_eq!(
            closest("virtual_router", &["virtual_router_id", "virtualhost"]),
            Some("virtual_router_id")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
