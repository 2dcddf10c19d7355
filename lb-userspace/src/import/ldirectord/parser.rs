//! Reads ldirectord.cf: `key=value` lines at the left margin are global
//! settings; `virtual=ADDR:PORT` (`virtual6=` for IPv6) opens a section whose
//! body is the indented `key=value` lines below it, up to the next line at
//! the left margin.

use std::{fs, path::Path};

use crate::import::Location;

use super::error::LdParseError;

/// One `key=value`, unquoted, with trailing comment removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub at: Location,
}

/// A `virtual=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtual {
    /// The `virtual=` value: `ADDR:PORT`, `[V6]:PORT` or a firewall mark.
    pub address: String,
    pub at: Location,
    pub settings: Vec<Setting>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LdConfig {
    pub globals: Vec<Setting>,
    pub virtuals: Vec<Virtual>,
}

pub fn parse_file(path: &Path) -> Result<LdConfig, LdParseError> {
    let bytes = fs::read(path).map_err(|source| LdParseError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&String::from_utf8_lossy(&bytes), path)
}

/// `path` only names the file in locations.
pub fn parse_str(text: &str, path: &Path) -> Result<LdConfig, LdParseError> {
    let mut config = LdConfig::default();
    for (index, raw) in text.lines().enumerate() {
        let at = Location::new(path, index + 1);
        let body = strip_comment(raw);
        if body.trim().is_empty() {
            continue;
        }
        let indented = body.starts_with(char::is_whitespace);
        let setting = split_setting(body.trim(), &at)?;
        if indented {
            let Some(section) = config.virtuals.last_mut() else {
                return Err(LdParseError::OutsideVirtual { at });
            };
            section.settings.push(setting);
        } else if setting.key == "virtual" || setting.key == "virtual6" {
            config.virtuals.push(Virtual {
                address: setting.value,
                at: setting.at,
                settings: Vec::new(),
            });
        } else {
            // A global line also ends the current section, as in ldirectord.
            config.globals.push(setting);
        }
    }
    Ok(config)
}

/// `#` starts a comment at the start of a line or after whitespace, outside
/// quotes (`receive="a#b"` keeps its `#`).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut previous_blank = true;
    for (index, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && previous_blank => return &line[..index],
            _ => {}
        }
        previous_blank = c.is_whitespace();
    }
    line
}

fn split_setting(line: &str, at: &Location) -> Result<Setting, LdParseError> {
    let Some((key, value)) = line.split_once('=') else {
        return Err(LdParseError::NotASetting {
            text: line.to_owned(),
            at: at.clone(),
        });
    };
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(LdParseError::NotASetting {
            text: line.to_owned(),
            at: at.clone(),
        });
    }
    Ok(Setting {
        key: key.to_ascii_lowercase(),
        value: unquote(value.trim()),
        at: at.clone(),
    })
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LdConfig, LdParseError> {
        parse_str(text, Path::new("ld.cf"))
    }

    fn pairs(settings: &[Setting]) -> Vec<(&str, &str)> {
        settings
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str()))
            .collect()
    }

    #[test]
    fn globals_then_indented_sections() {
        let cf = parse(
            "# comment\nchecktimeout=3\n\nvirtual=10.0.0.1:80\n\treal=10.0.1.1:80 masq\n    \
             request=\"index.html\"\nquiescent = no\nvirtual = 10.0.0.2:53\n  protocol=udp\n",
        )
        .expect("ldirectord.cf should parse");
        assert_eq!(
            pairs(&cf.globals),
            vec![("checktimeout", "3"), ("quiescent", "no")]
        );
        assert_eq!(cf.virtuals.len(), 2);
        assert_eq!(cf.virtuals[0].address, "10.0.0.1:80");
        assert_eq!(
            pairs(&cf.virtuals[0].settings),
            vec![("real", "10.0.1.1:80 masq"), ("request", "index.html")]
        );
        assert_eq!(cf.virtuals[1].address, "10.0.0.2:53");
        assert_eq!(cf.virtuals[1].at.line, 8);
    }

    #[test]
    fn comments_outside_quotes_only() {
        let cf = parse("virtual=1.2.3.4:80 # the web\n  receive=\"a # b\" # why\n  #real=x\n")
            .expect("ldirectord.cf should parse");
        assert_eq!(cf.virtuals[0].address, "1.2.3.4:80");
        assert_eq!(pairs(&cf.virtuals[0].settings), vec![("receive", "a # b")]);
    }

    #[test]
    fn indented_line_before_any_virtual_is_an_error() {
        let err = parse("  real=1.2.3.4:80 gate\n").expect_err("should not parse");
        assert_eq!(
            err.to_string(),
            "ld.cf:1: indented setting outside a `virtual=` section"
        );
    }

    #[test]
    fn line_without_equals_is_an_error() {
        let err = parse("checktimeout 3\n").expect_err("should not parse");
        assert_eq!(
            err.to_string(),
            "ld.cf:1: expected `key=value`, found `checktimeout 3`"
        );
    }
}
