//! `lbd import-keepalived` / `import-ldirectord`: the converted YAML on
//! stdout (so it can be redirected into a file), everything else on stderr.
use std::{path::Path, process::ExitCode};

use anyhow::Context;
use lb_userspace::{
    config::{self, ConfigError},
    import::{self, ImportError, Imported},
};

pub(crate) fn import_keepalived(file: &Path) -> anyhow::Result<ExitCode> {
    finish(file, import::import_keepalived(file))
}

pub(crate) fn import_ldirectord(file: &Path) -> anyhow::Result<ExitCode> {
    finish(file, import::import_ldirectord(file))
}

fn finish(file: &Path, result: Result<Imported, ImportError>) -> anyhow::Result<ExitCode> {
    let imported = result.with_context(|| format!("while importing {}", file.display()))?;
    let yaml = imported.to_yaml_with_comments();
    print!("{yaml}");
    for skipped in &imported.skipped {
        eprintln!("lbd: {}: {skipped}", import::NOT_IMPORTED);
    }
    for changed in &imported.changed {
        eprintln!("lbd: {}: {changed}", import::CHANGED);
    }
    let config = &imported.config;
    eprintln!(
        "lbd: imported {} vrrp instance(s), {} virtual server(s); {} directive(s) not imported, \
         {} imported with a change",
        config.vrrp_instances.len(),
        config.virtual_servers.len(),
        imported.skipped.len(),
        imported.changed.len()
    );
    // The output is meant for `lbd check`; say now if it would not pass.
    match config::load_str(&yaml, "<imported>") {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("lbd: check: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid { diagnostics }) => {
            for d in &diagnostics {
                eprintln!("lbd: check: {d}");
            }
            eprintln!("lbd: the imported config does not pass `lbd check`; fix it before use");
            Ok(ExitCode::FAILURE)
        }
        Err(err @ ConfigError::Io { .. }) => Err(err.into()),
    }
}
