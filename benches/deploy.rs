//! Side-by-side benchmark of deployments: `rostree admin deploy` vs `ostree admin deploy` of
//! the same 20,000-file bootable commit, then `undeploy` + `cleanup`, each tool on its own
//! sysroot on the same disk. Prints best-of-N times and ratios (ostree / rostree). Needs
//! root (deployments keep file owners and set the immutable flag).
//!
//! Run with `cargo bench --bench deploy` (env `ROSTREE_BENCH_FILES`, default 20000, and
//! `ROSTREE_BENCH_RUNS`, default 3).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{env_num, run};

/// A bootable tree: `files` small files under /usr, /usr/etc defaults, a kernel.
fn generate_os(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("usr/share/d{:03}", i % 500));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i}")),
            format!("file {i}\n").repeat(i % 40 + 1),
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join("usr/etc")).unwrap();
    std::fs::write(root.join("usr/etc/app.conf"), "default\n").unwrap();
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::write(root.join("usr/lib/os-release"), "NAME=Bench\nID=bench\n").unwrap();
    let modules = root.join("usr/lib/modules/6.1.0-bench");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(modules.join("vmlinuz"), vec![0x4b; 8 << 20]).unwrap();
    std::fs::write(modules.join("initramfs.img"), vec![0x49; 16 << 20]).unwrap();
}

fn tool(bin: &str) -> Command {
    Command::new(bin)
}

/// A sysroot with the OS committed as `bench/stable`, ready to deploy.
fn sysroot(base: &Path, name: &str, tree: &Path) -> PathBuf {
    let sysroot = base.join(name);
    std::fs::create_dir_all(&sysroot).unwrap();
    let sr = format!("--sysroot={}", sysroot.display());
    run(tool("ostree").args(["admin", "init-fs", sysroot.to_str().unwrap()]));
    run(tool("ostree").args(["admin", "os-init", &sr, "bench"]));
    let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
    run(tool("ostree").args([
        &repo,
        "commit",
        "-b",
        "bench/stable",
        tree.to_str().unwrap(),
    ]));
    sysroot
}

/// Deployments are immutable: clear the flag before deleting the benchmark's files.
fn clear_immutable(base: &Path) {
    let _ = Command::new("chattr")
        .args(["-R", "-f", "-i"])
        .arg(base)
        .stderr(std::process::Stdio::null())
        .status();
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        println!("deploy benchmark skipped: it needs root (file owners, immutable flags)");
        return;
    }
    let files = env_num("ROSTREE_BENCH_FILES", 20_000);
    let runs = env_num("ROSTREE_BENCH_RUNS", 3);
    let rostree = env!("CARGO_BIN_EXE_rostree");
    let base = support::work_dir("rostree-bench-deploy");
    clear_immutable(&base);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let tree = base.join("tree");
    generate_os(&tree, files);
    println!(
        "tree: {files} files, kernel and initramfs, in {}",
        tree.display()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "operation", "ostree", "rostree", "ratio"
    );
    let mut deploy = [Duration::MAX; 2];
    let mut remove = [Duration::MAX; 2];
    for i in 0..runs {
        for (b, bin) in ["ostree", rostree].into_iter().enumerate() {
            let sysroot = sysroot(&base, &format!("sysroot-{b}-{i}"), &tree);
            let sr = format!("--sysroot={}", sysroot.display());
            // Each tool deploys twice (the second deploy merges /etc from the first), then
            // undeploys one and cleans up.
            run(tool(bin).args(["admin", "deploy", &sr, "--os=bench", "bench/stable"]));
            let t = timed(|| {
                run(tool(bin).args([
                    "admin",
                    "deploy",
                    &sr,
                    "--os=bench",
                    "--retain",
                    "bench/stable",
                ]));
            });
            deploy[b] = deploy[b].min(t);
            let t = timed(|| {
                run(tool(bin).args(["admin", "undeploy", &sr, "1"]));
                run(tool(bin).args(["admin", "cleanup", &sr]));
            });
            remove[b] = remove[b].min(t);
        }
    }
    for (name, t) in [
        ("deploy (20k files)", deploy),
        ("undeploy + cleanup", remove),
    ] {
        println!(
            "{name:<28} {:>10.3} s {:>10.3} s {:>7.2}x",
            t[0].as_secs_f64(),
            t[1].as_secs_f64(),
            t[0].as_secs_f64() / t[1].as_secs_f64()
        );
    }
    clear_immutable(&base);
    let _ = std::fs::remove_dir_all(&base);
}
