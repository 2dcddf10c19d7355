//! Builds the directive tree from tokenized lines. keepalived is
//! line-oriented: a directive is a line's words, and a block opens with `{`
//! at the end of that line or alone at the start of the next one. `}` closes
//! the innermost block wherever it appears, and words after it on the same
//! line start a new directive.

use std::path::{Path, PathBuf};

use crate::import::Location;

use super::{
    error::ParseError,
    lexer::Token,
    source::{self, Line, UnmatchedInclude},
};

/// One directive: `name args...`, with `children` if it opened a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub children: Vec<Directive>,
    /// Whether it had a `{ ... }` block (which may be empty).
    pub block: bool,
    pub at: Location,
}

impl Directive {
    fn new(name: String, at: Location) -> Self {
        Self {
            name,
            args: Vec::new(),
            children: Vec::new(),
            block: false,
            at,
        }
    }
}

/// A whole configuration: its top-level directives with includes spliced in.
#[derive(Debug, Default)]
pub struct Parsed {
    pub directives: Vec<Directive>,
    pub unmatched_includes: Vec<UnmatchedInclude>,
    /// Every file read (the top one first, then includes as reached), as
    /// named in locations.
    pub files: Vec<PathBuf>,
}

/// Reads `path` and everything it includes.
pub fn parse_file(path: &Path) -> Result<Parsed, ParseError> {
    let source = source::read(path)?;
    Ok(Parsed {
        directives: parse_lines(source.lines)?,
        unmatched_includes: source.unmatched_includes,
        files: source.files,
    })
}

pub(crate) fn parse_lines(lines: Vec<Line>) -> Result<Vec<Directive>, ParseError> {
    let mut tree = Tree::default();
    for line in lines {
        tree.line(line)?;
    }
    tree.finish()
}

#[derive(Default)]
struct Tree {
    /// Finished directives of the top level.
    top: Vec<Directive>,
    /// Open blocks, outermost first; each collects its children.
    open: Vec<Directive>,
    /// The last finished directive ended its line without a block, so a `{`
    /// starting the next line belongs to it.
    may_open_next_line: bool,
}

impl Tree {
    fn line(&mut self, line: Line) -> Result<(), ParseError> {
        let mut current: Option<Directive> = None;
        for (index, token) in line.tokens.into_iter().enumerate() {
            match token {
                Token::Word(word) => match current.as_mut() {
                    Some(directive) => directive.args.push(word),
                    None => current = Some(Directive::new(word, line.at.clone())),
                },
                Token::Open => {
                    let directive = match current.take() {
                        Some(directive) => directive,
                        None if index == 0 && self.may_open_next_line => self
                            .siblings()
                            .pop()
                            .expect("may_open_next_line is only set after pushing a directive"),
                        None => {
                            return Err(ParseError::OrphanOpen {
                                at: line.at.clone(),
                            });
                        }
                    };
                    self.open.push(Directive {
                        block: true,
                        ..directive
                    });
                    self.may_open_next_line = false;
                }
                Token::Close => {
                    if let Some(directive) = current.take() {
                        self.siblings().push(directive);
                    }
                    let closed = self.open.pop().ok_or_else(|| ParseError::UnexpectedClose {
                        at: line.at.clone(),
                    })?;
                    self.siblings().push(closed);
                    self.may_open_next_line = false;
                }
            }
        }
        if let Some(directive) = current {
            self.siblings().push(directive);
            self.may_open_next_line = true;
        }
        Ok(())
    }

    /// The list the next finished directive goes into.
    fn siblings(&mut self) -> &mut Vec<Directive> {
        match self.open.last_mut() {
            Some(parent) => &mut parent.children,
            None => &mut self.top,
        }
    }

    fn finish(mut self) -> Result<Vec<Directive>, ParseError> {
        // Report the innermost unclosed block: that is where the `}` is missing.
        if let Some(unclosed) = self.open.pop() {
            return Err(ParseError::UnterminatedBlock {
                name: unclosed.name,
                at: unclosed.at,
            });
        }
        Ok(self.top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::keepalived::lexer::tokenize;

    fn parse(text: &str) -> Result<Vec<Directive>, ParseError> {
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let at = Location::new("k.conf", index + 1);
            let tokens = tokenize(raw, &at)?;
            if !tokens.is_empty() {
                lines.push(Line { tokens, at });
            }
        }
        parse_lines(lines)
    }

    fn ok(text: &str) -> Vec<Directive> {
        parse(text).expect("configuration should parse")
    }

    /// `name args` of each directive, children indented, for compact asserts.
    fn outline(directives: &[Directive]) -> String {
        fn walk(out: &mut String, directives: &[Directive], depth: usize) {
            for d in directives {
                out.push_str(&"  ".repeat(depth));
                out.push_str(&d.name);
                for arg in &d.args {
                    out.push(' ');
                    out.push_str(arg);
                }
                out.push_str(if d.block { " {}\n" } else { "\n" });
                walk(out, &d.children, depth + 1);
            }
        }
        let mut out = String::new();
        walk(&mut out, directives, 0);
        out
    }

    #[test]
    fn nested_blocks_keep_their_structure_and_lines() {
        let tree = ok(
            "vrrp_instance VI_1 {\n  authentication {\n    auth_type PASS\n  }\n  \
                       priority 100\n}\nglobal_defs {\n}\n",
        );
        assert_eq!(
            outline(&tree),
            "vrrp_instance VI_1 {}\n  authentication {}\n    auth_type PASS\n  priority 100\n\
             global_defs {}\n"
        );
        assert_eq!(tree[0].children[1].at, Location::new("k.conf", 5));
        assert_eq!(tree[1].at.line, 7);
    }

    #[test]
    fn comments_with_hash_and_bang_are_ignored() {
        let tree = ok("! Configuration File for keepalived\nglobal_defs {\n   \
                       #notification_email {\n   #  a@b\n   #}\n   router_id X # inline\n}\n");
        assert_eq!(outline(&tree), "global_defs {}\n  router_id X\n");
    }

    #[test]
    fn open_brace_on_the_next_line() {
        let tree = ok(
            "vrrp_instance VI_1\n{\n    state MASTER\n    virtual_ipaddress\n    \
                       {\n        10.0.0.1\n    }\n}\n",
        );
        assert_eq!(
            outline(&tree),
            "vrrp_instance VI_1 {}\n  state MASTER\n  virtual_ipaddress {}\n    10.0.0.1\n"
        );
    }

    #[test]
    fn close_brace_glued_to_a_word_and_one_line_blocks() {
        let tree = ok(
            "virtual_ipaddress { 10.0.0.1/24 dev eth0}\nunicast_peer {10.0.0.2\n\
                       10.0.0.3}\nstate BACKUP\n",
        );
        assert_eq!(
            outline(&tree),
            "virtual_ipaddress {}\n  10.0.0.1/24 dev eth0\nunicast_peer {}\n  10.0.0.2\n  \
             10.0.0.3\nstate BACKUP\n"
        );
    }

    #[test]
    fn words_after_a_close_brace_start_a_new_directive() {
        let tree = ok("a {\n b 1 } c 2\n");
        assert_eq!(outline(&tree), "a {}\n  b 1\nc 2\n");
    }

    #[test]
    fn empty_block_is_a_block() {
        let tree = ok("vrrp_script chk {}\nnopreempt\n");
        assert_eq!(outline(&tree), "vrrp_script chk {}\nnopreempt\n");
    }

    #[test]
    fn quoted_arguments_stay_whole() {
        let tree = ok("notify_master \"/etc/notify.sh master VI 1\"\n");
        assert_eq!(tree[0].args, vec!["/etc/notify.sh master VI 1"]);
    }

    #[test]
    fn unterminated_block_names_where_it_opened() {
        let err = parse("global_defs {\n router_id X\n}\nvrrp_instance VI_1 {\n  state MASTER\n")
            .expect_err("an unclosed block should not parse");
        assert!(
            matches!(&err, ParseError::UnterminatedBlock { name, .. } if name == "vrrp_instance")
        );
        assert_eq!(
            err.to_string(),
            "k.conf:4: block `vrrp_instance` is never closed with `}`"
        );
    }

    #[test]
    fn stray_close_brace_is_an_error() {
        let err = parse("a {\n}\n}\n").expect_err("a stray `}` should not parse");
        assert_eq!(err.to_string(), "k.conf:3: `}` without an open block");
    }

    #[test]
    fn open_brace_after_a_closed_block_is_an_error() {
        let err = parse("a {\n}\n{\n}\n").expect_err("an orphan `{` should not parse");
        assert_eq!(err.to_string(), "k.conf:3: `{` does not follow a directive");
    }
}
