#!/bin/sh
# Builds the libFuzzer harnesses (clang, AddressSanitizer + UBSan) and runs
# each for a bounded time:
#   pickle       the pickle reader
#   checkpoint   the ZIP reader and the PyTorch checkpoint reader
#   json         the checked JSON parse and every reader of a JSON file
#                (config.json, preprocessor_config.json, open_clip_config.json,
#                agriclip.json, label sets, the catalogue, *.index.json)
#   tokenizer    vocab.json + merges.txt
#   safetensors  the safetensors reader (JSON header) and adapter metadata
#   image        image decoding (gdk-pixbuf) and preprocessing
# The library and the harnesses are built with clang in $FUZZ_DIR/lib (meson
# -Dfuzz=true: tests/fuzz/meson.build; the library at -O0: the AVX-512 kernels
# take minutes to compile at -O1 with the sanitizers; coverage
# instrumentation for libFuzzer); seed corpora come from make-seeds.py
# (torch.save, PIL); each harness has a dictionary (tests/fuzz/*.dict).
# Usage: tests/fuzz/run.sh [SECONDS_PER_HARNESS [HARNESS...]]   (default 60, all)
# Needs clang with libFuzzer (Debian: apt-get install -y clang), python3-torch
# and python3-pil.  Works in $FUZZ_DIR (default build-fuzz/): corpora grow
# there from run to run; findings are saved as $FUZZ_DIR/NAME-crash-*,
# -leak-*, -timeout-*, -oom-*.  Exit status 1 when a harness found one.
# Long runs outside CI: see tests/fuzz/README.md.
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-pickle checkpoint json tokenizer safetensors image}
out=${FUZZ_DIR:-build-fuzz}
command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install -y clang)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$out/lib/build.ninja" ]; then
  CC=clang meson setup "$out/lib" -Dbuildtype=debug -Doptimization=0 -Dgimp=disabled -Dui=disabled \
    -Dfuzz=true -Db_lundef=false -Dc_args="$sanitize -fsanitize=fuzzer-no-link" \
    -Dc_link_args="$sanitize" >"$out/lib-setup.log" 2>&1 \
    || { cat "$out/lib-setup.log" >&2; exit 2; }
else  # a build folder made before these options
  meson configure "$out/lib" -Dfuzz=true -Dc_link_args="$sanitize" >/dev/null
fi
# the harnesses (tests/fuzz/meson.build: linked as the unit tests are)
targets=""
for name in $harnesses; do targets="$targets tests/fuzz/fuzz-$name"; done
# shellcheck disable=SC2086
ninja -C "$out/lib" $targets >"$out/lib-build.log" 2>&1 \
  || { tail -40 "$out/lib-build.log" >&2; exit 2; }

/usr/bin/python3 tests/fuzz/make-seeds.py "$out/seeds"
[ "${AGC_FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

status=0
for name in $harnesses; do
  case $name in
    pickle|checkpoint) dict=pickle ;;
    *) dict=$name ;;
  esac
  # gdk-pixbuf's BMP loader spends ~5 s (optimised; > 10 s at -O0 under ASan)
  # on some 93-byte files: slow, bounded, not ours to fix (tests/fuzz/README.md)
  # and it reallocs GBs (never touched, g_try_realloc) for a BMP header that
  # claims them: not a finding while the resident size stays under the limit
  timeout=10 malloc_limit=2048
  [ "$name" = image ] && timeout=120 malloc_limit=65536
  mkdir -p "$out/corpus-$name"
  echo "== fuzz-$name for $seconds s"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/lib/tests/fuzz/fuzz-$name" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -malloc_limit_mb="$malloc_limit" \
    -max_len=65536 -dict="tests/fuzz/$dict.dict" -artifact_prefix="$out/$name-" \
    -print_final_stats=1 "$out/corpus-$name" "$out/seeds/$name" || status=1
done
[ $status -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: findings in $out/" >&2
exit $status
