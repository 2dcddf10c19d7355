//! `lbd man DIR` (hidden; the Debian package's build runs it): writes
//! lbd(8) and one page per subcommand (lbd-run(8), ...) from the command
//! line's own definition, and lbd.yaml(5) from the configuration reference
//! table, so no page can drift from what the binary accepts.

use std::{fs, path::Path, process::ExitCode};

use anyhow::Context as _;
use clap_mangen::Man;

pub(crate) fn write_all(cli: clap::Command, dir: &Path) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let version = env!("CARGO_PKG_VERSION");
    // `build` names each subcommand `lbd-NAME`, which becomes its page's name.
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let pages = std::iter::once(cli.clone()).chain(
        cli.get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .cloned(),
    );
    for page in pages {
        let path = Man::new(page)
            .section("8")
            .manual("System Manager's Manual")
            .source(format!("lbd {version}"))
            .generate_to(dir)
            .with_context(|| format!("while writing a man page into {}", dir.display()))?;
        println!("{}", path.display());
    }
    let path = dir.join("lbd.yaml.5");
    fs::write(&path, lb_userspace::config::reference_man_page(version))
        .with_context(|| format!("while writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
