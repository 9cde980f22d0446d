#!/usr/bin/env bash
# make bench-vs-upstream: ours and oracle/bpftune side by side on Debian 12's 6.1 (bench/vs-upstream.ts).
#
# 1. Builds the reference (oracle/bpftune, the tarball in /work/shared/anchors) on this host, which
#    is Debian 12 like the guest (same libbpf1, libnl, glibc), and caches the build in
#    $VM_CACHE/reference-<key>/, key = the tarball's hash, the build-dependency versions and the
#    recipe below. Only its daemon and tuners are built (not its docs or tests).
# 2. Boots the bench variant of the test VM (test/vm/vm.sh, VM_IMAGE=bench) with the build on the
#    payload disk; the guest installs it and runs dist/bench/vs-upstream.js (VM_PARTS=bench).
# 3. Writes the guest's report to bench/results/vs-upstream-<kernel>.md, headed by how it ran
#    (KVM or TCG).
#
# KERNEL (default 6.1); VS_ROUNDS, VS_BLOCKS, VS_SECONDS, VS_IDLE_SECONDS, VS_TRIALS, VS_PHASES
# are passed to the guest (bench/vs-upstream.ts lists them all); VS_REPORT writes the report elsewhere.
# Needs root. Run it niced on a shared machine: nice -n 10 make ...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
KERNEL=${KERNEL:-6.1}
VM_CACHE=${VM_CACHE:-/var/cache/bpftune-vm}
TARBALL=${BPFTUNE_REFERENCE_TARBALL:-/work/shared/anchors/oracle-bpftune-d5d9f60.tar.gz}
BUILD_DEPS=(libbpf-dev libcap-dev libnl-3-dev libnl-route-3-dev libelf-dev zlib1g-dev clang llvm bpftool make gcc pkg-config)
LABEL=${VM_RUN_LABEL:-vs-upstream}

log() { printf 'vs-upstream: %s\n' "$*" >&2; }
die() { printf 'vs-upstream: error: %s\n' "$*" >&2; exit 1; }

[ -f "$TARBALL" ] || die "no reference tarball at $TARBALL (BPFTUNE_REFERENCE_TARBALL)"

missing=()
for p in "${BUILD_DEPS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "run as root to install: ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${missing[@]}" >/dev/null
fi

# build recipe start
build_reference() {
  local out=$1 src
  src=$(mktemp -d /tmp/bpftune-reference.XXXXXX)
  tar -xzf "$TARBALL" -C "$src" --strip-components=1
  # Installed in the guest under /usr/lib64 (its built-in tuner directory is compiled in).
  make -C "$src/src" -j"$(nproc)" prefix=/usr libdir=lib64 BPFTUNE_VERSION="$(basename "$TARBALL" .tar.gz)" >"$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log" >&2; rm -rf "$src"; return 1; }
  cp -a "$src/src/bpftune" "$src"/src/libbpftune.so* "$src"/src/*_tuner.so "$out/"
  basename "$TARBALL" .tar.gz > "$out/VERSION"
  rm -rf "$src"
}
# build recipe end

key=$({ sha256sum < "$TARBALL"; dpkg-query -W "${BUILD_DEPS[@]}"; sed -n '/^# build recipe start/,/^# build recipe end/p' "$0"; } | sha256sum | cut -c1-16)
ref="$VM_CACHE/reference-$key"
if [ -x "$ref/bpftune" ]; then
  log "reference build $ref (cached)"
else
  mkdir -p "$VM_CACHE"
  tmp=$(mktemp -d "$VM_CACHE/.reference-$key.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "building the reference from $TARBALL"
  t0=$(date +%s)
  build_reference "$tmp" || die "the reference did not build (log above)"
  mv -T "$tmp" "$ref"
  trap - EXIT
  log "reference built in $(( $(date +%s) - t0 )) s: $ref"
fi

rc=0
VM_IMAGE=bench VM_PARTS=bench VM_EXTRA_PAYLOAD="$ref" VM_RUN_LABEL="$LABEL" "$REPO/test/vm/vm.sh" run "$KERNEL" || rc=$?
raw="$REPO/test/vm/results/raw/$KERNEL-$LABEL"
out=${VS_REPORT:-$REPO/bench/results/vs-upstream-$KERNEL.md}
accel=$(cat "$raw/accel" 2>/dev/null || echo unknown)
{
  tr -d '\r' < "$raw/results.log" | sed -n 's/^REPORT //p' | sed -n '1p'
  echo
  echo "Written by \`make bench-vs-upstream\` (bench/vs-upstream.sh, bench/vs-upstream.ts) from a VM run on Debian 12, kernel \`$KERNEL\`; raw guest output in \`test/vm/results/raw/$KERNEL-$LABEL/results.log\` (committed; the first function round's daemon logs are its DAEMONLOG lines). Accelerator: **$accel**. Exit status $rc."
  if [ "$accel" = tcg ]; then
    echo
    echo "**Run under TCG (software emulation, no KVM on this host).** Every guest instruction is emulated, 5-20x slower than native and unevenly so (code the emulator translates once and re-runs is cheap; system calls, page faults and timer work are dear). Absolute figures (throughput, CPU per unit of work, reaction times, start times) are TCG's, not a real machine's; ratios between the two daemons in the same run are the comparable figures, and even they weigh each daemon's in-kernel (BPF) and user-space work by TCG's costs, not a CPU's. Memory (RSS/PSS) does not depend on the accelerator."
  fi
  tr -d '\r' < "$raw/results.log" | sed -n 's/^REPORT //p' | sed '1d'
} > "$out"
log "report: $out"
exit "$rc"
