//! Side-by-side benchmark of `rostree mount` against a checkout of the same commit on the
//! same disk, in one run, for each repo mode. Prints each measurement's best-of-N times and
//! the ratio to its target:
//!
//! - live: from spawning `rostree mount -d` until it has returned and the mountpoint
//!   answers (target: 50 ms, whatever the repository's size);
//! - read: warm sequential read of one large file, mount throughput / checkout throughput
//!   (target: at least 0.9);
//! - find: cold `find -printf '%s\n'` over the whole tree, page cache, dentries and inodes
//!   dropped before each, a fresh mount each time; mount time / checkout time (target: at
//!   most 1.5). The commit's metadata cache is present (built by an earlier mount, as any
//!   first mount of a commit builds it): the fresh mount reads it, cold, instead of every
//!   object's metadata. The same without it (`--no-meta-cache`) is shown for comparison;
//! - diff: cold `diff -r` of two commits sharing most of their tree, mounted (two mounts,
//!   and the two commits of one whole-repository mount) vs checked out; mount time /
//!   checkout time (target: at most 2), both commits' metadata caches present. Within one
//!   mount, diff skips the files both commits share without reading them: identical
//!   objects have one inode number there, as in a hardlinked checkout.
//!
//! Checkouts are full copies (`checkout -U -C`): the native side gets a fresh, compact
//! layout, not the repository's hardlinked objects.
//!
//! Run with `cargo bench --bench mount`, as root (it mounts and drops caches). Knobs:
//! `ROSTREE_BENCH_MOUNT_FILES` (default 100000, in folders of 100),
//! `ROSTREE_BENCH_MOUNT_BIG_MIB` (default 1024), `ROSTREE_BENCH_RUNS` (default 3),
//! `ROSTREE_BENCH_MODES` (default `bare-user,archive,bare`), `ROSTREE_BENCH_BIN` (another
//! `rostree` build to measure, e.g. an older commit's). Small run:
//! `ROSTREE_BENCH_MOUNT_FILES=5000 ROSTREE_BENCH_MOUNT_BIG_MIB=64 cargo bench --bench mount`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{env_num, run};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 bench paths")
}

/// A xorshift stream: deterministic data without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `files` small files (0–2 KB, half text-like), 100 per folder, two folder levels; the
/// `version` changes one file in a hundred, drops one folder and adds another, so two
/// versions share most of their tree.
fn generate_tree(root: &Path, files: usize, version: u32) {
    let mut noise = Noise(0x9e3779b97f4a7c15);
    for i in 0..files {
        let dir = root.join(format!("d{:03}/s{:05}", i / 10_000, i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let size = (noise.next() % 2048) as usize;
        let changed = version > 0 && i % 100 == 7;
        let data: Vec<u8> = if i % 2 == 0 {
            let line = format!("line {i} v{} of a text-like file\n", u32::from(changed));
            line.as_bytes().iter().cycle().take(size).copied().collect()
        } else {
            let seed = noise.next() ^ u64::from(changed);
            let mut n = Noise(seed | 1);
            (0..size).map(|_| n.next() as u8).collect()
        };
        std::fs::write(dir.join(format!("f{i}")), data).unwrap();
    }
    if version > 0 && files > 200 {
        std::fs::remove_dir_all(root.join("d000/s00001")).unwrap();
        std::fs::create_dir_all(root.join("added")).unwrap();
        std::fs::write(root.join("added/new"), b"new\n").unwrap();
    }
}

/// One file of `mib` MiB of incompressible bytes.
fn generate_big(root: &Path, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    let mut noise = Noise(0x2545f4914f6cdd1d);
    let mut data = vec![0u8; mib << 20];
    for chunk in data.chunks_mut(8) {
        let n = noise.next().to_le_bytes();
        chunk.copy_from_slice(&n[..chunk.len()]);
    }
    std::fs::write(root.join("big.bin"), data).unwrap();
}

fn drop_caches() {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (run as root)");
}

struct Bench {
    rostree: PathBuf,
    base: PathBuf,
    runs: usize,
    serial: std::cell::Cell<usize>,
}

impl Bench {
    fn tool(&self, repo: &Path) -> Command {
        let mut c = Command::new(&self.rostree);
        c.arg(format!("--repo={}", s(repo)));
        c
    }

    /// A fresh mountpoint path (never reused: a lazily detached mount may linger).
    fn mountpoint(&self) -> PathBuf {
        let n = self.serial.get();
        self.serial.set(n + 1);
        let p = self.base.join(format!("mnt-{n}"));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// `rostree mount -d ARGS MNT`; returns the time until it returned and MNT answered.
    fn mount(&self, repo: &Path, args: &[&str], mnt: &Path) -> Duration {
        let t = Instant::now();
        run(self.tool(repo).arg("mount").arg("-d").args(args).arg(mnt));
        let answered = std::fs::read_dir(mnt).map(|mut d| d.next().is_some());
        let elapsed = t.elapsed();
        assert!(matches!(answered, Ok(true)), "{} is empty", mnt.display());
        elapsed
    }

    fn umount(&self, mnt: &Path) {
        run(Command::new(&self.rostree).arg("umount").arg(mnt));
    }

    /// Has a mount of `rev` build its metadata cache, as a first mount does: mounts it,
    /// walks it, waits for the cache file, unmounts.
    fn build_meta_cache(&self, repo: &Path, rev: &str) {
        let commit = run(self.tool(repo).args(["rev-parse", rev]));
        let cache = repo.join("tmp/cache/rostree/meta").join(commit.trim());
        let _ = std::fs::remove_file(&cache);
        let mnt = self.mountpoint();
        self.mount(repo, &[rev], &mnt);
        timed(&mnt, "find . -printf ''");
        let start = Instant::now();
        while !cache.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "{} never written",
                cache.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.umount(&mnt);
    }

    fn best(&self, mut op: impl FnMut() -> Duration) -> Duration {
        (0..self.runs).map(|_| op()).min().unwrap_or_default()
    }
}

/// Time of a shell command run in `dir`, its output discarded; diff's exit status 1
/// ("different") counts as success.
fn timed(dir: &Path, script: &str) -> Duration {
    let t = Instant::now();
    let status = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdout(Stdio::null())
        .status()
        .expect("bash");
    let elapsed = t.elapsed();
    assert!(matches!(status.code(), Some(0 | 1)), "{script}: {status}");
    elapsed
}

/// Reads a file whole with a 1 MiB buffer, returning the time taken.
fn read_all(path: &Path) -> Duration {
    let t = Instant::now();
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
    t.elapsed()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One line: name, checkout time, mount time, ratio and whether it meets its target.
fn report(name: &str, native: Duration, mount: Duration, target: f64) {
    let ratio = secs(mount) / secs(native);
    let verdict = if ratio <= target { "ok" } else { "MISSED" };
    println!(
        "{name:<34} {:>9.3} s {:>9.3} s {ratio:>6.2}x  (target <= {target}x: {verdict})",
        secs(native),
        secs(mount),
    );
}

fn bench_mode(b: &Bench, mode: &str, trees: &[PathBuf; 3], files: usize, big_mib: usize) {
    let repo = b.base.join(format!("repo-{mode}"));
    run(b.tool(&repo).args(["init", &format!("--mode={mode}")]));
    for (branch, tree) in [("main", &trees[0]), ("main", &trees[1]), ("big", &trees[2])] {
        run(b
            .tool(&repo)
            .args(["commit", "--fsync=false", "-b", branch, s(tree)]));
    }
    let co = |rev: &str, name: &str| {
        let dest = b.base.join(format!("co-{mode}-{name}"));
        run(b
            .tool(&repo)
            .args(["checkout", "-U", "-C", "--fsync=false", rev, s(&dest)]));
        dest
    };
    let (co_old, co_new, co_big) = (co("main^", "old"), co("main", "new"), co("big", "big"));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "-- {mode}: {files} files; {big_mib} MiB file (load average {})",
        load.join(" ")
    );

    // (a) live, on the large repository.
    let live = b.best(|| {
        let mnt = b.mountpoint();
        let t = b.mount(&repo, &["main"], &mnt);
        b.umount(&mnt);
        t
    });
    println!(
        "{:<34} {:>11} {:>9.1} ms {:>7}  (target <= 50 ms: {})",
        "mount -d live",
        "",
        secs(live) * 1e3,
        "",
        if live <= Duration::from_millis(50) {
            "ok"
        } else {
            "MISSED"
        }
    );

    // (b) warm sequential read: served by the daemon and, where the kernel allows,
    // passed through to the object file.
    // Both sides warmed from disk after a drop: pages written by the checkout sit in the
    // cache in smaller folios and read at a different speed than pages read in.
    // Reads alternate between the sides, several per run: one takes well under a second,
    // so a moment's load on the machine would otherwise decide the ratio.
    let native_file = co_big.join("big.bin");
    drop_caches();
    read_all(&native_file);
    for (label, extra) in [
        ("", &[][..]),
        (" --no-passthrough", &["--no-passthrough"][..]),
    ] {
        let mnt = b.mountpoint();
        let mut args = extra.to_vec();
        args.push("big");
        b.mount(&repo, &args, &mnt);
        let file = mnt.join("big.bin");
        read_all(&file);
        let (mut native, mut mounted) = (Duration::MAX, Duration::MAX);
        for _ in 0..b.runs * 3 {
            native = native.min(read_all(&native_file));
            mounted = mounted.min(read_all(&file));
        }
        b.umount(&mnt);
        let gbs = |d: Duration| (big_mib as f64 / 1024.0) / secs(d);
        let ratio = gbs(mounted) / gbs(native);
        // The target is for the default mount; reads served by the daemon are shown for
        // comparison (and are what archive content larger than memory gets).
        let verdict = match (label.is_empty(), ratio >= 0.9) {
            (false, _) => "for comparison".to_string(),
            (true, ok) => format!("target >= 0.9x: {}", if ok { "ok" } else { "MISSED" }),
        };
        println!(
            "{:<34} {:>7.2} GB/s {:>7.2} GB/s {ratio:>6.2}x  ({verdict})",
            format!("warm read{label}"),
            gbs(native),
            gbs(mounted),
        );
    }

    // (c) cold find, alternating sides so that drift in the machine's load hits both; with
    // the commit's metadata cache (built by a first mount beforehand), then without it.
    let t = Instant::now();
    b.build_meta_cache(&repo, "main");
    b.build_meta_cache(&repo, "main^");
    println!(
        "{:<34} {:>11} {:>9.1} s",
        "(metadata caches built by mounts)",
        "",
        secs(t.elapsed())
    );
    let find = "find . -printf '%s\\n'";
    let (mut native, mut cached, mut uncached) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..b.runs {
        drop_caches();
        native = native.min(timed(&co_new, find));
        for (args, best) in [
            (&["main"][..], &mut cached),
            (&["--no-meta-cache", "main"][..], &mut uncached),
        ] {
            let mnt = b.mountpoint();
            b.mount(&repo, args, &mnt);
            drop_caches();
            *best = (*best).min(timed(&mnt, find));
            b.umount(&mnt);
        }
    }
    report("cold find -printf %s (meta cache)", native, cached, 1.5);
    println!(
        "{:<34} {:>9.3} s {:>9.3} s {:>6.2}x  (for comparison)",
        "the same, --no-meta-cache",
        secs(native),
        secs(uncached),
        secs(uncached) / secs(native),
    );

    // (d) cold diff -r of the two commits.
    let diff_pair = |a: &Path, b: &Path| {
        timed(
            Path::new("/"),
            &format!("diff -r --no-dereference {} {}", s(a), s(b)),
        )
    };
    let (mut native, mut two, mut one) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..b.runs {
        drop_caches();
        native = native.min(diff_pair(&co_old, &co_new));
        let (ma, mb) = (b.mountpoint(), b.mountpoint());
        b.mount(&repo, &["main^"], &ma);
        b.mount(&repo, &["main"], &mb);
        drop_caches();
        two = two.min(diff_pair(&ma, &mb));
        b.umount(&ma);
        b.umount(&mb);
        let whole = b.mountpoint();
        b.mount(&repo, &[], &whole);
        drop_caches();
        // history/main/N are symlinks into commits/: diff the directories they name.
        let commit = |n: &str| whole.join("history/main").join(n).canonicalize().unwrap();
        one = one.min(diff_pair(&commit("1"), &commit("0")));
        b.umount(&whole);
    }
    report("cold diff -r (two mounts)", native, two, 2.0);
    report("cold diff -r (one repository mount)", native, one, 2.0);
}

fn main() {
    let files = env_num("ROSTREE_BENCH_MOUNT_FILES", 100_000);
    let big_mib = env_num("ROSTREE_BENCH_MOUNT_BIG_MIB", 1024);
    let runs = env_num("ROSTREE_BENCH_RUNS", 3).max(1);
    let modes =
        std::env::var("ROSTREE_BENCH_MODES").unwrap_or_else(|_| "bare-user,archive,bare".into());
    let base = std::env::temp_dir().join("rostree-bench-mount");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let b = Bench {
        rostree: support::rostree_bin(),
        base: base.clone(),
        runs,
        serial: std::cell::Cell::new(0),
    };
    let trees = [
        base.join("tree-0"),
        base.join("tree-1"),
        base.join("tree-big"),
    ];
    generate_tree(&trees[0], files, 0);
    generate_tree(&trees[1], files, 1);
    generate_big(&trees[2], big_mib);
    println!(
        "{:<34} {:>11} {:>11} {:>7}",
        "operation", "checkout", "mount", "ratio"
    );
    for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        bench_mode(&b, mode, &trees, files, big_mib);
        let _ = std::fs::remove_dir_all(base.join(format!("repo-{mode}")));
        for entry in std::fs::read_dir(&base).unwrap().flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(&format!("co-{mode}-")) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
