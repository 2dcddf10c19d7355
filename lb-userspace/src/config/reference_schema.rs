//! `docs/lbd.schema.json`: a JSON Schema of `lbd.yaml` for editors
//! (yaml-language-server completes keys, shows each key's meaning and
//! flags typos and out-of-range values while typing).
//!
//! Rendered from the reference table (`reference.rs`) rather than derived
//! with schemars: the model's serde is custom in the places a schema cares
//! about (durations as seconds, ranges checked by `lenient`, lists whose
//! items may be one scalar, checks as one-key mappings), each of which
//! schemars would need told again by hand, while the table already states
//! every key's type, range and default and is tested against the model
//! (`every_key_of_the_model_is_documented_and_nothing_else`). `lbd check`
//! stays the authority; the schema is a typing aid.

use serde_json::{Map, Value, json};

use super::reference::{Key, SECTIONS};

/// Lists whose items may be written as one scalar (see `model::shorthand`),
/// with that scalar's schema.
const SHORTHAND: &[&str] = &[
    "vrrp_instances[].virtual_ipaddresses",
    "vrrp_instances[].virtual_ipaddresses_excluded",
    "vrrp_instances[].track_scripts",
    "vrrp_instances[].track_interfaces",
];

/// Where the checks (documented under `checks[]`) sit in the file.
const CHECKS: &str = "virtual_servers[].real_servers[].checks";

/// The schema as pretty JSON, as committed in `docs/lbd.schema.json`.
#[must_use]
pub fn schema_json() -> String {
    let text = serde_json::to_string_pretty(&schema()).expect("a JSON value always serializes");
    format!("{text}\n")
}

pub(super) fn schema() -> Value {
    let keys = SECTIONS.iter().flat_map(|(_, _, keys)| keys.iter());
    let mut file = Shape::default();
    let mut check = Shape::default();
    for key in keys {
        match key.path.strip_prefix("checks[].") {
            Some(rest) => check.insert(rest, key),
            None => file.insert(key.path, key),
        }
    }
    let mut check = object(&check, "checks[]");
    // `ssl_get` has `http_get`'s keys (the table documents them once).
    let http = check["properties"]["http_get"].clone();
    check["properties"]["ssl_get"] = http;
    check["minProperties"] = json!(1);
    check["maxProperties"] = json!(1);
    let mut root = object(&file, "");
    let root_map = root.as_object_mut().expect("an object schema");
    root_map.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    root_map.insert("title".into(), json!("lbd.yaml"));
    root_map.insert(
        "description".into(),
        json!(
            "Configuration of lbd, the XDP/IPVS load balancer with VRRP (see lbd.yaml(5) and \
             docs/config-reference.md). `lbd check -c FILE` is the authority."
        ),
    );
    root_map.insert(
        "definitions".into(),
        json!({
            "check": {
                "description": "A health check: a one-key mapping naming it, or just `tcp_check`.",
                "anyOf": [{ "type": "string", "enum": ["tcp_check"] }, check],
            }
        }),
    );
    root
}

/// Keys arranged as the file nests them.
#[derive(Default)]
struct Shape<'a> {
    key: Option<&'a Key>,
    props: Vec<(&'a str, Shape<'a>)>,
    items: Option<Box<Shape<'a>>>,
}

impl<'a> Shape<'a> {
    /// Files `key` under its path, e.g. `a[].b`: property `a`, its items, property `b`.
    fn insert(&mut self, path: &'a str, key: &'a Key) {
        let (head, rest) = path
            .split_once('.')
            .map_or((path, None), |(h, r)| (h, Some(r)));
        let (name, list) = head
            .strip_suffix("[]")
            .map_or((head, false), |name| (name, true));
        let index = self
            .props
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| {
                self.props.push((name, Shape::default()));
                self.props.len() - 1
            });
        let mut node = &mut self.props[index].1;
        if list {
            node = node.items.get_or_insert_with(Box::default);
        }
        match rest {
            Some(rest) => node.insert(rest, key),
            None => node.key = Some(key),
        }
    }
}

/// A mapping: its keys' schemas, the required ones, nothing else allowed.
fn object(shape: &Shape<'_>, path: &str) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, child) in &shape.props {
        let child_path = if path.is_empty() {
            (*name).to_owned()
        } else {
            format!("{path}.{name}")
        };
        let key = child
            .key
            .unwrap_or_else(|| panic!("reference table: `{child_path}` has keys but no entry"));
        if key.default.starts_with("required") {
            required.push(json!(name));
        }
        let mut schema = value(child, key, &child_path);
        schema["description"] = json!(description(key));
        properties.insert((*name).to_owned(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

/// One key's schema, from its type column (and its children).
fn value(shape: &Shape<'_>, key: &Key, path: &str) -> Value {
    match key.ty {
        "mapping" => object(shape, path),
        "list" => {
            let items = if path == CHECKS {
                json!({ "$ref": "#/definitions/check" })
            } else {
                let items = shape
                    .items
                    .as_deref()
                    .unwrap_or_else(|| panic!("reference table: list `{path}` has no item keys"));
                let full = object(items, &format!("{path}[]"));
                if SHORTHAND.contains(&path) {
                    json!({ "anyOf": [{ "type": "string" }, full] })
                } else {
                    full
                }
            };
            json!({ "type": "array", "items": items })
        }
        ty => leaf(ty).unwrap_or_else(|| panic!("reference table: `{path}`: unknown type `{ty}`")),
    }
}

/// The schema of a scalar type as the table writes it, or `None` if the
/// table uses a type this does not know (a test renders every key).
fn leaf(ty: &str) -> Option<Value> {
    let strings = [
        "string",
        "command",
        "path",
        "regular expression",
        "group name",
    ];
    Some(match ty {
        _ if strings.contains(&ty) => json!({ "type": "string" }),
        "address" | "address:port" | "`ADDR[/LEN]`" | "scheduler name" => {
            json!({ "type": "string" })
        }
        "hex string" => json!({ "type": "string", "pattern": "^[0-9a-fA-F]+$" }),
        "bool" => json!({ "type": "boolean" }),
        "seconds" => json!({ "type": "number", "minimum": 0 }),
        "seconds, above 0" => json!({ "type": "number", "exclusiveMinimum": 0 }),
        "pattern or list of patterns" => json!({
            "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
        }),
        "list of addresses" | "list of instance names" => {
            json!({ "type": "array", "items": { "type": "string" } })
        }
        _ => {
            if let Some(range) = ty.strip_prefix("seconds, ") {
                let (min, max) = range_of(range)?;
                return Some(json!({ "type": "number", "minimum": min, "maximum": max }));
            }
            if let Some((min, max)) = range_of(ty) {
                return Some(json!({ "type": "integer", "minimum": min, "maximum": max }));
            }
            return alternatives(ty);
        }
    })
}

/// `1-255` or `-253 to 253`.
fn range_of(ty: &str) -> Option<(i64, i64)> {
    let (min, max) = ty.split_once(" to ").or_else(|| ty.split_once('-'))?;
    Some((min.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// `` `a` \| `b` `` (names) or `2 \| 3` (numbers).
fn alternatives(ty: &str) -> Option<Value> {
    let parts: Vec<&str> = ty.split("\\|").map(str::trim).collect();
    if parts.len() < 2 {
        return None;
    }
    if let Ok(numbers) = parts
        .iter()
        .map(|p| p.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
    {
        return Some(json!({ "type": "integer", "enum": numbers }));
    }
    let names: Option<Vec<&str>> = parts
        .iter()
        .map(|p| p.strip_prefix('`')?.strip_suffix('`'))
        .collect();
    Some(json!({ "type": "string", "enum": names? }))
}

/// What an editor shows on hover: the meaning, the default, the
/// keepalived equivalent.
fn description(key: &Key) -> String {
    use std::fmt::Write as _;

    let mut text = key.meaning.replace("\\|", "|");
    // Writing to a String cannot fail.
    if key.default != "-" {
        let _ = write!(text, " Default: {}.", key.default.replace("\\|", "|"));
    }
    if key.equivalent != "-" {
        let _ = write!(
            text,
            " keepalived/ldirectord: {}.",
            key.equivalent.replace("\\|", "|")
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::{load_str, reference::tests::everything, to_yaml};

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
    }

    fn json(yaml: &str) -> Value {
        serde_saphyr::from_str::<Value>(yaml).expect("YAML that maps to JSON")
    }

    /// The schema's complaints about `yaml`, one line each. A file with
    /// nothing but comments is `null` to YAML, all defaults to lbd.
    fn complaints(yaml: &str) -> Vec<String> {
        let value = match json(yaml) {
            Value::Null => json!({}),
            value => value,
        };
        validator()
            .iter_errors(&value)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn every_example_and_good_config_passes_the_schema() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<PathBuf> = ["../examples", "tests/data/config/good"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).expect("read the folder"))
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 8, "too few samples: {files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            assert_eq!(
                complaints(&text),
                Vec::<String>::new(),
                "{}",
                file.display()
            );
        }
    }

    #[test]
    fn a_config_with_every_key_set_passes_the_schema() {
        let yaml = to_yaml(&everything());
        assert_eq!(complaints(&yaml), Vec::<String>::new(), "{yaml}");
    }

    #[test]
    fn the_schema_takes_short_items_where_lbd_does() {
        let yaml = "\
vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddresses: [10.0.0.100/24]
    virtual_ipaddresses_excluded: [fd00::100/64]
    track_scripts: [chk]
    track_interfaces: [eth1]
track_scripts:
  - name: chk
    script: /bin/true
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers:
      - address: 10.0.1.1
        checks: [tcp_check]
";
        load_str(yaml, "short.yaml").expect("lbd takes the short forms");
        assert_eq!(complaints(yaml), Vec::<String>::new());
        // Lists without a short form take mappings only, in lbd and the schema.
        let yaml = "interfaces: [eth0]\n";
        assert!(
            load_str(yaml, "short.yaml").is_err(),
            "lbd took a bare interface name"
        );
        assert_eq!(complaints(yaml).len(), 1, "{:?}", complaints(yaml));
    }

    #[test]
    fn the_schema_flags_typos_types_and_ranges() {
        for (yaml, at) in [
            ("globl: {}\n", ""),
            (
                "vrrp_instances:\n  - {name: a, interface: e, virtual_router_id: 300}\n",
                "/vrrp_instances/0/virtual_router_id",
            ),
            (
                "vrrp_instances:\n  - {name: a, interface: e}\n",
                "/vrrp_instances/0",
            ),
            ("dataplane: dpdk\n", "/dataplane"),
            ("global: {drain_timeout: -1}\n", "/global/drain_timeout"),
            (
                "virtual_servers:\n  - {address: a, port: 1, real_servers: [{address: b, checks: [{tcp_check: {}, misc_check: {misc_path: x}}]}]}\n",
                "/virtual_servers/0/real_servers/0/checks/0",
            ),
            (
                "virtual_servers:\n  - {address: a, port: 1, real_servers: [{address: b, checks: [{http_get: {urls: [{path: /, status_code: 99}]}}]}]}\n",
                "/virtual_servers/0/real_servers/0/checks/0",
            ),
        ] {
            let found = complaints(yaml);
            assert!(
                found.iter().any(|c| c.starts_with(&format!("{at}: "))),
                "the schema did not flag {at:?} in {yaml:?}: {found:?}"
            );
            assert!(load_str(yaml, "bad.yaml").is_err(), "lbd took {yaml:?}");
        }
    }

    fn schema_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/lbd.schema.json")
    }

    #[test]
    fn schema_file_is_up_to_date() {
        let rendered = schema_json();
        let path = schema_file();
        if std::env::var_os("LBD_BLESS").is_some() {
            std::fs::write(&path, &rendered).expect("write docs/lbd.schema.json");
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == rendered,
            "docs/lbd.schema.json is stale: run `LBD_BLESS=1 cargo test -p lb-userspace \
             --lib config::reference_schema` and commit the result"
        );
    }

    #[test]
    fn types_render_as_json_schema() {
        assert_eq!(
            leaf("1-255"),
            Some(json!({"type": "integer", "minimum": 1, "maximum": 255}))
        );
        assert_eq!(
            leaf("-253 to 253"),
            Some(json!({"type": "integer", "minimum": -253, "maximum": 253}))
        );
        assert_eq!(
            leaf("`nat` \\| `dr` \\| `tun`"),
            Some(json!({"type": "string", "enum": ["nat", "dr", "tun"]}))
        );
        assert_eq!(
            leaf("2 \\| 3"),
            Some(json!({"type": "integer", "enum": [2, 3]}))
        );
        assert_eq!(leaf("a colour"), None);
    }
}
