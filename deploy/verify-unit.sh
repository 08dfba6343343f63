#!/usr/bin/env bash
# Check deploy/newswatch.service with `systemd-analyze verify` (CI runs this
# where systemd-analyze exists). The unit's ExecStart is
# /opt/newswatch/bin/newswatch, which is not installed here: a copy of the
# unit pointing at a stand-in is verified, so the check is about the unit.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$dir/newswatch"
chmod +x "$dir/newswatch"
sed "s|/opt/newswatch/bin/newswatch|$dir/newswatch|" deploy/newswatch.service >"$dir/newswatch.service"
out="$(systemd-analyze verify "$dir/newswatch.service" 2>&1 || true)"
# Without a running systemd, lines about the machine (missing targets, no
# bus) are expected; any other line naming the unit is a problem in it.
problems="$(printf '%s\n' "$out" | grep 'newswatch.service' \
  | grep -v -e 'Unit .*\.target not found' -e 'Failed to connect' -e 'sysinit.target' || true)"
if [ -n "$problems" ]; then
  printf 'deploy/newswatch.service does not verify:\n%s\n' "$problems" >&2
  exit 1
fi
echo "deploy/newswatch.service: systemd-analyze verify OK"
