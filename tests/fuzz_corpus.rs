//! Replays the fuzz corpora kept in `fuzz/corpus/<target>/`, and the inputs of past crashes in
//! `fuzz/regressions/<target>/`, through the same checks as the cargo-fuzz targets
//! (`fuzz/src/lib.rs`): no input may make a parser panic or overflow its stack, and parsed
//! values must satisfy the targets' round-trip properties. Runs on stable, without libFuzzer.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(sub)
}

/// The entries of `dir`, sorted; none when it does not exist.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let corpus = sorted_entries(&fuzz_dir("corpus").join(target));
    assert!(!corpus.is_empty(), "empty corpus for {target}");
    let regressions = sorted_entries(&fuzz_dir("regressions").join(target));
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{target}: {}", file.display());
        check(&data);
    }
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        /// Every target has a test above, and every corpus or regression folder a target.
        #[test]
        fn every_corpus_has_a_test() {
            let tested = [$(stringify!($name)),*];
            let targets: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(targets, tested);
            for sub in ["corpus", "regressions"] {
                for dir in sorted_entries(&fuzz_dir(sub)) {
                    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    assert!(tested.contains(&name), "fuzz/{sub}/{name} has no target");
                }
            }
        }
    };
}

corpus_tests!(
    commit,
    dirtree,
    dirmeta,
    file_header,
    filez_header,
    ostreemeta,
    config,
    ref_file,
    detached,
    gvariant_value,
    gvariant_text,
    summary,
    sizes,
);
