//! The converter's working state: the skipped list, and value readers that
//! record a skipped entry (instead of failing) when a value does not fit.

use std::{fmt::Display, str::FromStr, time::Duration};

use crate::import::{Skipped, keepalived::Directive, values::parse_seconds};

use super::reasons;

/// Long arguments (scripts, URLs) are cut in comments; the location finds them.
const MAX_SHOWN: usize = 60;

#[derive(Default)]
pub(super) struct Context {
    pub(super) skipped: Vec<Skipped>,
    pub(super) changed: Vec<Skipped>,
}

impl Context {
    /// `d` is not imported.
    pub(super) fn skip(&mut self, d: &Directive, reason: impl Into<String>) {
        self.skipped.push(Skipped::new(shown(d), &d.at, reason));
    }

    /// `d` is imported, but lbd does `reason` differently.
    pub(super) fn change(&mut self, d: &Directive, reason: impl Into<String>) {
        self.changed.push(Skipped::new(shown(d), &d.at, reason));
    }

    /// A directive this converter does not map, with the known reason if any.
    pub(super) fn unknown(&mut self, d: &Directive) {
        self.skip(d, reasons::why(&d.name));
    }

    /// The single argument of `name VALUE`.
    pub(super) fn arg<'d>(&mut self, d: &'d Directive) -> Option<&'d str> {
        if let [value] = d.args.as_slice() {
            Some(value)
        } else {
            self.skip(d, format!("expected one value, found {}", d.args.len()));
            None
        }
    }

    /// `name VALUE` parsed with `FromStr`.
    pub(super) fn parse<T>(&mut self, d: &Directive) -> Option<T>
    where
        T: FromStr<Err: Display>,
    {
        let value = self.arg(d)?;
        match value.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.skip(d, format!("`{value}`: {e}"));
                None
            }
        }
    }

    /// An integer in `min..=max` (the lbd model's range, so `lbd check`
    /// never sees one out of range).
    pub(super) fn int<T>(&mut self, d: &Directive, min: i64, max: i64) -> Option<T>
    where
        T: TryFrom<i64>,
    {
        let value = self.arg(d)?;
        let number = value
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n));
        let converted = number.and_then(|n| T::try_from(n).ok());
        if converted.is_none() {
            self.skip(
                d,
                format!("`{value}` is not a whole number from {min} to {max}"),
            );
        }
        converted
    }

    /// Seconds, fractions allowed (`advert_int 0.5`).
    pub(super) fn seconds(&mut self, d: &Directive) -> Option<Duration> {
        let value = self.arg(d)?;
        let parsed = parse_seconds(value);
        if parsed.is_none() {
            self.skip(d, format!("`{value}` is not a number of seconds"));
        }
        parsed
    }

    /// The block's name: `vrrp_instance VI_1 {`.
    pub(super) fn block_name(&mut self, d: &Directive) -> Option<String> {
        if !d.block {
            self.skip(d, "expected a `{ ... }` block");
            return None;
        }
        self.arg(d).map(str::to_owned)
    }

    /// A flag directive takes no value; keepalived ignores extra words, and so
    /// does this after saying so.
    pub(super) fn flag(&mut self, d: &Directive) -> bool {
        if !d.args.is_empty() {
            self.skip(d, "takes no value; the words after it were ignored");
        }
        true
    }

    /// A script line: `notify_master <STRING>|"<QUOTED STRING>" [user [group]]`.
    /// The first word is the command line (quote it to pass arguments), the
    /// rest a user that lbd cannot set per script.
    pub(super) fn script(&mut self, d: &Directive) -> Option<String> {
        let Some((command, user)) = d.args.split_first() else {
            self.skip(d, "no command given");
            return None;
        };
        if !user.is_empty() {
            self.skip(
                d,
                format!(
                    "runs as `{}`: lbd runs every script as `global.script_user`; the command was imported",
                    user.join(" ")
                ),
            );
        }
        Some(command.clone())
    }
}

/// `name args...` as the user wrote it, cut to a readable length.
fn shown(d: &Directive) -> String {
    let mut text = d.name.clone();
    for arg in &d.args {
        text.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            text.push('"');
            text.push_str(arg);
            text.push('"');
        } else {
            text.push_str(arg);
        }
    }
    if text.chars().count() > MAX_SHOWN {
        text = text.chars().take(MAX_SHOWN).collect::<String>() + "...";
    }
    text
}
