//! A real kernel and initramfs for the real-OS test: Debian's current kernel for the host's
//! release (`apt-get download` of the package `linux-image-<arch>` depends on, `vmlinuz` and a
//! few small module lists taken out with `dpkg-deb`), kept as a tarball in the cache directory
//! between runs; where it cannot be had, a stand-in file. The initramfs is made on each run:
//! a gzip-compressed newc cpio archive (`cpio -o -H newc`) holding a tiny `/init`.

use crate::common::mount::s;
use crate::common::write;
use crate::userland::{
    cache_dir, host_codename, make_dir, run_command, run_quiet, save_to_cache, tar,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The kernel version of the stand-in kernel.
pub const STAND_IN_KVER: &str = "6.1.0-realos";

/// A kernel as it goes into `usr/lib/modules/<kver>/` of a commit.
pub struct Kernel {
    /// Its version: the name of its modules directory.
    pub kver: String,
    /// The modules directory: `vmlinuz`, and for a real kernel its `config` and module lists
    /// (the modules themselves are left out to keep the tree small).
    pub dir: PathBuf,
    /// Debian's kernel image (a bzImage), or a stand-in file.
    pub is_real: bool,
}

/// Debian's current kernel for the host's release (from the cache, else downloaded now and
/// cached), or a stand-in where it cannot be had; says which, and why.
pub fn real_kernel(base: &Path) -> Kernel {
    match debian_kernel(base) {
        Ok(kernel) => kernel,
        Err(why) => {
            println!("no Debian kernel: {why}; falling back to a stand-in kernel file");
            let dir = base.join("kernel").join(STAND_IN_KVER);
            write(&dir.join("vmlinuz"), b"stand-in kernel\n");
            Kernel {
                kver: STAND_IN_KVER.to_string(),
                dir,
                is_real: false,
            }
        }
    }
}

fn debian_kernel(base: &Path) -> Result<Kernel, String> {
    let codename = host_codename().ok_or("the host is not a Debian release")?;
    let arch = run_quiet("dpkg", &["--print-architecture"])
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("dpkg --print-architecture: {e}"))?;
    let tarball = cache_dir().join(format!("debian-{codename}-kernel-{arch}.tar.gz"));
    let root = base.join("kernel");
    if tarball.is_file() {
        match tar(&["-xpzf", s(&tarball), "-C", s(&make_dir(&root))]).and_then(|()| found(&root)) {
            Ok(kernel) => {
                println!("using the cached {} ({})", tarball.display(), kernel.kver);
                return Ok(kernel);
            }
            Err(e) => {
                println!(
                    "the cache {} is unusable ({e}): fetching the kernel again",
                    tarball.display()
                );
                let _ = std::fs::remove_file(&tarball);
                let _ = std::fs::remove_dir_all(&root);
            }
        }
    }
    let package = kernel_package(&arch)?;
    let download = make_dir(&base.join("kernel-download"));
    println!("apt-get download {package} (cached afterwards)");
    let args = [
        "600",
        "apt-get",
        "download",
        "-q",
        "-o",
        "Acquire::http::Timeout=20",
        "-o",
        "Acquire::Retries=1",
        &package,
    ];
    run_command(Command::new("timeout").args(args).current_dir(&download))
        .map_err(|e| format!("the package mirror cannot be reached ({package}: {e})"))?;
    let deb = std::fs::read_dir(&download)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {package} left no .deb"))?;
    extract_kernel(&deb, &make_dir(&root))?;
    let kernel = found(&root)?;
    let _ = std::fs::remove_dir_all(&download);
    save_to_cache(&root, &tarball);
    Ok(kernel)
}

/// The kernel package `linux-image-<arch>` depends on, as apt's package lists name it
/// (`linux-image-6.1.0-28-amd64`).
fn kernel_package(arch: &str) -> Result<String, String> {
    let meta = format!("linux-image-{arch}");
    let deps = run_quiet("apt-cache", &["depends", "--important", &meta])
        .map_err(|e| format!("apt-cache depends {meta}: {e}"))?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && !p.starts_with('<'))
        .map(str::to_string)
        .ok_or_else(|| format!("apt knows no kernel package for {meta} (apt-get update?)"))
}

/// Takes `vmlinuz`, `config` and the module lists out of a kernel package (its modules, a few
/// hundred MB, stay in the archive) into `out/<kver>/`.
fn extract_kernel(deb: &Path, out: &Path) -> Result<(), String> {
    let unpacked = make_dir(&out.with_extension("unpacked"));
    let mut fsys = Command::new("dpkg-deb")
        .args(["--fsys-tarfile", s(deb)])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    // `lib/modules` or, on merged-/usr releases, `usr/lib/modules`.
    let wanted = [
        "./boot/vmlinuz-*",
        "./boot/config-*",
        "*/modules/*/modules.order",
        "*/modules/*/modules.builtin",
    ];
    let untar = Command::new("tar")
        .args(["-x", "-C", s(&unpacked), "--wildcards"])
        .args(wanted)
        .stdin(fsys.stdout.take().unwrap())
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let dpkg = fsys.wait().map_err(|e| e.to_string())?;
    if !untar.status.success() || !dpkg.success() {
        return Err(format!(
            "unpacking {}: dpkg-deb {dpkg}, tar {}: {}",
            deb.display(),
            untar.status,
            String::from_utf8_lossy(&untar.stderr).trim()
        ));
    }
    let vmlinuz = std::fs::read_dir(unpacked.join("boot"))
        .map_err(|e| e.to_string())?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_prefix("vmlinuz-")?.to_string(), e.path()))
        });
    let (kver, vmlinuz) = vmlinuz.ok_or("the package has no /boot/vmlinuz-*")?;
    let dir = make_dir(&out.join(&kver));
    let modules = ["lib", "usr/lib"]
        .iter()
        .map(|lib| unpacked.join(lib).join("modules").join(&kver))
        .find(|d| d.is_dir())
        .ok_or_else(|| format!("the package has no modules directory for {kver}"))?;
    let moves = [
        (vmlinuz, dir.join("vmlinuz")),
        (
            unpacked.join(format!("boot/config-{kver}")),
            dir.join("config"),
        ),
        (modules.join("modules.order"), dir.join("modules.order")),
        (modules.join("modules.builtin"), dir.join("modules.builtin")),
    ];
    for (from, to) in moves {
        std::fs::rename(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    Ok(())
}

/// The one kernel in `root/<kver>/`, checked to be a bzImage.
fn found(root: &Path) -> Result<Kernel, String> {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    let [dir] = dirs.as_slice() else {
        return Err(format!(
            "expected one kernel directory in {}",
            root.display()
        ));
    };
    let image = std::fs::read(dir.join("vmlinuz")).map_err(|e| e.to_string())?;
    if !is_bzimage(&image) {
        return Err(format!("{}/vmlinuz is not a bzImage", dir.display()));
    }
    Ok(Kernel {
        kver: dir.file_name().unwrap().to_string_lossy().into_owned(),
        dir: dir.clone(),
        is_real: true,
    })
}

/// Whether `image` is an x86 bzImage: the boot protocol's header magic `HdrS` at 0x202.
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS")
}

/// A gzip-compressed newc cpio initramfs at `out`, made by `cpio -o -H newc` from a tiny
/// `/init` script and the directories it mounts on.
pub fn make_initramfs(base: &Path, out: &Path) {
    let root = base.join("initramfs-root");
    write(
        &root.join("init"),
        b"#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\nexec /bin/sh\n",
    );
    crate::common::chmod(&root.join("init"), 0o755);
    for dir in ["bin", "dev", "proc", "sys"] {
        make_dir(&root.join(dir));
    }
    let script = "cd \"$1\" && find . | LC_ALL=C sort | \
                  cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -9n > \"$2\"";
    if let Err(e) = run_quiet(
        "bash",
        &["-o", "pipefail", "-c", script, "bash", s(&root), s(out)],
    ) {
        panic!("making the initramfs (cpio is installed by scripts/test.sh): {e}");
    }
}

/// The names in a gzip-compressed newc cpio archive, or why it is not one: the gzip magic,
/// the newc magic `070701` once inflated, and `cpio -t` reading it to its trailer.
pub fn gzip_newc_names(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(format!("{}: no gzip magic", path.display()));
    }
    let inflated = Command::new("gzip")
        .args(["-dc", s(path)])
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !inflated.status.success() {
        return Err(format!("gzip -dc {}: {}", path.display(), inflated.status));
    }
    if !inflated.stdout.starts_with(b"070701") {
        return Err(format!("{}: not a newc cpio archive", path.display()));
    }
    let mut list = Command::new("cpio")
        .args(["--quiet", "-it"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cpio: {e}"))?;
    let mut stdin = list.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&inflated.stdout)
    });
    let out = list.wait_with_output().map_err(|e| e.to_string())?;
    feeder.join().unwrap().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cpio -t {}: {}", path.display(), err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

#[test]
fn a_bzimage_is_recognized_by_its_header_magic() {
    let mut image = vec![0u8; 0x300];
    assert!(!is_bzimage(&image));
    image[0x202..0x206].copy_from_slice(b"HdrS");
    assert!(is_bzimage(&image));
    assert!(!is_bzimage(b"short"));
}
