#!/usr/bin/env bash
# Boots the built tree in a Debian 12 VM on a chosen Debian kernel and runs, inside, `bpftune -S`,
# the kernel-facing tests (with the VM's own node 18) and, when a .deb is built, the service test.
#
#   test/vm/vm.sh run KERNEL      KERNEL: 6.1 | 6.12 | a linux-image-* package | a version (6.1.0-47)
#   test/vm/vm.sh matrix          6.1 then 6.12, one VM at a time; writes test/vm/results/
#   test/vm/vm.sh image KERNEL    only build (or find) the cached image
#   test/vm/vm.sh kvm-usable      exit status 0 when KVM can boot the images (CI runs the matrix then)
# VM_PARTS="support tests service" (default: all three; "bench" only on request) chooses what runs inside, VM_TESTS=REGEX
# which test files (default: all); VM_TIMEOUT=seconds; VM_TCG_THREAD=single (TCG on one host thread); VM_RUN_LABEL=x keeps the results apart
# (results/raw/<kernel>-x), e.g. for a partial rerun after a fix.
# VM_IMAGE=bench: the image variant for `make bench-vs-upstream` (the test image plus stress-ng and
# the shared libraries oracle/bpftune links), cached under its own key; VM_EXTRA_PAYLOAD=DIR puts
# DIR on the payload disk as /payload/extra (the reference's build).
#
# The image comes from Debian's archive only (mmdebstrap) and is cached in $VM_CACHE/<key>/, where
# key hashes every input of the image; the VM boots it with -snapshot so it is never modified.
# Without a usable /dev/kvm the VM runs under TCG (software emulation): slower, longer timeouts.
set -euo pipefail

VM_SCRIPT_VERSION=1 # bump when the image recipe below changes meaning without changing its text
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VM_CACHE=${VM_CACHE:-/var/cache/bpftune-vm}
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# What the guest needs: systemd as PID 1, node 18 from Debian, the tools the tests run, and the
# shared libraries the native addon links (libbpf1, libelf1, zlib1g).
GUEST_PACKAGES=(systemd systemd-sysv udev dbus kmod initramfs-tools procps iproute2 iperf3 iptables
  iputils-ping python3 bpftool nodejs libbpf1 libelf1 zlib1g ca-certificates)
# The bench variant adds what bench/vs-upstream.ts runs: stress-ng (the sock workload) and the
# libraries the reference daemon (oracle/bpftune, built on the host) links besides libbpf1.
VM_IMAGE=${VM_IMAGE:-test}
case "$VM_IMAGE" in
  test) ;;
  bench) GUEST_PACKAGES+=(stress-ng libcap2 libnl-3-200 libnl-route-3-200) ;;
  *) printf 'vm: error: unknown VM_IMAGE %s (test or bench)\n' "$VM_IMAGE" >&2; exit 1 ;;
esac

log() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

# The Debian package that provides a kernel named on the command line.
kernel_package() {
  case "$1" in
    6.1) echo linux-image-cloud-amd64 ;;
    6.12) echo linux-image-6.12-cloud-amd64 ;;
    linux-image-*) echo "$1" ;;
    [0-9]*) echo "linux-image-$1-cloud-amd64" ;;
    *) die "unknown kernel '$1': give 6.1, 6.12, a linux-image-* package or a version like 6.1.0-47" ;;
  esac
}

need_host_tools() {
  local missing=() tool pkg
  for tool in mmdebstrap:mmdebstrap qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "run as root to install: ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  for pkg in "${missing[@]}"; do dpkg-query -W "$pkg" >/dev/null || die "apt-get could not install $pkg"; done
}

# The image key: every input that changes the image. The candidate version apt resolves today is
# part of it, so a new kernel upload (or security update of the packages) rebuilds the image.
image_key() {
  local kpkg=$1 versions
  versions=$(apt-cache policy "$kpkg" "${GUEST_PACKAGES[@]}" 2>/dev/null | awk '/^[^ ]/{p=$1} /Candidate:/{print p, $2}')
  { echo "$VM_SCRIPT_VERSION $MIRROR $SECURITY_MIRROR $kpkg"; echo "${GUEST_PACKAGES[*]}"; echo "$versions"
    sed -n '/^# image recipe start/,/^# image recipe end/p' "$0"; cat "$HERE/guest/bpftune-vm-test.service"; } | sha256sum | cut -c1-16
}

# image recipe start
# Builds root.img (ext4, labelled vmroot) plus the kernel and initrd the VM boots, without mounting
# anything on the host: mmdebstrap fills a directory, mkfs.ext4 -d turns it into a file system.
build_image() {
  local kpkg=$1 dir=$2 tree=$2/tree
  mkdir -p "$VM_CACHE/apt-archives"
  mmdebstrap --variant=minbase --mode=root --format=directory --quiet \
    --include="$(IFS=,; echo "${GUEST_PACKAGES[*]},$kpkg")" \
    --skip=download/empty \
    --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
    --setup-hook="sync-in '$VM_CACHE/apt-archives' /var/cache/apt/archives" \
    --customize-hook="sync-out /var/cache/apt/archives '$VM_CACHE/apt-archives'" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    --customize-hook="upload '$HERE/guest/bpftune-vm-test.service' /etc/systemd/system/bpftune-vm-test.service" \
    --customize-hook='chroot "$1" systemctl enable bpftune-vm-test.service' \
    --customize-hook='chroot "$1" systemctl mask getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service' \
    --customize-hook='echo bpftune-vm > "$1/etc/hostname"' \
    --customize-hook='printf "LABEL=vmroot / ext4 defaults 0 1\nLABEL=payload /payload ext4 ro,nofail 0 0\n" > "$1/etc/fstab"' \
    --customize-hook='mkdir -p "$1/payload"' \
    bookworm "$tree" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY_MIRROR bookworm-security main"
  cp "$tree"/boot/vmlinuz-* "$dir/vmlinuz"
  cp "$tree"/boot/initrd.img-* "$dir/initrd.img"
  ls "$tree/lib/modules" > "$dir/kernel-release"
  local size_mb=$(( $(du -sm "$tree" | cut -f1) + 1536 ))
  mkfs.ext4 -q -L vmroot -d "$tree" "$dir/root.img" "${size_mb}M"
  rm -rf "$tree"
}
# image recipe end

# Sets IMAGE_DIR to the cache directory of KERNEL's image, building it first when it is not cached.
ensure_image() {
  local kpkg key dir tmp t0
  kpkg=$(kernel_package "$1")
  key=$(image_key "$kpkg")
  dir="$VM_CACHE/$key"
  IMAGE_DIR=$dir IMAGE_BUILT=
  if [ -f "$dir/root.img" ]; then log "image $dir (cached)"; return; fi
  mkdir -p "$VM_CACHE"
  exec 8>"$VM_CACHE/.build.lock"
  flock 8
  if [ ! -f "$dir/root.img" ]; then
    tmp=$(mktemp -d "$VM_CACHE/.build-$key.XXXXXX")
    CLEANUP_DIRS+=("$tmp")
    log "building image for $kpkg into $dir (from $MIRROR; takes minutes)"
    t0=$(date +%s)
    build_image "$kpkg" "$tmp"
    echo "$(( $(date +%s) - t0 ))" > "$tmp/build-seconds"
    echo "$kpkg" > "$tmp/kernel-package"
    echo "$VM_IMAGE" > "$tmp/variant"
    mv -T "$tmp" "$dir"
    IMAGE_BUILT=1
    # Images of the same kernel package and variant from older inputs are never used again
    # (an image without a variant file is a test image).
    local old variant
    for old in "$VM_CACHE"/*/kernel-package; do
      variant=$(cat "$(dirname "$old")/variant" 2>/dev/null || echo test)
      [ "$(dirname "$old")" != "$dir" ] && [ "$(cat "$old")" = "$kpkg" ] && [ "$variant" = "$VM_IMAGE" ] && { log "removing stale image $(dirname "$old")"; rm -rf "$(dirname "$old")"; }
    done
    log "image built in $(cat "$dir/build-seconds") s"
  fi
  exec 8>&-
}

# The built tree the guest runs, as a second ext4 disk (read-only in the guest).
build_payload() {
  local out=$1 stage=$2
  [ -f "$REPO/dist/.tsc" ] && [ -f "$REPO/build/Release/bpftune_native.node" ] || die "tree not built: run make first"
  mkdir -p "$stage/bpftune/build/Release" "$stage/bpftune/test/vm"
  cp -a "$REPO/dist" "$REPO/bin" "$REPO/package.json" "$stage/bpftune/"
  cp -a "$REPO/build/Release/bpftune_native.node" "$stage/bpftune/build/Release/"
  cp -a "$REPO/test/support" "$stage/bpftune/test/" # link-forwarder.py is run from the source tree
  cp -a "$HERE/guest/run-tests.sh" "$HERE/guest/service-test.sh" "$stage/bpftune/test/vm/"
  echo "${VM_PARTS:-support tests service}" > "$stage/bpftune/test/vm/parts"
  echo "${VM_TESTS:-.}" > "$stage/bpftune/test/vm/tests-pattern"
  # VS_*: the settings of bench/vs-upstream.ts (part "bench"), passed on to the guest.
  # Quoted for the guest's `.`: a value with spaces (VS_PHASES="function harm") must stay one value.
  local v
  for v in $(compgen -e | grep '^VS_[A-Z_]*$'); do printf '%s=%q\n' "$v" "${!v}"; done > "$stage/bpftune/test/vm/bench-env"
  # VM_SERVICE_DROPIN: unit lines the service test adds as a drop-in (to try a change to the unit).
  [ -z "${VM_SERVICE_DROPIN:-}" ] || printf '%s\n' "$VM_SERVICE_DROPIN" > "$stage/bpftune/test/vm/service-dropin.conf"
  local deb
  deb=$(ls -t "$REPO"/dist/deb/bpftune_*.deb 2>/dev/null | head -1 || true)
  if [ -n "$deb" ]; then cp "$deb" "$stage/"; log "payload includes $(basename "$deb")"; fi
  if [ -n "${VM_EXTRA_PAYLOAD:-}" ]; then cp -a "$VM_EXTRA_PAYLOAD" "$stage/extra"; log "payload includes $VM_EXTRA_PAYLOAD as /payload/extra"; fi
  mkfs.ext4 -q -L payload -d "$stage" "$out" "$(( $(du -sm "$stage" | cut -f1) + 64 ))M"
}

# KVM can run Debian's kernels only with hardware virtualisation (vmx or svm among the CPU's flags).
# A /dev/kvm without it can be a paravirtual one (kvm_pvm, on machines that are themselves guests):
# it opens, and qemu starts, but a stock kernel hangs right after the boot loader's "Probing EDD".
kvm_usable() {
  [ -z "${VM_FORCE_TCG:-}" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo &&
    exec 9<>/dev/kvm 2>/dev/null && exec 9>&-
}

# The -cpu model KVM accepts here, or nothing. `host` first; where this machine is itself a guest,
# its KVM can refuse the IA32_ARCH_CAPABILITIES MSR that `host` passes on (qemu then aborts with
# "failed to set MSR 0x10a"), so the same model without that feature next. Each is tried with the
# vCPUs created and paused (-S): a model that fails does so at once.
kvm_cpu() {
  local cpu pid
  for cpu in host host,-arch-capabilities; do
    qemu-system-x86_64 -accel kvm -cpu "$cpu" -machine q35 -smp 1 -m 64 -nodefaults -display none -S \
      -nic none -monitor none -serial none >/dev/null 2>&1 &
    pid=$!
    sleep 1.5
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
      echo "$cpu"; return 0
    fi
    wait "$pid" 2>/dev/null || true
  done
  return 1
}

QEMU_PID=
CLEANUP_DIRS=()
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill "$QEMU_PID" 2>/dev/null; sleep 1; kill -9 "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  QEMU_PID=
  [ ${#CLEANUP_DIRS[@]} -eq 0 ] || rm -rf "${CLEANUP_DIRS[@]}"
  CLEANUP_DIRS=()
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Boots KERNEL's image with the payload and collects the results in $OUT_DIR/<kernel>/.
run_vm() {
  local kernel=$1 dir work out accel cpu timeout t0 t_boot t_done= rc=0 elapsed
  ensure_image "$kernel"; dir=$IMAGE_DIR
  work=$(mktemp -d /tmp/bpftune-vm.XXXXXX)
  CLEANUP_DIRS+=("$work")
  out="${OUT_DIR:-$REPO/test/vm/results/raw}/$kernel${VM_RUN_LABEL:+-$VM_RUN_LABEL}"
  mkdir -p "$out"
  rm -f "$out"/console.log "$out"/results.log
  echo "$(cat "$dir/kernel-package") from Debian's archive, key $(basename "$dir"); cold build $(cat "$dir/build-seconds") s; $(if [ -n "${IMAGE_BUILT:-}" ]; then echo "built by this run"; else echo "cached for this run"; fi)" > "$out/image"
  build_payload "$work/payload.img" "$work/stage"
  if kvm_usable && cpu=$(kvm_cpu); then
    accel=(-accel kvm -cpu "$cpu"); timeout=${VM_TIMEOUT:-900}; echo kvm > "$out/accel"
    [ "$cpu" = host ] || log "KVM refuses -cpu host here; using -cpu $cpu"
  else
    kvm_usable && log "warning: /dev/kvm opens but qemu could not start a KVM vCPU with any model tried"
    log "warning: /dev/kvm is not usable here: running under TCG (software emulation), much slower"
    # VM_TCG_THREAD=single: one host thread for both vCPUs, slower, for a hang suspected to be multi-threaded TCG's.
    accel=(-accel "tcg,thread=${VM_TCG_THREAD:-multi}" -cpu max); timeout=${VM_TIMEOUT:-3600}; echo tcg > "$out/accel"
  fi
  log "booting $(cat "$dir/kernel-release") ($(cat "$out/accel")), timeout ${timeout}s, console: $out/console.log"
  t0=$(date +%s)
  qemu-system-x86_64 "${accel[@]}" -machine q35 -smp 2 -m 3072 -nodefaults -display none -no-reboot \
    -nic none \
    -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
    -append "root=LABEL=vmroot rw console=ttyS0,115200 panic=-1 quiet loglevel=5 softlockup_all_cpu_backtrace=1 systemd.show_status=1" \
    -drive "file=$dir/root.img,format=raw,if=virtio,snapshot=on" \
    -drive "file=$work/payload.img,format=raw,if=virtio,readonly=on" \
    -serial "file:$out/console.log" -serial "file:$out/results.log" &
  QEMU_PID=$!
  t_boot=
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    elapsed=$(( $(date +%s) - t0 ))
    if [ -z "$t_boot" ] && grep -q '^VM-BOOTED' "$out/results.log" 2>/dev/null; then
      t_boot=$elapsed; log "booted in ${t_boot}s; running tests"
    fi
    # The guest powers off after VM-DONE; if it lingers (seen under TCG), the results are complete anyway.
    if [ -z "${t_done:-}" ] && grep -q '^VM-DONE' "$out/results.log" 2>/dev/null; then t_done=$elapsed; fi
    if [ -n "${t_done:-}" ] && [ $((elapsed - t_done)) -ge 30 ]; then
      log "the guest finished but did not power off within 30 s: stopping it"
      break
    fi
    # A guest whose CPUs stay stuck (seen twice under TCG, both vCPUs soft-locked within a minute
    # of boot) never finishes: stop it now rather than at the timeout. loglevel=5 above puts the
    # lockups' stack traces on the console.
    if grep -qE 'soft lockup - CPU#[0-9]+ stuck for ([3-9][0-9][0-9]|[0-9]{4,})s' "$out/console.log" 2>/dev/null; then
      log "the guest hung (a CPU soft-locked for 300 s or more): killing the VM; console: $out/console.log"
      grep -E 'soft lockup|RIP:' "$out/console.log" | tail -n 6 >&2 || true
      rc=125; break
    fi
    if [ "$elapsed" -ge "$timeout" ]; then
      log "timeout after ${timeout}s: killing the VM; console tail:"
      tail -n 40 "$out/console.log" >&2 || true
      rc=124; break
    fi
    sleep 2
  done
  if [ "$rc" = 0 ] && [ -z "$t_done" ]; then wait "$QEMU_PID" || rc=$?; QEMU_PID=; fi
  cleanup
  echo "${t_boot:-?} $(( $(date +%s) - t0 ))" > "$out/times"
  grep -q '^VM-DONE' "$out/results.log" 2>/dev/null || {
    [ "$rc" != 0 ] || { log "the VM stopped before finishing; console tail:"; tail -n 40 "$out/console.log" >&2; }
    rc=${rc/#0/1}
  }
  tr -d '\r' < "$out/results.log" | sed -n '/^SUMMARY/,$p' >&2 || true
  return "$rc"
}

main() {
  local cmd=${1:-} kernel=${2:-}
  if [ "$cmd" = kvm-usable ]; then kvm_usable; return; fi
  need_host_tools
  case "$cmd" in
    image) [ -n "$kernel" ] || die "usage: $0 image KERNEL"; ensure_image "$kernel"; echo "$IMAGE_DIR" ;;
    run)
      [ -n "$kernel" ] || die "usage: $0 run KERNEL"
      local rc=0
      run_vm "$kernel" || rc=$?
      # A bench run (VM_PARTS=bench) runs no tests: it has no place in the test matrix's report.
      [ "${VM_PARTS:-}" = bench ] || node "$REPO/dist/test/vm/report.js" "$REPO/test/vm/results" >/dev/null || true
      return "$rc" ;;
    matrix)
      local rc=0 k
      for k in 6.1 6.12; do run_vm "$k" || rc=1; done
      node "$REPO/dist/test/vm/report.js" "$REPO/test/vm/results" || rc=1
      return "$rc" ;;
    *) die "usage: $0 run KERNEL | matrix | image KERNEL" ;;
  esac
}
main "$@"; exit $? # exit here: an edit to this file during a run must not be read
