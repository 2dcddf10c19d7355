//! Reading one `key=value` into a typed value, reporting what cannot be
//! used as a skipped entry.

use std::time::Duration;

use crate::import::{Skipped, values::parse_seconds};

use super::Setting;

/// Long values (commands, comments) are cut in comments; the location finds them.
const MAX_SHOWN: usize = 60;

#[derive(Default)]
pub(super) struct Context {
    pub(super) skipped: Vec<Skipped>,
    pub(super) changed: Vec<Skipped>,
}

impl Context {
    /// `s` is not imported.
    pub(super) fn skip(&mut self, s: &Setting, reason: impl Into<String>) {
        self.skipped.push(Skipped::new(shown(s), &s.at, reason));
    }

    /// `s` is imported, but lbd does `reason` differently.
    pub(super) fn change(&mut self, s: &Setting, reason: impl Into<String>) {
        self.changed.push(Skipped::new(shown(s), &s.at, reason));
    }

    /// ldirectord takes whole seconds above 0 for its timers.
    pub(super) fn seconds(&mut self, s: &Setting) -> Option<Duration> {
        let parsed = parse_seconds(&s.value).filter(|d| !d.is_zero());
        if parsed.is_none() {
            self.skip(s, "not a number of seconds above 0");
        }
        parsed
    }

    pub(super) fn int(&mut self, s: &Setting, min: u32, max: u32) -> Option<u32> {
        let parsed = s.value.parse().ok().filter(|n| (min..=max).contains(n));
        if parsed.is_none() {
            self.skip(s, format!("not a whole number from {min} to {max}"));
        }
        parsed
    }

    pub(super) fn yes_no(&mut self, s: &Setting) -> Option<bool> {
        match s.value.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => {
                self.skip(s, "must be `yes` or `no`");
                None
            }
        }
    }
}

fn shown(s: &Setting) -> String {
    let shown = format!("{}={}", s.key, s.value);
    if shown.chars().count() > MAX_SHOWN {
        shown.chars().take(MAX_SHOWN).collect::<String>() + "..."
    } else {
        shown
    }
}
