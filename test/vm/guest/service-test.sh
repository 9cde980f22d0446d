#!/bin/bash
# The service test, inside the VM with systemd as PID 1: install the package, see the service run
# and tune a namespace, stop it, purge it. Usage: service-test.sh PATH/bpftune_<ver>_<arch>.deb
# Prints one "ok"/"not ok" line per check; exits non-zero when any check failed.
set -u
DEB=$1
failed=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" > /tmp/check.out 2>&1; then echo "ok - $what"; else echo "not ok - $what"; sed 's/^/    /' /tmp/check.out; failed=1; fi
}
wait_for() { # wait_for SECONDS COMMAND...: true once COMMAND succeeds
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 1; done
}
cleanup() {
  [ -n "${CLIENT_PID:-}" ] && kill "$CLIENT_PID" 2>/dev/null
  ip netns del vmsvc-a 2>/dev/null; ip netns del vmsvc-b 2>/dev/null
}
trap cleanup EXIT

DROPIN=$(dirname "$0")/service-dropin.conf
if [ -f "$DROPIN" ]; then
  mkdir -p /etc/systemd/system/bpftune.service.d && cp "$DROPIN" /etc/systemd/system/bpftune.service.d/vm-test.conf
  echo "    with drop-in: $(tr '\n' ' ' < "$DROPIN")"
fi
# The namespace with a small tcp_rmem max is made before the service starts: a write to a
# tunable while it runs is an administrator's takeover, and tcp_buffer would rightly stand down
# in that namespace (the sysctl tuner logs "disabling 'tcp_buffer' for namespace cookie ...").
ip netns add vmsvc-a && ip netns add vmsvc-b
ip -n vmsvc-a link add veth0 type veth peer name veth1 netns vmsvc-b
ip -n vmsvc-a addr add 198.18.0.1/24 dev veth0 && ip -n vmsvc-a link set veth0 up && ip -n vmsvc-a link set lo up
ip -n vmsvc-b addr add 198.18.0.2/24 dev veth1 && ip -n vmsvc-b link set veth1 up && ip -n vmsvc-b link set lo up
ip netns exec vmsvc-b sysctl -q -w net.ipv4.tcp_rmem="4096 65536 131072"

# The one cgroup2 superblock's options as systemd set them (nsdelegate, memory_recursiveprot):
# every mount of cgroup2 applies its options to it, so the service's own mount must pass them.
cgroup2_options() { awk '$5 == "/sys/fs/cgroup" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 3); exit } }' /proc/self/mountinfo; }
CGROUP2_OPTIONS=$(cgroup2_options)

# No network in the VM: every dependency of the package must already be in the image.
# (No --no-download: with it apt rejects a local .deb, "Pathname to install is not absolute".)
check "apt install ./$(basename "$DEB")" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB"
dpkg -L bpftune > /tmp/bpftune.files 2>/dev/null
check "systemctl is-active bpftune" wait_for 60 systemctl is-active --quiet bpftune
status_line() { systemctl status bpftune --no-pager | grep -E '^ *Status: "'; }
check "systemctl status shows a STATUS line" wait_for 30 status_line
same_cgroup2_options() { echo "before: $CGROUP2_OPTIONS; now: $(cgroup2_options)"; [ "$(cgroup2_options)" = "$CGROUP2_OPTIONS" ]; }
check "the service's cgroup2 mount leaves the superblock's options as systemd set them ($CGROUP2_OPTIONS)" same_cgroup2_options
systemctl status bpftune --no-pager | head -12 | sed 's/^/    /'
echo "    what the service logged at warning or worse, and which tuners loaded:"
journalctl -u bpftune -p warning -o cat --no-pager | head -20 | cut -c1-400 | sed 's/^/    /'
journalctl -u bpftune -o cat --no-pager | grep -E "tuners? .*loaded" | head -10 | cut -c1-300 | sed 's/^/    /'

# A namespace with a small tcp_rmem max receives bulk traffic over veth: the service, which watches
# every namespace, must grow tcp_rmem there and say so in the journal.
since=$(date '+%Y-%m-%d %H:%M:%S')
ip netns exec vmsvc-b iperf3 -s -1 -D -p 5201
sleep 1
ip netns exec vmsvc-a iperf3 -c 198.18.0.2 -p 5201 -t 20 > /tmp/iperf.out 2>&1 &
CLIENT_PID=$!
tuned() { journalctl -u bpftune --since "$since" BPFTUNE_TUNABLE=net.ipv4.tcp_rmem -o cat | grep -q .; }
check "bulk traffic into a small tcp_rmem max: change in journalctl -u bpftune BPFTUNE_TUNABLE=net.ipv4.tcp_rmem" wait_for 40 tuned
journalctl -u bpftune --since "$since" BPFTUNE_TUNABLE=net.ipv4.tcp_rmem -o cat | head -4 | sed 's/^/    /'
echo "    namespace tcp_rmem now: $(ip netns exec vmsvc-b sysctl -n net.ipv4.tcp_rmem)"
wait "$CLIENT_PID" 2>/dev/null; CLIENT_PID=

main_pid=$(systemctl show -p MainPID --value bpftune)
check "systemctl stop bpftune" systemctl stop bpftune
summary() { journalctl -u bpftune --since "$since" -o cat | grep -q '^# Summary'; }
check "the summary is in the journal after stop" summary
journalctl -u bpftune --since "$since" -o cat | grep -A1 '^# Summary' | head -6 | sed 's/^/    /'

rm -rf /etc/systemd/system/bpftune.service.d
check "apt purge bpftune" env DEBIAN_FRONTEND=noninteractive apt-get purge -y bpftune
# Directories (and /lib, a symlink to usr/lib on Debian 12) are shared with other packages.
no_files() { local f left=0; while read -r f; do [ -d "$f" ] && continue; [ -e "$f" ] || [ -L "$f" ] && { echo "left: $f"; left=1; }; done < /tmp/bpftune.files; return $left; }
check "purge leaves no packaged file" no_files
no_unit() {
  local files; files=$(systemctl list-unit-files bpftune.service --no-legend)
  systemctl cat bpftune.service 2>&1 | head -3
  echo "unit files: ${files:-none}"
  ! systemctl cat bpftune.service >/dev/null 2>&1 && [ -z "$files" ]
}
check "purge leaves no unit" no_unit
# The daemon's main pid is gone, and no process runs the packaged command.
no_process() {
  local cmd; cmd=$(grep -m1 -E '/s?bin/bpftune$' /tmp/bpftune.files)
  { [ "$main_pid" = 0 ] || ! kill -0 "$main_pid" 2>/dev/null; } && { [ -z "$cmd" ] || ! pgrep -f "$cmd"; }
}
check "purge leaves no bpftune process" no_process
no_state() { ! ls -d /var/lib/bpftune /run/bpftune /var/run/bpftune /etc/bpftune 2>/dev/null | grep -q .; }
check "purge leaves no state or run directory" no_state
exit $failed
