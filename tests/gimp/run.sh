#!/bin/sh
# End-to-end tests of the GIMP 3 plug-in: builds the project in its own build
# folder, then runs tests/gimp/test_gimp.py (gimp-console-3.0 batches and one
# real GIMP on Xvfb).  Needs GIMP 3 and libgimp-3.0-dev, so on Debian 12 run it
# in the Debian 13 root:
#   tools/debian13-root.sh run tests/gimp/run.sh [TestClass…]
# Environment: AGC_GIMP_BUILD_DIR (default build-debian13), AGC_GIMP_MESON_ARGS
# (extra `meson setup` options for a new build folder, e.g.
# -Db_sanitize=address,undefined), AGC_JOBS (ninja -j, default 2),
# AGC_SHARED_DIR (default ../shared).
set -eu
cd "$(dirname "$0")/../.."
src=$(pwd -P)
build=${AGC_GIMP_BUILD_DIR:-build-debian13}
shared=${AGC_SHARED_DIR:-$src/../shared}
start=$(date +%s)

if ! [ -f "$build/build.ninja" ]; then
  # -Werror: the whole project must build without warnings on Debian 13 too.
  meson setup "$build" -Dgimp=enabled --werror -Dshared_dir="$shared" ${AGC_GIMP_MESON_ARGS:-} \
    >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log" >&2; exit 1; }
  rm -f "$build.setup.log"
fi
ninja -C "$build" -j "${AGC_JOBS:-2}" >/dev/null || ninja -C "$build" -j 1
if ! [ -x "$build/plugin/agriclip" ]; then
  echo "gimp tests: $build/plugin/agriclip was not built (is subdir('plugin') in meson.build," \
       "and libgimp-3.0-dev installed?)" >&2
  exit 1
fi
case $build in /*) out=$build ;; *) out=$src/$build ;; esac
echo "gimp tests: built in $(( $(date +%s) - start )) s"

status=0
# The tests copy the plug-in into a GIMP profile, away from the build tree's
# libagriclip.so that its run path points to: the library is found here.
LD_LIBRARY_PATH="$out/core${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
AGC_PLUGIN="$out/plugin/agriclip" AGRICLIP="$out/cli/agriclip" \
  AGC_BUILD_DIR="$out" AGC_SOURCE_DIR="$src" AGC_SHARED_DIR="$shared" \
  PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 tests/gimp/test_gimp.py -v "$@" || status=$?
echo "gimp tests: finished in $(( $(date +%s) - start )) s"
exit $status
