//! `lbd.yaml(5)`: the key reference as a man page, rendered from the same
//! table as `docs/config-reference.md` (`reference.rs`), so the two cannot
//! disagree.

use roff::{Inline, Roff, bold, roman};

use super::reference::{Key, RULES, SECTIONS};

/// The whole `lbd.yaml(5)` page as roff source; `version` goes in the footer.
#[must_use]
pub fn man_page(version: &str) -> String {
    let mut page = Roff::new();
    let source = format!("lbd {version}");
    // No date: the page is the same whenever it is built. An empty argument
    // must be quoted or the later ones shift left.
    page.control(
        "TH",
        ["LBD.YAML", "5", "\"\"", &source, "File Formats Manual"],
    )
    .control("SH", ["NAME"])
    .text([roman("lbd.yaml - configuration of the lbd load balancer")])
    .control("SH", ["SYNOPSIS"])
    .text([bold("/etc/lbd/lbd.yaml")])
    .control("SH", ["DESCRIPTION"])
    .text(inline(
        "`lbd run` reads its configuration from a YAML file; `lbd check -c FILE` \
             validates one and lists every problem with its file, line and column. \
             Below is every key, with its type, default, meaning and the keepalived \
             (or ldirectord) directive it corresponds to. Annotated examples are in \
             `/usr/share/doc/lbd/examples/`.",
    ))
    .control("SS", ["General rules"]);
    for rule in RULES {
        page.control("IP", ["-", "2"]).text(inline(rule));
    }
    page.control("SH", ["KEYS"]);
    for (heading, note, keys) in SECTIONS {
        page.control("SS", [plain(heading).as_str()]);
        if !note.is_empty() {
            page.control("PP", []).text(inline(note));
        }
        for key in *keys {
            entry(&mut page, key);
        }
    }
    page.control("SH", ["FILES"])
        .control("TP", [])
        .text([bold("/etc/lbd/lbd.yaml")])
        .text([roman(
            "The configuration systemd's lbd.service runs with (a conffile of the package).",
        )])
        .control("SH", ["SEE ALSO"])
        .text([
            bold("lbd"),
            roman("(8), "),
            bold("keepalived.conf"),
            roman("(5), "),
            bold("ipvsadm"),
            roman("(8)"),
        ]);
    page.render()
}

/// One key: its path as the tag, then type, default, equivalent and meaning.
fn entry(page: &mut Roff, key: &Key) {
    page.control("TP", []).text([bold(key.path)]);
    // `-` (none) is left out, as in the schema's descriptions.
    let mut facts = format!("Type: {}.", key.ty);
    if key.default != "-" {
        facts = format!("{facts} Default: {}.", key.default);
    }
    if key.equivalent != "-" {
        facts = format!("{facts} keepalived/ldirectord: {}.", key.equivalent);
    }
    let mut facts = inline(&facts);
    facts.push(roff::line_break());
    facts.extend(inline(key.meaning));
    page.text(facts);
}

/// Markdown-flavoured table text as roff inlines: `code` in bold, the
/// table's `\|` as `|`, line breaks as spaces.
fn inline(markdown: &str) -> Vec<Inline> {
    let text = markdown.replace("\\|", "|");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(
            |(i, part)| {
                if i % 2 == 1 { bold(part) } else { roman(part) }
            },
        )
        .collect()
}

/// A heading without Markdown marks (`.SS` takes one plain argument).
fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_key_is_in_the_man_page() {
        let page = man_page("0.0.0");
        let missing: Vec<&str> = SECTIONS
            .iter()
            .flat_map(|(_, _, keys)| keys.iter().map(|k| k.path))
            // roff escapes `-` as `\-`; paths have none, so they appear verbatim.
            .filter(|path| !page.contains(&format!("\\fB{path}\\fR")))
            .collect();
        assert!(missing.is_empty(), "lbd.yaml(5) lacks keys: {missing:?}");
    }

    #[test]
    fn markdown_marks_do_not_leak_into_the_man_page() {
        let page = man_page("0.0.0");
        assert!(page.contains(".TH LBD.YAML 5 \"\" \"lbd 0.0.0\""), "{page}");
        assert!(!page.contains('`'), "a backtick reached the man page");
        assert!(!page.contains("\\|"), "a table escape reached the man page");
    }
}
