#!/usr/bin/env bash
# Installs Debian packages whose maintainer scripts would start and enable a
# service (prometheus: a server on every address, port 9090), for tests that
# run their own instance instead. A policy-rc.d that refuses every action
# stops invoke-rc.d and deb-systemd-invoke from starting it; the package's
# boot-time links are then disabled, so the machine runs nothing new.
set -euo pipefail
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  ours=1
  printf '#!/bin/sh\n# installed by bpftune install-without-service.sh for the duration of one apt-get run\nexit 101\n' >"$policy"
  chmod 755 "$policy"
fi
cleanup() { if [ -n "$ours" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=900 "$@" >/dev/null
for package in "$@"; do
  if [ -x "/etc/init.d/$package" ]; then update-rc.d "$package" disable >/dev/null 2>&1 || true; fi
  if [ -e "/lib/systemd/system/$package.service" ]; then
    deb-systemd-helper disable "$package.service" >/dev/null 2>&1 || true
  fi
done
