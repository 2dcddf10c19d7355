//! `misc_check`: a script's exit code. 0 is up; with `misc_dynamic`,
//! keepalived's rule: 1 is down and 2-255 is up with weight code - 2.

use std::time::Duration;

use super::{Passed, ProbeError};
use crate::exec::{Command, Outcome};

pub async fn run(
    command: &Command,
    dynamic: bool,
    timeout: Duration,
) -> Result<Passed, ProbeError> {
    let outcome = command.run(&[], timeout).await;
    judge(outcome, dynamic)
}

fn judge(outcome: Outcome, dynamic: bool) -> Result<Passed, ProbeError> {
    match outcome {
        Outcome::Success => Ok(Passed { weight: None }),
        Outcome::Failed(status) if dynamic => match status.code() {
            Some(code @ 2..=255) => Ok(Passed {
                weight: Some(code as u32 - 2),
            }),
            _ => Err(ProbeError::Script(outcome)),
        },
        other => Err(ProbeError::Script(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn exit(code: i32) -> Outcome {
        Outcome::Failed(std::process::ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn exit_codes_map_to_states_and_dynamic_weights() {
        assert_eq!(judge(Outcome::Success, true).unwrap().weight, None);
        assert!(judge(exit(1), true).is_err());
        assert_eq!(judge(exit(2), true).unwrap().weight, Some(0));
        assert_eq!(judge(exit(12), true).unwrap().weight, Some(10));
        assert_eq!(judge(exit(255), true).unwrap().weight, Some(253));
        assert!(
            judge(exit(12), false).is_err(),
            "without misc_dynamic, only 0 is up"
        );
        let err = judge(Outcome::TimedOut, true).unwrap_err();
        assert_eq!(err.to_string(), "the script timed out and was killed");
    }
}
