//! ldirectord.cf: its reader and the conversion to the lbd model.

mod address;
mod check;
mod convert;
mod error;
mod parser;
mod settings;

pub(crate) use convert::convert;
pub use error::LdParseError;
pub use parser::{LdConfig, Setting, Virtual, parse_file, parse_str};
