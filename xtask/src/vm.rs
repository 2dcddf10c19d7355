//! `cargo xtask vm`: boots the lab VM (Debian's packaged kernel, which has
//! IPVS, under qemu) and runs one script or binary inside; see
//! docs/lab-vm.md for what was found to work and why.
//!
//! - Kernel: the package `linux-image-amd64` depends on, downloaded with
//!   `apt-get download` and unpacked (`dpkg -x`) into a cache directory; no
//!   package is installed. busybox's depmod indexes its modules.
//! - Root filesystem: the host's `/`, shared read-only over virtio-9p, with a
//!   tmpfs overlay on top, so the guest sees the host's tools and build
//!   outputs at the same paths. The module tree is a second 9p share.
//! - A tiny initramfs (busybox-static and the 9p, virtio and overlay
//!   modules) mounts that and switches root.
//! - TCG, not KVM: this host's /dev/kvm is a nested PVM hypervisor that
//!   cannot run a stock kernel. No network device at all (`-nic none`).
//! - The command's exit status comes back as a marker line on the serial
//!   console.
//! - The command runs under a busybox shell as PID 1 (the IPVS tests), or,
//!   with `--systemd`, as a service of the host's systemd booted as PID 1
//!   (the tests of the shipped unit, which need a real service manager).

use std::{
    fs,
    io::{BufRead as _, BufReader},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, probe};

/// The marker the guest prints with the command's exit status.
const EXIT_MARKER: &str = "LBD-VM-EXIT=";

#[derive(clap::Args)]
pub(crate) struct VmArgs {
    /// The script or binary to run inside, as root, with its arguments;
    /// paths are the host's (the guest sees the host's files).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub(crate) memory: u32,
    /// Boot systemd as PID 1 and run the command as one of its services.
    #[arg(long)]
    pub(crate) systemd: bool,
}

/// What runs as the guest's PID 1 around the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Init {
    /// A busybox shell: up in seconds, nothing else running.
    Shell,
    /// The host's systemd, the command one of its services: for what needs
    /// a service manager (`systemctl`, the shipped unit).
    Systemd,
}

pub(crate) fn vm(args: &VmArgs) -> Result<()> {
    let kernel = cmd::step("lab VM: Debian kernel and initramfs", prepare)?;
    let init = if args.systemd {
        Init::Systemd
    } else {
        Init::Shell
    };
    let code = run_in_vm(&kernel, &args.command, args.memory, init)?;
    if code != 0 {
        bail!("the command inside the VM exited with status {code}");
    }
    Ok(())
}

/// A kernel ready to boot: its image, module tree and initramfs.
pub(crate) struct Kernel {
    version: String,
    image: PathBuf,
    /// `.../lib/modules/VERSION`.
    modules: PathBuf,
    initramfs: PathBuf,
}

fn cache_dir() -> PathBuf {
    std::env::var_os("LBD_VM_CACHE").map_or_else(
        || cmd::workspace_root().join("target").join("lbd-vm"),
        PathBuf::from,
    )
}

/// Tools the VM needs on the host, with the packages providing them.
fn check_tools() -> Result<()> {
    let mut missing = Vec::new();
    if probe(Command::new("qemu-system-x86_64").arg("--version")).is_none() {
        missing.push("qemu-system-x86 (from bookworm-backports: `cargo xtask setup` adds it)");
    }
    if !Path::new("/bin/busybox").exists() || !busybox_is_static() {
        missing.push("busybox-static");
    }
    if !missing.is_empty() {
        bail!(
            "the lab VM cannot boot: missing {}; run `cargo xtask setup`",
            missing.join(", ")
        );
    }
    Ok(())
}

fn busybox_is_static() -> bool {
    // A dynamically linked busybox cannot run in the initramfs.
    probe(Command::new("dpkg-query").args(["-W", "-f", "${Status}", "busybox-static"]))
        .is_some_and(|s| s.contains("ok installed"))
}

/// Downloads and unpacks the kernel (once) and builds the initramfs.
pub(crate) fn prepare() -> Result<Kernel> {
    check_tools()?;
    let cache = cache_dir();
    fs::create_dir_all(&cache).with_context(|| format!("while creating {}", cache.display()))?;
    let depends = probe(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))
        .context("`apt-cache depends linux-image-amd64` failed: is this Debian?")?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .context("linux-image-amd64 depends on no linux-image-VERSION-amd64")?
        .to_owned();
    let version = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_owned();
    let root = cache.join(&package);
    let image = root.join("boot").join(format!("vmlinuz-{version}"));
    let modules = root.join("lib/modules").join(&version);
    if !modules.join("modules.dep").exists() {
        download_kernel(&cache, &package, &root)?;
        // The package ships no modules.dep; busybox's depmod writes one.
        cmd::run(
            Command::new("/bin/busybox")
                .arg("depmod")
                .arg("-b")
                .arg(&root)
                .arg(&version),
        )
        .context("while indexing the kernel's modules")?;
    }
    let initramfs = cache.join(format!("initramfs-{version}.cpio"));
    build_initramfs(&cache, &modules, &version, &initramfs)?;
    Ok(Kernel {
        version,
        image,
        modules,
        initramfs,
    })
}

fn download_kernel(cache: &Path, package: &str, root: &Path) -> Result<()> {
    eprintln!(
        "[xtask]   downloading {package} (about 70 MB) into {}",
        cache.display()
    );
    cmd::run(
        Command::new("apt-get")
            .current_dir(cache)
            .args(["download", "-q", package]),
    )
    .with_context(|| format!("while downloading {package}; try `apt-get update` first"))?;
    let deb = fs::read_dir(cache)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "deb")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")))
        })
        .with_context(|| format!("apt-get download left no {package}_*.deb"))?;
    cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(root))
        .with_context(|| format!("while unpacking {}", deb.display()))?;
    let _ = fs::remove_file(&deb);
    Ok(())
}

/// Modules the initramfs loads, in order, to reach the 9p root.
const BOOT_MODULES: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "netfs",
    "fscache",
    "9pnet",
    "9pnet_virtio",
    "9p",
    "overlay",
];

/// `/init` of the initramfs: mount the host's root read-only with a tmpfs
/// overlay, the module tree at `/lib/modules/VERSION`, and switch to it.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /boot-modules); do modprobe "$m" 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose rootfs /lower || { echo "LBD-VM-EXIT=125 (no 9p root)"; poweroff -f; }
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
VERSION=$(uname -r)
mkdir -p /newroot/lib/modules/$VERSION
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 modules /newroot/lib/modules/$VERSION
mkdir -p /newroot/run/lbd-vm
cp /bin/busybox /newroot/run/lbd-vm/busybox
ln -sf /run/lbd-vm/busybox /newroot/run/lbd-vm/modprobe
STAGE2=$(sed -n 's/.*lbd.stage2=\([^ ]*\).*/\1/p' /proc/cmdline)
for d in proc sys dev; do mount --move /$d /newroot/$d; done
exec switch_root /newroot /run/lbd-vm/busybox sh "$STAGE2"
"#;

/// Runs in the switched root: a clean /tmp and /run, a modprobe that can
/// read the module tree, then the command; its status goes to the console.
const STAGE2: &str = r#"export PATH=/run/lbd-vm:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo /run/lbd-vm/modprobe > /proc/sys/kernel/modprobe
ip link set lo up
SCRIPT=$(sed -n 's/.*lbd.script=\([^ ]*\).*/\1/p' /proc/cmdline)
cd "$(dirname "$SCRIPT")"
sh "$SCRIPT"
echo "LBD-VM-EXIT=$?"
sync
poweroff -f
"#;

/// Runs in the switched root when systemd is to be PID 1: systemd mounts a
/// fresh tmpfs on /run, so busybox (the modprobe) moves to /lbd-vm; two
/// units run the command and power off, and `--unit=lbd-vm.target` makes
/// them all that boots, with sysinit.target (which every ordinary service
/// needs) coming up beside the command rather than at its first
/// `systemctl start`. The host's /.dockerenv (when the build machine is a
/// container) would make systemd think it runs in one: hidden. So is
/// systemd-tmpfiles-setup: it would empty the host's /tmp through the
/// overlay, which over 9p on an emulated CPU takes half a minute.
const STAGE2_SYSTEMD: &str = r#"mkdir -p /lbd-vm /etc/systemd/system
rm -f /.dockerenv /run/.containerenv
ln -sf /dev/null /etc/systemd/system/systemd-tmpfiles-setup.service
cp /run/lbd-vm/busybox /lbd-vm/busybox
ln -sf /lbd-vm/busybox /lbd-vm/modprobe
echo /lbd-vm/modprobe > /proc/sys/kernel/modprobe
/lbd-vm/busybox sed -n 's/.*lbd.script=\([^ ]*\).*/\1/p' /proc/cmdline > /lbd-vm/script-path
cat > /lbd-vm/run.sh <<'EOF'
ip link set lo up
SCRIPT=$(cat /lbd-vm/script-path)
cd "$(dirname "$SCRIPT")"
sh "$SCRIPT"
echo "LBD-VM-EXIT=$?"
sync
systemctl poweroff -ff
EOF
cat > /etc/systemd/system/lbd-vm.target <<'EOF'
[Unit]
Description=lab VM: the command
AllowIsolate=yes
Requires=lbd-vm-run.service
Wants=sysinit.target
EOF
cat > /etc/systemd/system/lbd-vm-run.service <<'EOF'
[Unit]
Description=lab VM: run the command, report its status, power off
DefaultDependencies=no
[Service]
Type=oneshot
Environment=PATH=/lbd-vm:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/lbd-vm/busybox sh /lbd-vm/run.sh
EOF
exec /lib/systemd/systemd --unit=lbd-vm.target --show-status=error
"#;

fn build_initramfs(cache: &Path, modules: &Path, version: &str, out: &Path) -> Result<()> {
    let dir = cache.join("initramfs");
    let _ = fs::remove_dir_all(&dir);
    let mod_dir = dir.join("lib/modules").join(version);
    fs::create_dir_all(dir.join("bin"))?;
    fs::create_dir_all(&mod_dir)?;
    fs::copy("/bin/busybox", dir.join("bin/busybox")).context("while copying busybox")?;
    fs::copy(modules.join("modules.dep"), mod_dir.join("modules.dep"))?;
    // Only the boot modules travel in the initramfs (the rest is shared).
    let dep = fs::read_to_string(modules.join("modules.dep"))?;
    let mut loaded = Vec::new();
    for line in dep.lines() {
        let Some((path, _)) = line.split_once(':') else {
            continue;
        };
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .unwrap_or_default()
            .replace('-', "_");
        if BOOT_MODULES.contains(&name.as_str()) {
            let target = mod_dir.join(path);
            fs::create_dir_all(target.parent().expect("a module path has a parent"))?;
            fs::copy(modules.join(path), &target)?;
            loaded.push(name);
        }
    }
    // In BOOT_MODULES order; a module built into the kernel is simply absent.
    let order: Vec<&str> = BOOT_MODULES
        .iter()
        .copied()
        .filter(|m| loaded.iter().any(|l| l == m))
        .collect();
    fs::write(dir.join("boot-modules"), order.join("\n") + "\n")?;
    fs::write(dir.join("init"), INIT)?;
    fs::set_permissions(dir.join("init"), fs::Permissions::from_mode(0o755))?;
    // The cpio is written by busybox from a file list, uncompressed (the
    // kernel takes that as is and it saves unpacking time).
    let file = fs::File::create(out)?;
    let mut find = Command::new("/bin/busybox")
        .args(["find", "."])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let status = Command::new("/bin/busybox")
        .args(["cpio", "-o", "-H", "newc"])
        .current_dir(&dir)
        .stdin(find.stdout.take().expect("piped"))
        .stdout(file)
        .stderr(Stdio::null())
        .status()?;
    find.wait()?;
    if !status.success() {
        bail!("busybox cpio failed building the initramfs");
    }
    Ok(())
}

/// Boots the VM, runs `command` inside (as a shell command line) and
/// returns its exit status. The guest's console is streamed to stderr.
pub(crate) fn run_in_vm(
    kernel: &Kernel,
    command: &[String],
    memory: u32,
    init: Init,
) -> Result<i32> {
    let work = cache_dir().join("runs");
    fs::create_dir_all(&work)?;
    let script = work.join(format!("run-{}.sh", std::process::id()));
    let cwd = std::env::current_dir()?;
    let quoted: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
    fs::write(
        &script,
        format!(
            "cd {}\nexport STAGE2=1\n{}\n",
            shell_quote(&cwd.to_string_lossy()),
            quoted.join(" ")
        ),
    )?;
    // stage2 travels in the root share, like the command.
    let (stage2_name, stage2) = match init {
        Init::Shell => ("stage2.sh", STAGE2),
        Init::Systemd => ("stage2-systemd.sh", STAGE2_SYSTEMD),
    };
    let stage2_path = cache_dir().join(stage2_name);
    fs::write(&stage2_path, stage2)?;
    let start = Instant::now();
    eprintln!(
        "[xtask] booting the lab VM (kernel {}, TCG, {init:?} as PID 1): {}",
        kernel.version,
        command.join(" ")
    );
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg", "-cpu", "max", "-smp", "2"])
        .args(["-m", &memory.to_string()])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .args(["-monitor", "none", "-serial", "stdio"])
        .arg("-kernel")
        .arg(&kernel.image)
        .arg("-initrd")
        .arg(&kernel.initramfs)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet panic=-1 lbd.script={} lbd.stage2={}",
            script.display(),
            stage2_path.display()
        ))
        .args([
            "-virtfs",
            "local,path=/,mount_tag=rootfs,security_model=none,readonly=on,multidevs=remap",
        ])
        .arg("-virtfs")
        .arg(format!(
            "local,path={},mount_tag=modules,security_model=none,readonly=on",
            kernel.modules.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = qemu.spawn().context("while starting qemu-system-x86_64")?;
    let mut code = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.unwrap_or_default();
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(EXIT_MARKER) {
            code = rest.split_whitespace().next().and_then(|c| c.parse().ok());
        }
        eprintln!("[vm] {line}");
    }
    let status = child.wait()?;
    let _ = fs::remove_file(&script);
    eprintln!(
        "[xtask] lab VM done in {} (qemu {status})",
        cmd::secs(start.elapsed())
    );
    code.with_context(|| {
        "the lab VM stopped without reporting the command's exit status (it did not boot, or the kernel panicked): see the [vm] lines above"
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
