#!/bin/bash
# Runs inside the VM (systemd unit bpftune-vm-test.service) from the read-only payload disk:
# `bpftune -S`, every test file with the VM's node, one file at a time (node 18 has no
# --test-concurrency), then the service test when a .deb is in the payload. Results go to the
# second serial port, which the host reads; the unit powers the VM off when this returns.
set -u
PAYLOAD=/payload
exec 3>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo 2>/dev/null
say() { printf '%s\n' "$*" >&3; }
indent() { sed 's/^/  | /' >&3; }

say "VM-BOOTED $(cut -d' ' -f1 /proc/uptime)"
parts=$(cat "$PAYLOAD/bpftune/test/vm/parts" 2>/dev/null || echo support tests service)
part() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
say "PARTS $parts"
say "KERNEL $(uname -r)"
say "NODE $(node --version)"
say "BTF $([ -r /sys/kernel/btf/vmlinux ] && echo yes || echo no)"
# Under TCG (systemd-detect-virt says "qemu", not "kvm") loading and verifying BPF takes tens of
# seconds: the test helpers' waits are widened (they only ever wait longer, never assert a time).
virt=$(systemd-detect-virt 2>/dev/null || echo none)
scale=1
[ "$virt" = qemu ] && scale=6
export BPFTUNE_TEST_TIME_SCALE=$scale
say "VIRT $virt time-scale=$scale"

# Left out: bench/*.test.js test the benchmark harness (plots, statistics, report), touch no
# kernel interface and run on the host; one of them times a child process and fails under TCG.
left_out() { case "$1" in dist/bench/*) return 0 ;; esac; return 1; }

# Debian builds bbr as a module (tcp_bbr) that nothing loads, and BPF cannot autoload it: tcp_conn
# then chooses among reno and cubic only. Loaded here as a modules-load.d entry would at boot, so
# the tests see the kernel the host has; the report says it was needed.
grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control || { modprobe tcp_bbr && say "MODPROBE tcp_bbr (not loaded at boot)"; }

# The tests write next to themselves (state files, temporary objects): a writable copy.
cp -a "$PAYLOAD/bpftune" /opt/bpftune
cd /opt/bpftune

if part support; then
  bin/bpftune -S > /tmp/support.txt 2>&1
  say "SUPPORT-RC $?"
  sed 's/^/SUPPORT /' /tmp/support.txt >&3
fi

total_pass=0 total_fail=0 total_skip=0 files_failed=0
suite_t0=$(date +%s)
# -L prefers the variants that need no BTF, so the daemon loads tcp_buffer's kprobe fallback: proof
# that it passes this kernel's verifier, which the tests (tp_btf/fentry here) do not give.
if part support; then
  bin/bpftune -s -L -a tcp_buffer > /tmp/legacy.out 2>&1 &
  pid=$!
  for _ in $(seq $((60 * scale))); do grep -q 'tuners loaded' /tmp/legacy.out && break; kill -0 $pid 2>/dev/null || break; sleep 1; done
  kill -TERM $pid 2>/dev/null; wait $pid
  say "LEGACY-RC $?"
  grep -E "loaded|failed|error" /tmp/legacy.out | sed 's/^/LEGACY /' >&3
fi

# Part "bench" (make bench-vs-upstream): the reference daemon from /payload/extra installed where its
# build looks for its tuners, then bench/vs-upstream.js; progress lines go out as they come, the
# report (markdown) as REPORT lines at the end.
if part bench; then
  if [ -x "$PAYLOAD/extra/bpftune" ]; then
    install -m 0755 "$PAYLOAD/extra/bpftune" /usr/sbin/bpftune-reference
    mkdir -p /usr/lib64/bpftune
    cp -a "$PAYLOAD"/extra/libbpftune.so* /usr/lib64/
    cp -a "$PAYLOAD"/extra/*_tuner.so /usr/lib64/bpftune/
    echo /usr/lib64 > /etc/ld.so.conf.d/bpftune-reference.conf && ldconfig
    say "REFERENCE $(cat "$PAYLOAD/extra/VERSION" 2>/dev/null) installed"
  else
    say "REFERENCE missing from the payload (/payload/extra)"
  fi
  set -a; . "$PAYLOAD/bpftune/test/vm/bench-env" 2>/dev/null; set +a
  say "BENCH-ENV $(tr '\n' ' ' < "$PAYLOAD/bpftune/test/vm/bench-env" 2>/dev/null)"
  t0=$(date +%s)
  node dist/bench/vs-upstream.js > /tmp/vs-upstream.md 2> >(sed -u 's/^/BENCH /' >&3)
  say "BENCH-RC $? seconds=$(( $(date +%s) - t0 ))"
  sed 's/^/REPORT /' /tmp/vs-upstream.md >&3
fi

part tests || say "TESTS not run (VM_PARTS=$parts)"
pattern=$(cat "$PAYLOAD/bpftune/test/vm/tests-pattern" 2>/dev/null || echo .)
[ "$pattern" = . ] || say "TESTS only files matching /$pattern/ (VM_TESTS)"
for f in $(part tests && find dist -name '*.test.js' | sort | grep -E "$pattern"); do
  if left_out "$f"; then say "LEFT-OUT $f"; continue; fi
  t0=$(date +%s)
  timeout --kill-after=10 $((600 * scale)) node --test "$f" > /tmp/test.out 2>&1
  rc=$?
  # node 18's TAP reporter ends with "# pass N", "# fail N", "# skipped N" (node 20's spec reporter
  # prints "ℹ pass N"): accept both so the parser does not depend on the node version.
  count() { grep -E "^(# |ℹ )$1 [0-9]+" /tmp/test.out | tail -1 | grep -oE '[0-9]+$' || echo 0; }
  pass=$(count pass); fail=$(count fail); skip=$(count skipped)
  cancelled=$(count cancelled)
  fail=$((fail + cancelled))
  [ "$rc" = 0 ] || [ "$fail" != 0 ] || fail=1 # a crash or timeout before the report is a failure
  say "TEST $f rc=$rc pass=$pass fail=$fail skip=$skip seconds=$(( $(date +%s) - t0 ))"
  if [ "$rc" != 0 ]; then files_failed=$((files_failed + 1)); indent < /tmp/test.out; fi
  grep -E '^ *# SKIP|# SKIP ' /tmp/test.out | sed 's/^ */  skipped: /' >&3
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail)); total_skip=$((total_skip + skip))
done
suite_seconds=$(( $(date +%s) - suite_t0 ))

service="not run (no .deb in the payload)"
if part service && ls "$PAYLOAD"/bpftune_*.deb >/dev/null 2>&1; then
  t0=$(date +%s)
  if bash "$PAYLOAD/bpftune/test/vm/service-test.sh" "$(ls "$PAYLOAD"/bpftune_*.deb | head -1)" > /tmp/service.out 2>&1; then
    service="passed"
  else
    service="FAILED"
  fi
  say "SERVICE $service seconds=$(( $(date +%s) - t0 ))"
  indent < /tmp/service.out
fi

say "SUMMARY kernel=$(uname -r) node=$(node --version) pass=$total_pass fail=$total_fail skip=$total_skip files_failed=$files_failed suite_seconds=$suite_seconds service=\"$service\""
say "VM-DONE $(cut -d' ' -f1 /proc/uptime)"
exec 3>&-
sync
# The unit's SuccessAction powers off too; this does not wait for a clean stop of every service.
systemctl poweroff --force
