#!/usr/bin/env bash
# The main job on a sample the script makes: build rostree, generate a small OS-like tree,
# commit two versions to a repository, then list, log, diff, check out, fsck and mount them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
R="$PWD/target/release/rostree"
work="${1:-$(mktemp -d /tmp/rostree-demo.XXXXXX)}"
mkdir -p "$work"
cd "$work"
rm -rf repo tree checkout

mkdir -p tree/usr/bin tree/usr/lib tree/usr/etc tree/usr/share/doc
echo 'NAME="Demo OS"' > tree/usr/etc/os-release
printf '#!/bin/sh\necho hello from demo\n' > tree/usr/bin/hello
chmod 755 tree/usr/bin/hello
for i in $(seq 1 200); do echo "library $i" > "tree/usr/lib/lib$i.so"; done
ln -s ../lib/lib1.so tree/usr/bin/lib-link
echo "Hello world!" > tree/usr/share/doc/README

set -x
"$R" --repo=repo init --mode=bare-user
"$R" --repo=repo commit --branch=demo/stable -s "Demo 1.0" --add-metadata-string=version=1.0 tree/
echo "library 7, patched" > tree/usr/lib/lib7.so
rm tree/usr/lib/lib9.so
echo new > tree/usr/share/doc/NEWS
"$R" --repo=repo commit --branch=demo/stable -s "Demo 1.1" --add-metadata-string=version=1.1 tree/
"$R" --repo=repo refs
"$R" --repo=repo log demo/stable
"$R" --repo=repo ls demo/stable /usr/bin
"$R" --repo=repo cat demo/stable /usr/share/doc/README
"$R" --repo=repo diff demo/stable^ demo/stable
"$R" --repo=repo checkout -U demo/stable checkout
"$R" --repo=repo fsck
set +x
echo "Demo repository and checkout are in $work"

# Mount the latest commit read-only (needs /dev/fuse; as root, or with fusermount3).
if [ -e /dev/fuse ]; then
  mkdir -p mnt
  "$R" umount mnt 2>/dev/null || true
  if "$R" --repo=repo mount -d demo/stable mnt; then
    echo
    echo "demo/stable is mounted read-only at $work/mnt: browse it with"
    echo "  ls -l $work/mnt/usr/bin; cat $work/mnt/usr/share/doc/README"
    echo "and unmount it with: $R umount $work/mnt"
  fi
else
  echo "(no /dev/fuse here: skipping the sample mount)"
fi
