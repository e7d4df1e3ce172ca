#!/bin/sh
# The whole test suite, on a fresh Debian 12/13 machine: installs the
# dependencies, builds, runs every test, then runs the suite again under
# AddressSanitizer and UndefinedBehaviorSanitizer.
# Usage: tools/test.sh [--no-sanitizers]
set -eu
cd "$(dirname "$0")/.."
sanitizers=yes
[ "${1:-}" = "--no-sanitizers" ] && sanitizers=no

tools/install-deps.sh

run_suite () { # build dir, extra meson options...
  dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 || true
  /usr/bin/python3 tools/test-summary.py "$dir/meson-logs/testlog.json"
}

status=0
run_suite build-test --werror || status=1
if [ "$sanitizers" = yes ]; then
  # The Python reference tests start the sanitized agriclip as a subprocess;
  # leak checks are off because GLib keeps one-time allocations alive.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-sanitize -Db_sanitize=address,undefined -Dbuildtype=debug || status=1
fi
exit $status
