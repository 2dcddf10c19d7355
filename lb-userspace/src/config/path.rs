//! `KeyPath`: where a value sits in the config, e.g.
//! `vrrp_instances[VI_1].virtual_router_id`.

use std::fmt;

/// A path from the top of the config to a key or list item. List items
/// show their name (or address) when they have one, else their index;
/// the index is always kept so the path can be looked up in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Segment>);

/// One step of a `KeyPath`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Item { index: usize, label: Option<String> },
}

impl KeyPath {
    /// The top of the config.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path extended by a list item shown by its index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Item { index, label: None });
        path
    }

    /// This path extended by a list item shown by `label` (its name).
    #[must_use]
    pub fn item(&self, index: usize, label: impl fmt::Display) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Item {
            index,
            label: Some(label.to_string()),
        });
        path
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last mapping key, e.g. `virtual_router_id`.
    pub fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Item { .. } => None,
        })
    }

    pub(crate) fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Item {
                    label: Some(label), ..
                } => write!(f, "[{label}]")?,
                Segment::Item { index, label: None } => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_names_and_indices() {
        let path = KeyPath::root()
            .key("virtual_servers")
            .item(0, "10.0.0.1:80")
            .key("real_servers")
            .index(1)
            .key("weight");
        assert_eq!(
            path.to_string(),
            "virtual_servers[10.0.0.1:80].real_servers[1].weight"
        );
        assert_eq!(path.last_key(), Some("weight"));
        assert_eq!(KeyPath::root().to_string(), "(top level)");
    }
}
