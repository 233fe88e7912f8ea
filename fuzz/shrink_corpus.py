#!/usr/bin/env python3
"""Shrinks fuzz/corpus/TARGET to at most CAP files keeping as much edge coverage as possible.

`cargo fuzz cmin` keeps every file that adds a feature (edge hit counts included), which is
too many to keep in the repository. This measures each file's edge coverage alone (one
libFuzzer inner merge per file, with -use_counters=0), then picks files greedily: the real
ostree seed with the most edges first (files whose name is not a 40-hex libFuzzer name), then
whichever adds the most new edges, smaller first on ties.

Usage, from fuzz/ after `cargo +nightly fuzz build -s none TARGET`:
    python3 shrink_corpus.py TARGET [CAP=40] [EXTRA_DIR...]
EXTRA_DIRs (for example a larger corpus from a long run) are candidates too.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile


def edges_of(binary, path, tmp):
    ctl = os.path.join(tmp, "one.ctl")
    with open(ctl, "w") as f:
        f.write(f"1\n0\n{path}\n")
    subprocess.run(
        [binary, f"-merge_control_file={ctl}", "-merge_inner=1", "-use_counters=0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    cov, ft = set(), set()
    for line in open(ctl):
        parts = line.split()
        if parts[:1] == ["COV"]:
            cov = set(parts[2:])
        elif parts[:1] == ["FT"]:
            ft = set(parts[2:])
    return cov, ft


def main():
    target = sys.argv[1]
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    here = os.path.dirname(os.path.abspath(__file__))
    binary = os.path.join(here, "target/x86_64-unknown-linux-gnu/release", target)
    corpus = os.path.join(here, "corpus", target)
    dirs = [corpus] + sys.argv[3:]
    files = {}
    for d in dirs:
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                files.setdefault(f.read(), name)
    with tempfile.TemporaryDirectory() as tmp:
        info = []
        for i, (data, name) in enumerate(files.items()):
            path = os.path.join(tmp, f"in{i}")
            with open(path, "wb") as f:
                f.write(data)
            cov, ft = edges_of(binary, path, tmp)
            seed = not re.fullmatch(r"[0-9a-f]{40}", name)
            info.append((name, data, cov, ft, seed))
    chosen, got, got_ft = [], set(), set()
    seeds = [x for x in info if x[4]]
    if seeds:
        first = max(seeds, key=lambda x: (len(x[2]), -len(x[1])))
        chosen.append(first)
        got |= first[2]
        got_ft |= first[3]
    while len(chosen) < cap:
        rest = [x for x in info if x not in chosen]
        if not rest:
            break
        best = max(rest, key=lambda x: (len(x[2] - got), len(x[3] - got_ft), x[4], -len(x[1])))
        if not (best[2] - got or best[3] - got_ft):
            break
        chosen.append(best)
        got |= best[2]
        got_ft |= best[3]
    total = set().union(*(x[2] for x in info)) if info else set()
    shutil.rmtree(corpus)
    os.makedirs(corpus)
    for name, data, *_ in chosen:
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    size = sum(len(x[1]) for x in chosen)
    print(f"{target}: kept {len(chosen)} of {len(info)} files, {size} bytes, "
          f"edges {len(got)}/{len(total)}")


if __name__ == "__main__":
    main()
