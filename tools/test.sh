#!/bin/sh
# The whole test suite, on a fresh Debian 12/13 machine: installs the
# dependencies, builds with -Werror, runs every test, runs the suite again
# under AddressSanitizer and UndefinedBehaviorSanitizer, runs the GIMP 3
# plug-in's end-to-end tests (in a Debian 13 root when the host has no GIMP 3:
# it builds there with -Werror too), builds the Debian packages there and
# installs them in a clean Debian 13 root, runs the GIMP Flatpak extension's
# build steps there (tests/packaging/run.sh; AGC_TEST_PACKAGES=0: the Flatpak
# steps alone, tests/packaging/flatpak.sh), and fuzzes the file
# readers (tests/fuzz/README.md) for a bounded time (AGC_FUZZ_SECONDS per
# harness, default 50; 6 harnesses).  Ends with one line: "N passed, N failed, N skipped".
# Usage: tools/test.sh [--quick]     (--quick: the plain suite only)
set -eu
cd "$(dirname "$0")/.."
quick=no
[ "${1:-}" = "--quick" ] && quick=yes

tools/install-deps.sh --tests

run_suite () { # build dir, extra meson options...
  dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 || true
  logs="$logs $dir/meson-logs/testlog.json"
}

logs=""
extra=""
run_suite build-test --werror
if [ "$quick" = no ]; then
  # The Python reference tests start the sanitized agriclip as a subprocess;
  # leak checks are off because GLib keeps one-time allocations alive.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-sanitize -Db_sanitize=address,undefined -Dbuildtype=debug
  # The GIMP 3 plug-in: on a host with GIMP 3, else in a Debian 13 root
  # (made once, ~9 min and 2.6 GB, kept in /var/cache/agriclip).
  if pkg-config --exists gimp-3.0 && command -v gimp-console-3.0 >/dev/null; then
    gimp_tests=tests/gimp/run.sh
  else
    gimp_tests="tools/debian13-root.sh run tests/gimp/run.sh"
  fi
  if $gimp_tests; then extra="$extra gimp=ok"; else extra="$extra gimp=fail"; fi
  # The Debian packages installed with apt in a clean Debian 13 root, and the
  # Flatpak extension's steps (tests/packaging/run.sh: two builds of the
  # project in the Debian 13 root, GIMP installed in the clean root meanwhile);
  # AGC_TEST_PACKAGES=0 skips the Debian packages.
  if [ "${AGC_TEST_PACKAGES:-1}" != 0 ]; then
    if tests/packaging/run.sh; then extra="$extra pkg=ok"; else extra="$extra pkg=fail"; fi
  elif tests/packaging/flatpak.sh "$(pwd -P)/build-flatpak-test"; then
    extra="$extra flatpak=ok"
  else
    extra="$extra flatpak=fail"
  fi
  if tests/fuzz/run.sh "${AGC_FUZZ_SECONDS:-50}"; then extra="$extra fuzz=ok"; else extra="$extra fuzz=fail"; fi
fi
# shellcheck disable=SC2086
exec /usr/bin/python3 tools/test-summary.py $logs $extra
