//! A real userland for the real-OS test: Debian's `minbase` made by `debootstrap` from the
//! mirror apt is configured with, kept as a tarball in a cache directory between runs; where
//! no mirror can be reached, the host's `/bin/sh` and `cat` with their shared libraries.

use crate::common::mount::s;
use crate::common::write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the cache directory.
pub const CACHE_ENV: &str = "ROSTREE_TEST_CACHE";

/// The cache directory when [`CACHE_ENV`] is unset.
pub const DEFAULT_CACHE: &str = "/var/cache/rostree-tests";

/// The environment variable naming a mirror to use instead of apt's (an unreachable one
/// exercises the fallback).
pub const MIRROR_ENV: &str = "ROSTREE_TEST_MIRROR";

/// A root filesystem as a distribution ships it (`/etc` at the top), and what it is.
pub struct Userland {
    /// Its root directory.
    pub root: PathBuf,
    /// `debian-<suite>-minbase`, or `host-shell` for the fallback.
    pub kind: String,
}

/// Debian's minbase for the host's release (from the cache, else made now and cached), or
/// the host's shell where it cannot be had; says which, and why.
pub fn real_userland(base: &Path) -> Userland {
    match debian_minbase(base) {
        Ok(userland) => userland,
        Err(why) => {
            println!(
                "no Debian userland: {why}; falling back to the host's /bin/sh and cat with \
                 their shared libraries"
            );
            host_shell(base)
        }
    }
}

/// Where debootstrap results are kept between runs.
pub fn cache_dir() -> PathBuf {
    std::env::var_os(CACHE_ENV).map_or_else(|| PathBuf::from(DEFAULT_CACHE), PathBuf::from)
}

fn debian_minbase(base: &Path) -> Result<Userland, String> {
    let codename = host_codename().ok_or("the host is not a Debian release")?;
    let mirror = match std::env::var(MIRROR_ENV) {
        Ok(mirror) => mirror,
        Err(_) => debian_mirror(&apt_sources_text(), &codename)
            .ok_or_else(|| format!("apt has no mirror for '{codename}' configured"))?,
    };
    let arch = run_quiet("dpkg", &["--print-architecture"])
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("dpkg --print-architecture: {e}"))?;
    let kind = format!("debian-{codename}-minbase");
    let root = base.join(&kind);
    let tarball = cache_dir().join(format!("{kind}-{arch}.tar.gz"));
    if tarball.is_file() {
        match tar(&["-xpzf", s(&tarball), "-C", s(&make_dir(&root))]) {
            Ok(()) => {
                println!("using the cached {}", tarball.display());
                return Ok(Userland { root, kind });
            }
            Err(e) => {
                println!(
                    "the cache {} is unreadable ({e}): making it again",
                    tarball.display()
                );
                let _ = std::fs::remove_file(&tarball);
                let _ = std::fs::remove_dir_all(&root);
            }
        }
    }
    let debootstrap = find_program("debootstrap")
        .ok_or("debootstrap is not installed (scripts/test.sh installs it)")?;
    // A short probe first: debootstrap itself retries for many minutes on a dead network.
    let release = format!("{mirror}/dists/{codename}/Release");
    run_quiet(
        "wget",
        &["-nv", "-T", "15", "-t", "2", "-O", "/dev/null", &release],
    )
    .map_err(|e| format!("the package mirror cannot be reached ({release}: {e})"))?;
    println!("debootstrap --variant=minbase {codename} from {mirror} (cached afterwards)");
    let args = [
        "900",
        s(&debootstrap),
        "--variant=minbase",
        &format!("--arch={arch}"),
        &codename,
        s(&root),
        &mirror,
    ];
    if let Err(e) = run_quiet("timeout", &args) {
        unmount_below(&root);
        return Err(format!("debootstrap failed: {e}"));
    }
    save_to_cache(&root, &tarball);
    Ok(Userland { root, kind })
}

/// Detaches what a killed or failed debootstrap left mounted in its target (`/proc`, `/sys`),
/// deepest first, so no mount outlives the test.
fn unmount_below(root: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

/// Writes the tarball next to its final name, then renames it: a run killed midway, or two
/// runs at once, never leave a partial cache.
pub fn save_to_cache(root: &Path, tarball: &Path) {
    let dir = tarball.parent().unwrap();
    let partial = tarball.with_extension(format!("partial-{}", std::process::id()));
    let saved = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| tar(&["-czf", s(&partial), "-C", s(root), "."]))
        .and_then(|()| std::fs::rename(&partial, tarball).map_err(|e| e.to_string()));
    match saved {
        Ok(()) => println!("cached as {}", tarball.display()),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            println!("not cached ({}): {e}", dir.display());
        }
    }
}

/// GNU tar keeping numeric owners and every xattr (file capabilities among them).
pub fn tar(args: &[&str]) -> Result<(), String> {
    let mut all = vec!["--numeric-owner", "--xattrs", "--xattrs-include=*"];
    all.extend_from_slice(args);
    run_quiet("tar", &all).map(drop)
}

/// The fallback: `/bin/sh` and `/bin/cat` of the host with every library `ldd` names, the
/// host's top-level symlinks (`/bin -> usr/bin` and the like) and its `os-release`.
fn host_shell(base: &Path) -> Userland {
    let root = base.join("host-shell");
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        if let Ok(target) = std::fs::read_link(Path::new("/").join(top))
            && target.is_relative()
        {
            make_dir(&root.join(&target));
            std::os::unix::fs::symlink(&target, root.join(top)).unwrap();
        }
    }
    for program in ["/bin/sh", "/bin/cat"] {
        let libs = run_quiet("ldd", &[program]).unwrap_or_else(|e| panic!("ldd {program}: {e}"));
        for file in std::iter::once(program).chain(ldd_paths(&libs)) {
            let dest = root.join(file.trim_start_matches('/'));
            make_dir(dest.parent().unwrap());
            std::fs::copy(file, &dest).unwrap_or_else(|e| panic!("copying {file}: {e}"));
        }
    }
    let os_release = std::fs::read("/usr/lib/os-release")
        .or_else(|_| std::fs::read("/etc/os-release"))
        .expect("the host has an os-release");
    write(&root.join("usr/lib/os-release"), &os_release);
    make_dir(&root.join("etc"));
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    for dir in ["dev", "proc", "sys", "run", "tmp", "var"] {
        make_dir(&root.join(dir));
    }
    Userland {
        root,
        kind: "host-shell".to_string(),
    }
}

/// The absolute paths `ldd` prints: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and the
/// loader's `/lib64/ld-linux-x86-64.so.2 (0x...)`.
pub fn ldd_paths(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter_map(|line| {
        let path = line.rsplit_once("=> ").map_or(line.trim(), |(_, p)| p);
        path.split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
    })
}

/// The first `deb` source of apt's configuration whose suites include `codename`, without a
/// trailing slash. `text` is every sources file, one-line (`sources.list`) and deb822
/// (`.sources`) alike, as [`apt_sources_text`] joins them.
pub fn debian_mirror(text: &str, codename: &str) -> Option<String> {
    let one_line = text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "deb" {
            return None;
        }
        let mut uri = words.next()?;
        // Options: `[arch=amd64 signed-by=...]`, possibly over several words.
        if uri.starts_with('[') {
            while !uri.ends_with(']') {
                uri = words.next()?;
            }
            uri = words.next()?;
        }
        (words.next()? == codename).then_some(uri)
    });
    let deb822 = || {
        text.split("\n\n").find_map(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let is_deb = field("Types")?.split_whitespace().any(|t| t == "deb");
            let enabled = field("Enabled").is_none_or(|v| v != "no");
            let suites = field("Suites")?;
            let has_suite = suites.split_whitespace().any(|s| s == codename);
            (is_deb && enabled && has_suite).then(|| field("URIs")?.split_whitespace().next())?
        })
    };
    one_line
        .or_else(deb822)
        .map(|uri| uri.trim_end_matches('/').to_string())
}

/// Every file of apt's sources, joined with blank lines between them.
fn apt_sources_text() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let texts = files.iter().filter_map(|f| std::fs::read_to_string(f).ok());
    texts.collect::<Vec<_>>().join("\n\n")
}

/// `VERSION_CODENAME` of a Debian host.
pub fn host_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    };
    (field("ID")? == "debian").then(|| field("VERSION_CODENAME"))?
}

/// A program on `PATH` or in the sbin directories (root's tools, absent from some `PATH`s).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Runs a program; its stdout, or why it failed (the last lines it printed).
pub fn run_quiet(program: &str, args: &[&str]) -> Result<String, String> {
    run_command(Command::new(program).args(args))
}

/// Runs a command; its stdout, or why it failed (the last lines it printed).
pub fn run_command(command: &mut Command) -> Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    // debootstrap says what went wrong on stdout, most tools on stderr.
    let said = if out.stderr.is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let err = String::from_utf8_lossy(said);
    let tail: Vec<&str> = err.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{} ({})", tail.join(" / "), out.status))
}

/// Creates `dir` and its parents (panicking with its path if it cannot); returns it.
pub fn make_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir.to_path_buf()
}

#[test]
fn apt_sources_name_the_mirror_of_a_release() {
    let one_line = "# deb http://old.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n\
                    deb http://mirror.example/debian-security bookworm-security main\n";
    assert_eq!(
        debian_mirror(one_line, "bookworm").as_deref(),
        Some("http://mirror.example/debian")
    );
    let deb822 = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
                  Types: deb\n# http://comment.example/debian\nURIs: http://a.example/debian\n\
                  Suites: bookworm bookworm-updates\nComponents: main\n\n\
                  Types: deb\nURIs: http://b.example/debian-security\nSuites: bookworm-security\n";
    assert_eq!(
        debian_mirror(deb822, "bookworm").as_deref(),
        Some("http://a.example/debian")
    );
    assert_eq!(debian_mirror(deb822, "trixie"), None);
    let disabled = "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n";
    assert_eq!(debian_mirror(disabled, "bookworm"), None);
}

#[test]
fn ldd_output_names_every_library_and_the_loader() {
    let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
               \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
               \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
    let paths: Vec<&str> = ldd_paths(out).collect();
    assert_eq!(
        paths,
        [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
}
