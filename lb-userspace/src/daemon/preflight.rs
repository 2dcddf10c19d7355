//! Everything `lbd run` refuses that the configuration alone decides:
//! options not implemented yet, a config with nothing to do, virtual
//! servers that cannot form a forwarding state, health-check and VRRP
//! scripts that are missing or unsafe, VRRP parameters (AH, VRIDs shared
//! on a link, sync groups), and what the chosen data plane needs.
//!
//! `lbd check` prints these; `lbd run` calls the same function before it
//! touches anything and refuses with the same lines, so the unit's
//! `ExecStartPre=lbd check` never passes a start that then fails on the
//! configuration. What only the host can tell (an interface that does not
//! exist, a kernel without XDP or IPVS, another lbd running) is left to
//! `lbd run`.

use crate::{
    config::{Diagnostic, KeyPath, Loaded, Segment},
    daemon::select,
    dataplane::{DesiredState, caveats::caveats},
    error_text::error_chain,
    exec::RunAs,
    health,
    vrrp::io::setup,
};

/// The refusals, each an error diagnostic; empty: `lbd run` can start.
pub fn refusals(loaded: &Loaded) -> Vec<Diagnostic> {
    let config = &loaded.config;
    let mut out = loaded.unsupported();
    if config.interfaces.is_empty()
        && config.vrrp_instances.is_empty()
        && config.virtual_servers.is_empty()
    {
        out.push(
            loaded.error_at(
                &KeyPath::root(),
                "nothing to run: no interfaces to attach to, no vrrp instances and no virtual \
             servers; list interfaces under `interfaces:`"
                    .to_owned(),
            ),
        );
    }
    // Virtual servers using what is not implemented would be refused
    // again below in other words; the keys above say it once, precisely.
    let vs_unsupported = config
        .unsupported()
        .iter()
        .any(|k| k.path.segments().first() == Some(&Segment::Key("virtual_servers".to_owned())));
    if !vs_unsupported {
        match DesiredState::from_config(config) {
            Ok(desired) => {
                if let Err(err) = select::check(config, &desired) {
                    out.push(loaded.error_at(&KeyPath::root().key("dataplane"), one_line(&err)));
                }
            }
            Err(err) => out.push(loaded.error_at(&KeyPath::root(), one_line(&err))),
        }
        // An unknown `script_user` is reported once, by VRRP's check below.
        if RunAs::default_for(config.global.script_user.as_deref()).is_ok()
            && let Err(err) = health::prepare(config)
        {
            out.push(loaded.error_at(
                &KeyPath::root().key("virtual_servers"),
                format!("health checks: {}", one_line(&err)),
            ));
        }
    }
    for (path, err) in setup::check(config) {
        out.push(loaded.error_at(&path, one_line(&err)));
    }
    for caveat in caveats(config).into_iter().filter(|c| c.refuses) {
        out.push(loaded.error_at(&caveat.path, caveat.message));
    }
    out
}

/// What `lbd run` starts with but does differently from the file, each a
/// warning `lbd check` prints and `lbd run` logs in the same words: a
/// tracked script that does not exist (disabled, as keepalived does), and
/// what the data plane cannot do with it (`dataplane::caveats`).
pub fn warnings(loaded: &Loaded) -> Vec<Diagnostic> {
    let caveats = caveats(&loaded.config)
        .into_iter()
        .filter(|c| !c.refuses)
        .map(|c| (c.path, c.message));
    setup::disabled_track_scripts(&loaded.config)
        .into_iter()
        .chain(caveats)
        .map(|(path, message)| loaded.warning_at(&path, message))
        .collect()
}

/// An error and its sources on one line (some, like a regex's, span
/// several), as a diagnostic must be.
fn one_line(err: &dyn std::error::Error) -> String {
    error_chain(err)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The refusals as `lbd run`'s error text: one line each, as `lbd check`
/// prints them.
pub fn render(refusals: &[Diagnostic]) -> String {
    let mut text = format!(
        "the configuration cannot run ({} error{}; `lbd check` lists the same):",
        refusals.len(),
        if refusals.len() == 1 { "" } else { "s" }
    );
    for r in refusals {
        text.push('\n');
        text.push_str(&r.to_string());
    }
    text
}
