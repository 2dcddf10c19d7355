//! keepalived.conf: a faithful reader (lexer, includes, directive tree) and
//! the conversion of its directives to the lbd model.

mod convert;
mod error;
mod lexer;
mod parser;
mod source;

pub(crate) use convert::convert;
pub use error::ParseError;
pub use parser::{Directive, Parsed, parse_file};
pub use source::UnmatchedInclude;
