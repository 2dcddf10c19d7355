//! Splits one line of keepalived.conf into tokens, the way keepalived's
//! `alloc_strvec` does: whitespace separates words, `{` and `}` are tokens of
//! their own even when glued to a word, `"..."` is one word without its
//! quotes, and a word starting with `#` or `!` starts a comment.

use crate::import::Location;

use super::error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(String),
    Open,
    Close,
}

/// Tokens of one line; `at` is only used for errors.
pub(crate) fn tokenize(text: &str, at: &Location) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(tokens);
        };
        match first {
            // Only at the start of a word: `auth_pass se#cret` keeps its `#`.
            '#' | '!' => return Ok(tokens),
            '{' => {
                tokens.push(Token::Open);
                rest = &rest[1..];
            }
            '}' => {
                tokens.push(Token::Close);
                rest = &rest[1..];
            }
            '"' => {
                let body = &rest[1..];
                let end = body
                    .find('"')
                    .ok_or_else(|| ParseError::UnterminatedQuote { at: at.clone() })?;
                tokens.push(Token::Word(body[..end].to_owned()));
                rest = &body[end + 1..];
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '{' | '}' | '"'))
                    .unwrap_or(rest.len());
                tokens.push(Token::Word(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Token> {
        tokenize(text, &Location::new("t.conf", 1)).expect("line should tokenize")
    }

    fn w(s: &str) -> Token {
        Token::Word(s.to_owned())
    }

    #[test]
    fn splits_on_any_whitespace() {
        assert_eq!(
            words(" \tpriority\t \t100  "),
            vec![w("priority"), w("100")]
        );
    }

    #[test]
    fn hash_and_bang_start_comments() {
        assert_eq!(words("# all comment"), vec![]);
        assert_eq!(words("   ! all comment"), vec![]);
        assert_eq!(words("priority 100 # why"), vec![w("priority"), w("100")]);
        assert_eq!(words("priority 100 !why"), vec![w("priority"), w("100")]);
    }

    #[test]
    fn comment_characters_inside_a_word_are_kept() {
        assert_eq!(
            words("auth_pass se#cr!t"),
            vec![w("auth_pass"), w("se#cr!t")]
        );
    }

    #[test]
    fn quoted_string_is_one_word_without_quotes() {
        assert_eq!(
            words(r#"notify_master "/usr/bin/notify master # not a comment" x"#),
            vec![
                w("notify_master"),
                w("/usr/bin/notify master # not a comment"),
                w("x")
            ]
        );
        assert_eq!(words(r#"a """#), vec![w("a"), w("")]);
    }

    #[test]
    fn braces_are_tokens_even_when_glued() {
        assert_eq!(
            words("virtual_ipaddress{10.0.0.1}"),
            vec![
                w("virtual_ipaddress"),
                Token::Open,
                w("10.0.0.1"),
                Token::Close
            ]
        );
        assert_eq!(words(r#""{""#), vec![w("{")]);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_location() {
        let err = tokenize(r#"notify "/bin/x"#, &Location::new("k.conf", 7))
            .expect_err("an open quote should not tokenize");
        assert!(matches!(err, ParseError::UnterminatedQuote { .. }));
        assert_eq!(err.to_string(), "k.conf:7: unterminated quoted string");
    }
}
