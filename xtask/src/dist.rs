//! `cargo xtask dist`: the Debian package, `target/dist/lbd_VERSION_ARCH.deb`.
//!
//! Built with `dpkg-deb --build` from a staged tree and the maintainer files
//! in `dist/debian/`, not with cargo-deb: dpkg-deb and dpkg-shlibdeps are
//! Debian's own tools, already on every build machine (`dpkg-dev`, which
//! `cargo xtask setup` installs), while cargo-deb would be one more tool to
//! build from crates.io in CI. The maintainer scripts are plain files to
//! read and review, and everything generated (man pages, completions) comes
//! from the `lbd` binary being packaged, so it cannot drift from it.
//!
//! Contents: `/usr/sbin/lbd` (release build, the XDP program embedded),
//! the systemd unit (and an opt-in sandbox for it among the examples),
//! `/etc/lbd/lbd.yaml` (a conffile: the minimal example,
//! scripts run as `lbd-script`), `/etc/lbd/conf.d/`, man pages lbd(8),
//! lbd-SUBCOMMAND(8) and lbd.yaml(5), bash/zsh/fish completions, the JSON
//! Schema of the configuration (`/usr/share/lbd/lbd.schema.json`), the docs
//! and examples.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    build::{self, BuildArgs},
    cmd::{self, step},
};

/// Files copied from the repository: (source, destination, mode).
const FILES: &[(&str, &str, u32)] = &[
    (
        "dist/lbd.service",
        "usr/lib/systemd/system/lbd.service",
        0o644,
    ),
    (
        "dist/lbd.service.d/hardening.conf",
        "usr/share/doc/lbd/examples/lbd.service.d/hardening.conf",
        0o644,
    ),
    (
        "dist/debian/copyright",
        "usr/share/doc/lbd/copyright",
        0o644,
    ),
    ("README.md", "usr/share/doc/lbd/README.md", 0o644),
    (
        "docs/config-reference.md",
        "usr/share/doc/lbd/config-reference.md",
        0o644,
    ),
    (
        "docs/operations.md",
        "usr/share/doc/lbd/operations.md",
        0o644,
    ),
    (
        "examples/lbd.yaml",
        "usr/share/doc/lbd/examples/lbd.yaml",
        0o644,
    ),
    (
        "examples/minimal.yaml",
        "usr/share/doc/lbd/examples/minimal.yaml",
        0o644,
    ),
    (
        "docs/lbd.schema.json",
        "usr/share/lbd/lbd.schema.json",
        0o644,
    ),
];

/// Maintainer scripts, from `dist/debian/`.
const SCRIPTS: &[&str] = &["postinst", "prerm", "postrm"];

/// Where each shell looks for vendor completions: (shell, path).
const COMPLETIONS: &[(&str, &str)] = &[
    ("bash", "usr/share/bash-completion/completions/lbd"),
    ("zsh", "usr/share/zsh/vendor-completions/_lbd"),
    ("fish", "usr/share/fish/vendor_completions.d/lbd.fish"),
];

/// The conffile: the minimal example, with scripts running as the user the
/// package creates (the example itself names no user, so it runs anywhere).
const CONFFILE_HEAD: &str = "\
# yaml-language-server: $schema=/usr/share/lbd/lbd.schema.json
# /etc/lbd/lbd.yaml: lbd's configuration (see lbd.yaml(5)). This is the
# minimal example: edit the interface and the addresses, validate with
# `lbd check -c /etc/lbd/lbd.yaml`, then `systemctl enable --now lbd`.
# Files in /etc/lbd/conf.d/ add services (see `include` in lbd.yaml(5)).
# The first line gives editors with yaml-language-server key completion
# and checks while typing.

include: conf.d/*.yaml

global:
  script_user: lbd-script   # created by the package
";

/// The package file `dist` writes.
pub(crate) fn deb_path(version: &str, arch: &str) -> PathBuf {
    cmd::workspace_root()
        .join("target")
        .join("dist")
        .join(format!("lbd_{version}_{arch}.deb"))
}

/// Builds the package; returns its path.
pub(crate) fn dist() -> Result<PathBuf> {
    let lbd = build::build(&BuildArgs { release: true })?;
    step("Debian package (dpkg-deb)", || package(&lbd))
}

fn package(lbd: &Path) -> Result<PathBuf> {
    let root = cmd::workspace_root();
    let out = root.join("target").join("dist");
    let stage = out.join("root");
    if stage.exists() {
        fs::remove_dir_all(&stage)
            .with_context(|| format!("while emptying {}", stage.display()))?;
    }
    let version = lbd_version(lbd)?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;

    let sbin = stage.join("usr/sbin/lbd");
    install(lbd, &sbin, 0o755)?;
    // Symbols only make the package larger; the XDP object is data, kept.
    cmd::run(Command::new("strip").arg("--strip-unneeded").arg(&sbin))?;
    for (from, to, mode) in FILES {
        install(&root.join(from), &stage.join(to), *mode)?;
    }
    let conffile = stage.join("etc/lbd/lbd.yaml");
    let example = fs::read_to_string(root.join("examples/minimal.yaml"))
        .context("while reading examples/minimal.yaml")?;
    write(&conffile, &format!("{CONFFILE_HEAD}\n{example}"), 0o644)?;
    fs::create_dir_all(stage.join("etc/lbd/conf.d"))?;
    man_pages(&sbin, &stage)?;
    for (shell, path) in COMPLETIONS {
        let script = output(Command::new(&sbin).args(["completions", shell]))?;
        write(&stage.join(path), &format!("{script}\n"), 0o644)?;
    }

    let debian = stage.join("DEBIAN");
    for script in SCRIPTS {
        install(
            &root.join("dist/debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    write(&debian.join("conffiles"), "/etc/lbd/lbd.yaml\n", 0o644)?;
    write(&debian.join("md5sums"), &md5sums(&stage)?, 0o644)?;
    let control = fs::read_to_string(root.join("dist/debian/control"))
        .context("while reading dist/debian/control")?
        .replace("@VERSION@", &version)
        .replace("@ARCH@", &arch)
        .replace("@INSTALLED_SIZE@", &installed_size_kib(&stage)?.to_string())
        .replace("@SHLIBS_DEPENDS@", &shlibs_depends(&out, &sbin)?);
    write(&debian.join("control"), &control, 0o644)?;

    let deb = deb_path(&version, &arch);
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&stage)
            .arg(&deb),
    )?;
    eprintln!("[xtask] package: {}", deb.display());
    Ok(deb)
}

/// `lbd --version` prints `lbd X.Y.Z`.
fn lbd_version(lbd: &Path) -> Result<String> {
    let text = output(Command::new(lbd).arg("--version"))?;
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["lbd", version] => Ok(version.to_owned()),
        _ => bail!("unexpected `lbd --version` output: {text:?}"),
    }
}

/// Runs `lbd man` into a scratch folder and installs the pages gzipped, as
/// Debian policy wants them.
fn man_pages(lbd: &Path, stage: &Path) -> Result<()> {
    let scratch = stage.join("man-scratch");
    cmd::run(Command::new(lbd).arg("man").arg(&scratch))?;
    let mut pages: Vec<PathBuf> = fs::read_dir(&scratch)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    for page in &pages {
        let section = page
            .extension()
            .and_then(|e| e.to_str())
            .context("a man page without a section")?;
        let dir = stage.join("usr/share/man").join(format!("man{section}"));
        fs::create_dir_all(&dir)?;
        // -n: no name or time stamp inside, so equal pages give equal files.
        let gz = dir.join(format!(
            "{}.gz",
            page.file_name().context("a page path")?.to_string_lossy()
        ));
        let zipped = Command::new("gzip")
            .args(["-9n", "--stdout"])
            .arg(page)
            .output()
            .context("while running gzip")?;
        if !zipped.status.success() {
            bail!("gzip {} failed", page.display());
        }
        fs::write(&gz, zipped.stdout)?;
        fs::set_permissions(&gz, fs::Permissions::from_mode(0o644))?;
    }
    fs::remove_dir_all(&scratch)?;
    if pages.is_empty() {
        bail!("`lbd man` wrote no pages");
    }
    Ok(())
}

/// The shared-library dependencies of the binary, in Debian's terms
/// (`libc6 (>= 2.34), ...`), from dpkg-shlibdeps, which needs a
/// `debian/control` in its working directory.
fn shlibs_depends(out: &Path, lbd: &Path) -> Result<String> {
    let work = out.join("shlibdeps");
    fs::create_dir_all(work.join("debian"))?;
    fs::write(
        work.join("debian/control"),
        "Source: lbd\n\nPackage: lbd\nArchitecture: any\n",
    )?;
    let text = output(
        Command::new("dpkg-shlibdeps")
            .current_dir(&work)
            .arg("-O")
            .arg(lbd),
    )?;
    text.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .context("dpkg-shlibdeps printed no shlibs:Depends")
}

/// `DEBIAN/md5sums`: every file's checksum (what `debsums` verifies).
fn md5sums(stage: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(stage, &mut |path, meta| {
        if meta.is_file() {
            files.push(
                path.strip_prefix(stage)
                    .expect("under the stage")
                    .to_owned(),
            );
        }
    })?;
    files.sort();
    let mut md5 = Command::new("md5sum");
    md5.current_dir(stage).args(&files);
    output(&mut md5).map(|sums| sums + "\n")
}

/// Installed-Size: KiB per file, rounded up, plus one per directory
/// (dpkg-gencontrol's estimate).
fn installed_size_kib(stage: &Path) -> Result<u64> {
    let mut kib = 0;
    walk(stage, &mut |_, meta| {
        kib += if meta.is_dir() {
            1
        } else {
            meta.len().div_ceil(1024)
        };
    })?;
    Ok(kib)
}

/// Calls `f` for everything below `dir` except `DEBIAN/`.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("while listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "DEBIAN") {
            continue;
        }
        let meta = fs::symlink_metadata(&path)?;
        f(&path, &meta);
        if meta.is_dir() {
            walk(&path, f)?;
        }
    }
    Ok(())
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("while copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(to: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(to, text).with_context(|| format!("while writing {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Runs `cmd` and returns its trimmed stdout; fails naming the command.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("while starting {}", cmd::describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            cmd::describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}
