//! Pull benchmark: rostree vs the `ostree` oracle pulling the same generated archive
//! repository from the same local nginx into fresh bare-user repositories, in one run.
//! Prints the times and their ratio (ostree / rostree: above 1 means rostree is faster),
//! then the bytes an incremental pull (1% of the files changed) transfers against a full
//! one, counted from nginx's access log.
//!
//! Run with `cargo bench --bench pull` (env `ROSTREE_BENCH_FILES`, default 20000;
//! `ROSTREE_BENCH_BIN`, another `rostree` build to measure; `ROSTREE_BENCH_DIR`).

#[path = "../tests/common/nginx.rs"]
#[allow(dead_code)]
mod nginx;

use std::path::Path;
use std::time::{Duration, Instant};

mod support;
use support::{TreeShape, generate_tree, run, tool};

/// For the nginx helper: as root, its workers must run as root to read private dirs.
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Body bytes nginx sent, summed over its access log (combined format, field 10).
fn bytes_sent(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split('"')
                .nth(2)?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn main() {
    let files = std::env::var("ROSTREE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rostree = support::rostree_bin();
    let rostree = rostree.to_str().unwrap();
    let ostree = "ostree";
    let base = support::work_dir("rostree-bench-pull");
    let _ = std::fs::remove_dir_all(&base);
    let www = base.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let tree = base.join("tree");
    let served = www.join("repo");
    let shape = TreeShape {
        modes_and_links: false,
        generation: Some(1),
    };
    generate_tree(&tree, files, &shape);
    run(tool(ostree, &served).args(["init", "--mode=archive"]));
    run(tool(ostree, &served).args(["commit", "-b", "main", tree.to_str().unwrap()]));
    let server = nginx::Nginx::serve(&www, &base.join("nginx"));
    let url = format!("{}/repo", server.base);
    println!("archive repository of {files} files served by nginx at {url}");

    let mut full = Vec::new();
    let mut full_bytes = Vec::new();
    let mut repos = Vec::new();
    for (b, bin) in [ostree, rostree].into_iter().enumerate() {
        let repo = base.join(format!("local-{b}"));
        run(tool(bin, &repo).args(["init", "--mode=bare-user"]));
        run(tool(bin, &repo).args(["remote", "add", "--no-gpg-verify", "origin", &url]));
        let before = bytes_sent(&server.access_log);
        let t = Instant::now();
        run(tool(bin, &repo).args(["pull", "origin", "main"]));
        full.push(t.elapsed());
        full_bytes.push(bytes_sent(&server.access_log) - before);
        repos.push(repo);
    }
    let secs = |d: &Duration| d.as_secs_f64();
    println!(
        "{:<34} {:>10} {:>10} {:>8}",
        "operation", "ostree", "rostree", "ratio"
    );
    println!(
        "{:<34} {:>8.3} s {:>8.3} s {:>7.2}x",
        "pull (full, into bare-user)",
        secs(&full[0]),
        secs(&full[1]),
        secs(&full[0]) / secs(&full[1])
    );

    // A second commit changing 1% of the files: only those and their trees move.
    let shape = TreeShape {
        modes_and_links: false,
        generation: Some(2),
    };
    generate_tree(&tree, files, &shape);
    run(tool(ostree, &served).args(["commit", "-b", "main", tree.to_str().unwrap()]));
    for (b, bin) in [ostree, rostree].into_iter().enumerate() {
        let before = bytes_sent(&server.access_log);
        let t = Instant::now();
        run(tool(bin, &repos[b]).args(["pull", "origin", "main"]));
        let elapsed = t.elapsed();
        let sent = bytes_sent(&server.access_log) - before;
        println!(
            "{:<34} {:>8.3} s; {} of {} bytes ({:.2}% of the full pull)",
            format!("pull (1% changed) by {bin}").replace(rostree, "rostree"),
            secs(&elapsed),
            sent,
            full_bytes[b],
            100.0 * sent as f64 / full_bytes[b] as f64
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&base);
}
