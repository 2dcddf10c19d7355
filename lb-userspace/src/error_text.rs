//! Errors as one line of text, for log fields and answers to `lbd`'s
//! commands, where a multi-line report does not fit.

/// An error with its sources: "outer: inner: innermost".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_the_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("while connecting")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(
            error_chain(&Outer(std::io::Error::other("refused"))),
            "while connecting: refused"
        );
    }
}
