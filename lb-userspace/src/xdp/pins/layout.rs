//! The layout of the pinned maps: [`LAYOUT_VERSION`] and each map's type,
//! key and value sizes, entries and flags, read from the program's object.
//! Recorded beside the pins; a build whose layout differs must not adopt
//! them (the kernel would accept the old maps and the program would read
//! its structs from them wrongly), so it says what differs, drops them
//! and starts clean. Dropping, not migrating: the state that matters is
//! the conntrack table, and converting it between struct versions is
//! code that every layout change would have to carry.

use std::{collections::BTreeMap, fmt::Write as _};

use lb_common::maps::LAYOUT_VERSION;
use thiserror::Error;

use super::PINNED_MAPS;

/// One map's shape as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    map_type: u32,
    key: u32,
    value: u32,
    entries: u32,
    flags: u32,
}

/// The layout of the pinned maps of one build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    version: u32,
    maps: BTreeMap<String, Shape>,
}

#[derive(Debug, Error)]
#[error("reading the map definitions of the XDP object failed")]
pub struct LayoutError(#[source] Box<aya_obj::ParseError>);

/// What a starting lbd does with the maps it finds pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is pinned: create the maps and pin them.
    Fresh,
    /// Pinned by a build with this layout: reuse them and their state.
    Adopt,
    /// Pinned by a build with another layout (said in `changes`): unpin
    /// them, create new ones; their state (tracked flows) is lost.
    StartClean { changes: Vec<String> },
}

impl Layout {
    /// The layout of `object` (an XDP object file) and this build's
    /// [`LAYOUT_VERSION`].
    pub fn of_object(object: &[u8]) -> Result<Self, LayoutError> {
        let obj = aya_obj::Object::parse(object).map_err(|e| LayoutError(Box::new(e)))?;
        let maps = obj
            .maps
            .iter()
            .filter(|(name, _)| PINNED_MAPS.contains(&name.as_str()))
            .map(|(name, map)| {
                let shape = Shape {
                    map_type: map.map_type(),
                    key: map.key_size(),
                    value: map.value_size(),
                    entries: map.max_entries(),
                    flags: map.map_flags(),
                };
                (name.clone(), shape)
            })
            .collect();
        Ok(Self {
            version: LAYOUT_VERSION,
            maps,
        })
    }

    /// `v1;NAME:type:key:value:entries:flags;...`, one line, as recorded.
    pub fn record(&self) -> String {
        let mut out = format!("v{}", self.version);
        for (name, s) in &self.maps {
            let _ = write!(
                out,
                ";{name}:{}:{}:{}:{}:{}",
                s.map_type, s.key, s.value, s.entries, s.flags
            );
        }
        out
    }

    /// The layout a record says, or `None` if it is not one.
    pub fn parse(record: &str) -> Option<Self> {
        let mut parts = record.split(';');
        let version = parts.next()?.strip_prefix('v')?.parse().ok()?;
        let mut maps = BTreeMap::new();
        for part in parts {
            let (name, rest) = part.split_once(':')?;
            let n: Vec<u32> = rest
                .split(':')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let [map_type, key, value, entries, flags] = n[..] else {
                return None;
            };
            let shape = Shape {
                map_type,
                key,
                value,
                entries,
                flags,
            };
            maps.insert(name.to_owned(), shape);
        }
        Some(Self { version, maps })
    }

    /// What differs from `pinned` to `self`, one phrase per difference.
    fn changes_from(&self, pinned: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        if pinned.version != self.version {
            out.push(format!(
                "layout version {} -> {}",
                pinned.version, self.version
            ));
        }
        for (name, new) in &self.maps {
            let Some(old) = pinned.maps.get(name) else {
                out.push(format!("{name}: new map"));
                continue;
            };
            let fields = [
                ("type", old.map_type, new.map_type),
                ("key bytes", old.key, new.key),
                ("value bytes", old.value, new.value),
                ("entries", old.entries, new.entries),
                ("flags", old.flags, new.flags),
            ];
            for (what, a, b) in fields {
                if a != b {
                    out.push(format!("{name}: {what} {a} -> {b}"));
                }
            }
        }
        for name in pinned.maps.keys() {
            if !self.maps.contains_key(name) {
                out.push(format!("{name}: no longer used"));
            }
        }
        out
    }

    /// What to do with the maps pinned under `record` (the layout record
    /// found, if any), given whether any map is pinned at all.
    pub fn decide(&self, record: Option<&str>, maps_pinned: bool) -> Decision {
        match (record, maps_pinned) {
            (None, false) => Decision::Fresh,
            (None, true) => Decision::StartClean {
                changes: vec!["the pinned maps have no layout record".to_owned()],
            },
            (Some(record), _) => match Self::parse(record) {
                None => Decision::StartClean {
                    changes: vec![format!("unreadable layout record {record:?}")],
                },
                Some(pinned) => {
                    let changes = self.changes_from(&pinned);
                    if changes.is_empty() {
                        Decision::Adopt
                    } else {
                        Decision::StartClean { changes }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_build() -> Layout {
        Layout::of_object(crate::xdp::object_bytes()).unwrap()
    }

    #[test]
    fn the_object_has_every_pinned_map() {
        let layout = this_build();
        for name in PINNED_MAPS {
            assert!(layout.maps.contains_key(*name), "{name} missing");
        }
        let ct = layout.maps["CONNTRACK"];
        assert_eq!((ct.key, ct.value), (40, 72));
    }

    #[test]
    fn a_record_reads_back_as_the_same_layout() {
        let layout = this_build();
        assert_eq!(Layout::parse(&layout.record()), Some(layout));
        assert!(
            this_build().record().len() < 4000,
            "a symlink target holds it"
        );
    }

    #[test]
    fn the_same_layout_is_adopted() {
        let layout = this_build();
        assert_eq!(layout.decide(Some(&layout.record()), true), Decision::Adopt);
    }

    #[test]
    fn nothing_pinned_starts_fresh() {
        assert_eq!(this_build().decide(None, false), Decision::Fresh);
    }

    #[test]
    fn a_changed_value_size_starts_clean_naming_the_map() {
        let layout = this_build();
        let mut old = layout.clone();
        old.maps.get_mut("CONNTRACK").unwrap().value = 64;
        let Decision::StartClean { changes } = layout.decide(Some(&old.record()), true) else {
            panic!("a different conntrack value size was adopted");
        };
        assert_eq!(changes, ["CONNTRACK: value bytes 64 -> 72"]);
    }

    #[test]
    fn a_changed_version_starts_clean() {
        let layout = this_build();
        let mut old = layout.clone();
        old.version = LAYOUT_VERSION + 1;
        let decision = layout.decide(Some(&old.record()), true);
        assert_eq!(
            decision,
            Decision::StartClean {
                changes: vec![format!(
                    "layout version {} -> {LAYOUT_VERSION}",
                    LAYOUT_VERSION + 1
                )]
            }
        );
    }

    #[test]
    fn added_and_removed_maps_start_clean() {
        let layout = this_build();
        let mut old = layout.clone();
        let shape = old.maps.remove("REVERSE").unwrap();
        old.maps.insert("OLD_MAP".to_owned(), shape);
        let Decision::StartClean { changes } = layout.decide(Some(&old.record()), true) else {
            panic!("adopted maps of another set");
        };
        assert_eq!(changes, ["REVERSE: new map", "OLD_MAP: no longer used"]);
    }

    #[test]
    fn maps_without_a_readable_record_start_clean() {
        let layout = this_build();
        assert!(matches!(
            layout.decide(None, true),
            Decision::StartClean { .. }
        ));
        assert!(matches!(
            layout.decide(Some("garbage"), true),
            Decision::StartClean { .. }
        ));
    }
}
