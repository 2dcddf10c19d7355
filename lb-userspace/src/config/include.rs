//! `include:`: further files merged into the configuration, so a role can
//! drop one file per service into `conf.d/` as keepalived users do with
//! its `include`.
//!
//! Rules: patterns are globs, relative to the including file's folder;
//! files are read in the order the patterns are written, each pattern's
//! matches in name order, a file matched twice once. An included file
//! holds only lists (`interfaces`, `vrrp_instances`, `sync_groups`,
//! `track_scripts`, `virtual_servers`); its items are appended after the
//! main file's, in file order, so list positions in the merged
//! configuration and in the merged position tree stay the same. Every
//! diagnostic names the file its line and column are in.

use std::{
    collections::HashSet,
    fmt, fs,
    path::{Path, PathBuf},
};

use serde::{Deserializer, de};

use super::{
    Config, Diagnostic, Severity,
    spans::{Kind, Node, Pos},
};

/// The sections an included file may hold: lists, which merge by appending.
const LIST_SECTIONS: &[&str] = &[
    "interfaces",
    "vrrp_instances",
    "sync_groups",
    "track_scripts",
    "virtual_servers",
];

/// One file of a configuration: the main file, or one it includes.
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
}

/// The main file followed by the files its `include:` patterns name (read
/// from disk); problems finding or reading them are diagnostics at the
/// pattern.
pub(crate) fn gather(main: Source, tree: Option<&Node>) -> (Vec<Source>, Vec<Diagnostic>) {
    let base = Path::new(&main.name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut seen: HashSet<PathBuf> = HashSet::from([PathBuf::from(&main.name)]);
    let at = |pos: Pos, message: String| Diagnostic {
        file: main.name.clone(),
        line: pos.line,
        column: pos.column,
        severity: Severity::Error,
        message,
    };
    let mut included = Vec::new();
    let mut problems = Vec::new();
    for (pos, pattern) in tree.map(patterns).unwrap_or_default() {
        let full = base.join(&pattern);
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths,
            Err(e) => {
                problems.push(at(pos, format!("include `{pattern}`: bad pattern: {e}")));
                continue;
            }
        };
        let mut matched = false;
        for path in paths {
            matched = true;
            let read = path.map_err(|e| e.to_string()).and_then(|path| {
                if !seen.insert(path.clone()) {
                    return Ok(None);
                }
                fs::read_to_string(&path)
                    .map(|text| {
                        Some(Source {
                            name: path.display().to_string(),
                            text,
                        })
                    })
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            });
            match read {
                Ok(source) => included.extend(source),
                Err(e) => problems.push(at(pos, format!("include `{pattern}`: {e}"))),
            }
        }
        // A folder left empty is normal (a role removed every service);
        // a plain file name that matches nothing is a mistake.
        if !matched && !pattern.contains(['*', '?', '[']) {
            problems.push(at(
                pos,
                format!("include `{pattern}`: {} does not exist", full.display()),
            ));
        }
    }
    let mut sources = vec![main];
    sources.extend(included);
    (sources, problems)
}

/// The `include:` patterns and where each is written.
fn patterns(tree: &Node) -> Vec<(Pos, String)> {
    let Some(entry) = tree.entry("include") else {
        return Vec::new();
    };
    match &entry.value.kind {
        Kind::Scalar(s) => vec![(entry.value.pos, s.clone())],
        Kind::Seq(items) => items
            .iter()
            .filter_map(|item| match &item.kind {
                Kind::Scalar(s) => Some((item.pos, s.clone())),
                _ => None,
            })
            .collect(),
        Kind::Map(_) => Vec::new(),
    }
}

/// Errors for the keys an included file may not set (serde has already
/// checked the rest: an included file is read as a `Config`).
pub(crate) fn main_only_keys(tree: &Node, file: &str) -> Vec<Diagnostic> {
    let Kind::Map(entries) = &tree.kind else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| !LIST_SECTIONS.contains(&e.key.as_str()))
        .map(|e| Diagnostic {
            file: file.to_owned(),
            line: e.key_pos.line,
            column: e.key_pos.column,
            severity: Severity::Error,
            message: format!(
                "`{}` may only be set in the main configuration file; an included file holds {}",
                e.key,
                LIST_SECTIONS.join(", ")
            ),
        })
        .collect()
}

/// Appends an included file's lists to the main configuration's.
pub(crate) fn merge(main: &mut Config, included: Config) {
    main.interfaces.extend(included.interfaces);
    main.vrrp_instances.extend(included.vrrp_instances);
    main.sync_groups.extend(included.sync_groups);
    main.track_scripts.extend(included.track_scripts);
    main.virtual_servers.extend(included.virtual_servers);
}

/// The same merge on the position trees, so a path into the merged
/// configuration finds its file, line and column.
pub(crate) fn merge_tree(main: &mut Node, included: Node) {
    let (Kind::Map(entries), Kind::Map(more)) = (&mut main.kind, included.kind) else {
        return;
    };
    for entry in more {
        if !LIST_SECTIONS.contains(&entry.key.as_str()) {
            continue;
        }
        match entries.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => {
                if let (Kind::Seq(items), Kind::Seq(new)) =
                    (&mut existing.value.kind, entry.value.kind)
                {
                    items.extend(new);
                }
            }
            None => entries.push(entry),
        }
    }
}

/// `include: PATTERN` or `include: [PATTERN, ...]`.
pub(crate) fn one_or_more<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Visit;
    impl<'de> de::Visitor<'de> for Visit {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a file pattern or a list of them")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visit)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{ConfigError, Diagnostic, load_file};

    /// A folder of config files, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str, files: &[(&str, &str)]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("lbd-include-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, text) in files {
                let path = dir.join(path);
                std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
                std::fs::write(path, text).expect("write");
            }
            Self(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn errors(dir: &Dir) -> Vec<Diagnostic> {
        match load_file(&dir.0.join("lbd.yaml")) {
            Err(ConfigError::Invalid { diagnostics }) => diagnostics
                .into_iter()
                .filter(Diagnostic::is_error)
                .collect(),
            other => panic!("expected diagnostics, got {other:?}"),
        }
    }

    fn service(name: &str, port: u16) -> String {
        format!("virtual_servers:\n  - name: {name}\n    address: 10.0.0.1\n    port: {port}\n")
    }

    #[test]
    fn included_lists_follow_the_main_files_in_name_order() {
        let dir = Dir::new(
            "order",
            &[
                (
                    "lbd.yaml",
                    &format!("include: conf.d/*.yaml\n{}", service("main", 80)),
                ),
                ("conf.d/20-mail.yaml", &service("mail", 25)),
                ("conf.d/10-web.yaml", &service("web", 443)),
                ("conf.d/notes.txt", "not yaml: [\n"),
            ],
        );
        let loaded = load_file(&dir.0.join("lbd.yaml")).expect("loads");
        let names: Vec<_> = loaded
            .config
            .virtual_servers
            .iter()
            .map(|vs| vs.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(names, ["main", "web", "mail"]);
    }

    #[test]
    fn a_name_used_in_two_files_names_both_places() {
        let instance =
            "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: ";
        let dir = Dir::new(
            "dup",
            &[
                (
                    "lbd.yaml",
                    &format!("include: [conf.d/a.yaml]\n{instance}51\n"),
                ),
                (
                    "conf.d/a.yaml",
                    &format!("# the same name again\n{instance}52\n"),
                ),
            ],
        );
        let errors = errors(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!(
            (e.file.as_str(), e.line, e.column),
            (dir.path("conf.d/a.yaml").as_str(), 3, 11),
            "{e}"
        );
        let first = format!("({}:3)", dir.path("lbd.yaml"));
        assert!(
            e.message.contains(&first),
            "the first place is not named: {e}"
        );
    }

    #[test]
    fn an_error_in_an_included_file_points_into_it() {
        let dir = Dir::new(
            "range",
            &[
                (
                    "lbd.yaml",
                    &format!("include: conf.d/*.yaml\n{}", service("main", 80)),
                ),
                (
                    "conf.d/web.yaml",
                    &service("web", 0).replace("port: 0", "port: 70000"),
                ),
            ],
        );
        let errors = errors(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!(
            (e.file.as_str(), e.line, e.column),
            (dir.path("conf.d/web.yaml").as_str(), 4, 11),
            "{e}"
        );
        assert!(e.message.contains("70000 is out of range"), "{e}");
    }

    #[test]
    fn an_included_file_cannot_set_global_settings_or_include_more() {
        let dir = Dir::new(
            "global",
            &[
                ("lbd.yaml", "include: conf.d/*.yaml\n"),
                (
                    "conf.d/x.yaml",
                    "global:\n  autoreload: true\ninclude: more/*.yaml\n",
                ),
            ],
        );
        let places: Vec<_> = errors(&dir).iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(places, [(1, 1), (3, 1)]);
        assert!(errors(&dir).iter().all(|e| {
            e.file == dir.path("conf.d/x.yaml")
                && e.message
                    .contains("only be set in the main configuration file")
        }));
    }

    #[test]
    fn a_missing_named_file_is_an_error_an_empty_folder_is_not() {
        let dir = Dir::new(
            "missing",
            &[("lbd.yaml", "include:\n  - conf.d/*.yaml\n  - web.yaml\n")],
        );
        let errors = errors(&dir);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column), (3, 5));
        assert!(
            errors[0].message.contains("web.yaml does not exist"),
            "{}",
            errors[0]
        );
    }
}
