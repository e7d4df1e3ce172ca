#!/bin/sh
# Builds the libFuzzer harnesses (clang, AddressSanitizer + UBSan) for the
# pickle reader and the ZIP/checkpoint reader, writes a seed corpus with
# torch.save, and runs each harness for a bounded time.
# Usage: tests/fuzz/run.sh [SECONDS_PER_HARNESS]     (default 60)
# Needs clang with libFuzzer (Debian: apt-get install -y clang) and
# python3-torch.  Works in $FUZZ_DIR (default build-fuzz/): corpora grow
# there from run to run; findings are saved as build-fuzz/NAME-crash-*,
# -leak-*, -timeout-*, -oom-*.  Exit status 1 when a harness found one.
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-60}
out=${FUZZ_DIR:-build-fuzz}
command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install -y clang)" >&2; exit 2; }
mkdir -p "$out"

flags="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -Icore -Icore/include $(pkg-config --cflags gio-2.0)"
libs="$(pkg-config --libs gio-2.0) -lm"
# shellcheck disable=SC2086
clang $flags tests/fuzz/fuzz-pickle.c core/formats/pickle.c core/support/error.c -o "$out/fuzz-pickle" $libs
# shellcheck disable=SC2086
clang $flags tests/fuzz/fuzz-checkpoint.c core/formats/zip-archive.c core/formats/pickle.c \
  core/formats/torch-checkpoint.c core/formats/tensor.c core/support/error.c -o "$out/fuzz-checkpoint" $libs

/usr/bin/python3 tests/fuzz/make-seeds.py "$out/seeds"

status=0
for name in pickle checkpoint; do
  mkdir -p "$out/corpus-$name"
  echo "== fuzz-$name for $seconds s"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/fuzz-$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -dict=tests/fuzz/pickle.dict -artifact_prefix="$out/$name-" \
    -print_final_stats=1 "$out/corpus-$name" "$out/seeds/$name" || status=1
done
[ $status -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: findings in $out/" >&2
exit $status
