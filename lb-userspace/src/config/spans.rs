//! A second, untyped reading of the file that keeps where every key and
//! value is, so a problem found in the typed model can point at its line
//! and column, and a serde error can name the key it is about.

use std::fmt;

use serde::{Deserialize, Deserializer, de};
use serde_saphyr::Spanned;

use super::path::{KeyPath, Segment};

/// A 1-based line and column, in file number `file` of the configuration
/// (0: the main file; then the files it includes, in order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl From<serde_saphyr::Location> for Pos {
    fn from(loc: serde_saphyr::Location) -> Self {
        Self {
            file: 0,
            line: usize::try_from(loc.line()).unwrap_or(usize::MAX),
            column: usize::try_from(loc.column()).unwrap_or(usize::MAX),
        }
    }
}

/// A YAML node and where it starts.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
}

impl Node {
    /// Reads `text`; `None` when it is not YAML this reader understands
    /// (the typed reading then reports why).
    pub(crate) fn parse(text: &str) -> Option<Node> {
        serde_saphyr::from_str::<Node>(text).ok()
    }

    /// Marks every position as being in file number `file`.
    pub(crate) fn set_file(&mut self, file: usize) {
        self.pos.file = file;
        match &mut self.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => items.iter_mut().for_each(|item| item.set_file(file)),
            Kind::Map(entries) => {
                for entry in entries {
                    entry.key_pos.file = file;
                    entry.value.set_file(file);
                }
            }
        }
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// How a list item is shown in a path: its `name`, else
    /// `address[:port]`, else nothing (the index is shown).
    fn label(&self) -> Option<String> {
        let field = |k| self.entry(k).and_then(|e| e.value.scalar());
        if let Some(name) = field("name") {
            return Some(name.to_owned());
        }
        let address = field("address")?;
        Some(match field("port") {
            Some(port) if address.contains(':') => format!("[{address}]:{port}"),
            Some(port) => format!("{address}:{port}"),
            None => address.to_owned(),
        })
    }

    /// Where `path` is: the value's position, or, for a key the file leaves
    /// out (a default), the position of the nearest enclosing value.
    pub(crate) fn pos_of(&self, path: &KeyPath) -> Pos {
        let mut node = self;
        for segment in path.segments() {
            let next = match (segment, &node.kind) {
                (Segment::Key(k), _) => node.entry(k).map(|e| &e.value),
                (Segment::Item { index, .. }, Kind::Seq(items)) => items.get(*index),
                (Segment::Item { .. }, _) => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    /// The key whose name starts at `pos` (serde reports unknown keys there).
    pub(crate) fn key_at(&self, pos: Pos) -> Option<KeyPath> {
        let mut path = KeyPath::root();
        self.walk(&mut path, &mut |path, _, key_pos| {
            (key_pos == Some(pos)).then(|| path.clone())
        })
    }

    /// The innermost value that starts at `pos` (serde reports bad values
    /// and missing keys there).
    pub(crate) fn value_at(&self, pos: Pos) -> Option<KeyPath> {
        let mut path = KeyPath::root();
        let mut found = None;
        // Deepest wins: a mapping and its first value can share a position.
        self.walk::<()>(&mut path, &mut |path, node, _| {
            if node.pos == pos {
                found = Some(path.clone());
            }
            None
        });
        found
    }

    /// The text of the scalar value that starts at `pos`.
    pub(crate) fn scalar_at(&self, pos: Pos) -> Option<&str> {
        if let Kind::Scalar(text) = &self.kind {
            return (self.pos == pos).then_some(text.as_str());
        }
        self.children().find_map(|child| child.scalar_at(pos))
    }

    fn children(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        match &self.kind {
            Kind::Scalar(_) => Box::new(std::iter::empty()),
            Kind::Seq(items) => Box::new(items.iter()),
            Kind::Map(entries) => Box::new(entries.iter().map(|e| &e.value)),
        }
    }

    /// Visits every node with its path and the position of the key that
    /// holds it (if a mapping value); stops at the first `Some`.
    fn walk<T>(
        &self,
        path: &mut KeyPath,
        visit: &mut impl FnMut(&KeyPath, &Node, Option<Pos>) -> Option<T>,
    ) -> Option<T> {
        match &self.kind {
            Kind::Scalar(_) => None,
            Kind::Seq(items) => items.iter().enumerate().find_map(|(index, item)| {
                path.push(Segment::Item {
                    index,
                    label: item.label(),
                });
                let found = visit(path, item, None).or_else(|| item.walk(path, visit));
                path.pop();
                found
            }),
            Kind::Map(entries) => entries.iter().find_map(|e| {
                path.push(Segment::Key(e.key.clone()));
                let found =
                    visit(path, &e.value, Some(e.key_pos)).or_else(|| e.value.walk(path, visit));
                path.pop();
                found
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        Ok(Node {
            pos: spanned.referenced.into(),
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> de::Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Scalar(String::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Scalar(String::new()))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        Kind::deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.value,
                key_pos: key.referenced.into(),
                value,
            });
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
vrrp_instances:
  - name: VI_1
    virtual_router_id: 300
virtual_servers:
  - address: 10.0.0.1
    port: 80
    real_servers:
      - address: 10.0.1.1
        weight: 70000
";

    #[test]
    fn finds_values_and_keys_by_position() {
        let tree = Node::parse(TEXT).expect("valid YAML");
        let path = tree
            .value_at(Pos {
                file: 0,
                line: 3,
                column: 24,
            })
            .expect("the VRID value");
        assert_eq!(path.to_string(), "vrrp_instances[VI_1].virtual_router_id");
        let path = tree
            .key_at(Pos {
                file: 0,
                line: 9,
                column: 9,
            })
            .expect("the weight key");
        assert_eq!(
            path.to_string(),
            "virtual_servers[10.0.0.1:80].real_servers[10.0.1.1].weight"
        );
        // A list item mapping starts where its first key does; the item wins.
        let item = tree
            .value_at(Pos {
                file: 0,
                line: 2,
                column: 5,
            })
            .expect("the item");
        assert_eq!(item.to_string(), "vrrp_instances[VI_1]");
    }

    #[test]
    fn positions_fall_back_to_the_enclosing_value() {
        let tree = Node::parse(TEXT).expect("valid YAML");
        let instance = KeyPath::root().key("vrrp_instances").index(0);
        assert_eq!(
            tree.pos_of(&instance.key("virtual_router_id")),
            Pos {
                file: 0,
                line: 3,
                column: 24
            }
        );
        assert_eq!(
            tree.pos_of(&instance.key("priority")),
            Pos {
                file: 0,
                line: 2,
                column: 5
            }
        );
    }
}
