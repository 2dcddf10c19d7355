//! `lbd import-keepalived` / `import-ldirectord` (filled in by the configuration issue).
use std::{path::Path, process::ExitCode};

pub(crate) fn import_keepalived(_file: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

pub(crate) fn import_ldirectord(_file: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
