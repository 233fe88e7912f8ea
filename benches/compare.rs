//! Side-by-side benchmark: rostree vs the `ostree` oracle on the same generated tree, same
//! disk, same settings, in one run. Prints each operation's best-of-N times and the ratio
//! (ostree time / rostree time: above 1 means rostree is faster).
//!
//! Run with `cargo bench --bench compare` (env `ROSTREE_BENCH_FILES`, default 20000,
//! `ROSTREE_BENCH_RUNS`, default 3, and `ROSTREE_BENCH_DIR`, the folder to work in, default
//! the temporary folder; `ROSTREE_BENCH_BIN`, another `rostree` build to measure).
//!
//! Run it on a quiet machine, and not within ~6 minutes of a mass deletion on the same
//! filesystem (another benchmark's clean-up, a test suite): ext4 without a journal skips
//! recently freed inodes by scanning past each of them on every inode allocation, which
//! can double both tools' commit times (perf shows `recently_deleted` at the top).

use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{TreeShape, env_num, generate_tree, load_average, run, tool};

fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Times `op` `runs` times after `setup` (both given the run number), returning the best.
/// Runs write to fresh paths rather than deleting the previous run's output: ext4 makes
/// inode allocation slow right after mass deletion, which would punish whoever runs next.
fn best_of<S, O>(
    runs: usize,
    mut setup: impl FnMut(usize) -> S,
    mut op: impl FnMut(usize) -> O,
) -> Duration {
    (0..runs)
        .map(|i| {
            setup(i);
            let t = Instant::now();
            op(i);
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let files = env_num("ROSTREE_BENCH_FILES", 20_000);
    let runs = env_num("ROSTREE_BENCH_RUNS", 3);
    let rostree = support::rostree_bin();
    let rostree = rostree.to_str().unwrap();
    let ostree = "ostree";
    let base = support::work_dir("rostree-bench");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let tree = base.join("tree");
    let shape = TreeShape {
        modes_and_links: true,
        generation: None,
    };
    generate_tree(&tree, files, &shape);
    println!("tree: {files} files in {}", tree.display());
    println!("load average: {}", load_average());
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "operation", "ostree", "rostree", "ratio"
    );

    let report = |name: &str, t_ostree: Duration, t_rostree: Duration| {
        println!(
            "{name:<28} {:>10.3} s {:>10.3} s {:>7.2}x",
            t_ostree.as_secs_f64(),
            t_rostree.as_secs_f64(),
            t_ostree.as_secs_f64() / t_rostree.as_secs_f64()
        );
    };

    for mode in ["bare-user", "archive"] {
        let mut times = Vec::new();
        for (b, bin) in [ostree, rostree].into_iter().enumerate() {
            let repo = |i: usize| base.join(format!("commit-{mode}-{b}-{i}"));
            let t = best_of(
                runs,
                |i| run(tool(bin, &repo(i)).args(["init", &format!("--mode={mode}")])),
                |i| run(tool(bin, &repo(i)).args(["commit", "-b", "main", tree.to_str().unwrap()])),
            );
            times.push(t);
        }
        report(&format!("commit ({mode})"), times[0], times[1]);
    }

    // Checkout -U and fsck run on one bare-user repo written by ostree.
    let repo = base.join("shared");
    run(tool(ostree, &repo).args(["init", "--mode=bare-user"]));
    run(tool(ostree, &repo).args(["commit", "-b", "main", tree.to_str().unwrap()]));
    let mut times = Vec::new();
    for (b, bin) in [ostree, rostree].into_iter().enumerate() {
        let dest = |i: usize| base.join(format!("checkout-{b}-{i}"));
        times.push(best_of(
            runs,
            |_| {},
            |i| run(tool(bin, &repo).args(["checkout", "-U", "main", dest(i).to_str().unwrap()])),
        ));
    }
    report("checkout -U (bare-user)", times[0], times[1]);

    for mode in ["bare-user", "archive"] {
        let repo = base.join(format!("fsck-{mode}"));
        run(tool(ostree, &repo).args(["init", &format!("--mode={mode}")]));
        run(tool(ostree, &repo).args(["commit", "-b", "main", tree.to_str().unwrap()]));
        let mut times = Vec::new();
        for bin in [ostree, rostree] {
            times.push(best_of(runs, |_| {}, |_| run(tool(bin, &repo).arg("fsck"))));
        }
        report(&format!("fsck ({mode}, warm)"), times[0], times[1]);
        let mut times = Vec::new();
        for bin in [ostree, rostree] {
            times.push(best_of(
                runs,
                |_| drop_caches(),
                |_| run(tool(bin, &repo).arg("fsck")),
            ));
        }
        report(&format!("fsck ({mode}, cold)"), times[0], times[1]);
    }
    println!("load average: {}", load_average());
    let _ = std::fs::remove_dir_all(&base);
}
