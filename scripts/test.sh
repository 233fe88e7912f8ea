#!/usr/bin/env bash
# The whole test suite: installs what the tests need (the `ostree` oracle, fuse3, attr,
# nginx, gnupg, openssl and strace for the pull and signature tests, debootstrap and cpio for
# the real-OS deploy test), then runs every unit and end-to-end test of the workspace. CI runs
# exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_updated=
apt_install() {
  echo "installing: $*"
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  apt-get install -y -qq "$@" >/dev/null
}

need=()
command -v ostree >/dev/null || need+=(ostree)
command -v setfattr >/dev/null || need+=(attr)
command -v fusermount3 >/dev/null || need+=(fuse3)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v gpg >/dev/null || need+=(gnupg)
command -v gpgv >/dev/null || need+=(gpgv)
command -v openssl >/dev/null || need+=(openssl)
command -v cpio >/dev/null || need+=(cpio)
command -v strace >/dev/null || need+=(strace)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
# Optional: without it (or without a reachable mirror) the real-OS test uses a smaller tree.
[ -x /usr/sbin/debootstrap ] || apt_install debootstrap ||
  echo "debootstrap not installed: the real-OS deploy test will fall back to the host's shell"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --release --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "rostree: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
