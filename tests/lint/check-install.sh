#!/bin/sh
# check-install.sh BUILD_DIR SOURCE_DIR — stages `meson install` in a
# temporary folder and builds tests/lint/public-consumer.c against it with
# pkg-config alone: the installed header, the pkg-config file and the
# library with its soname are enough to use libagriclip.
set -eu
build=$1 src=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" --no-rebuild >/dev/null
pc=$(find "$stage" -name agriclip.pc | head -n 1)
[ -n "$pc" ] || { echo "no agriclip.pc installed"; exit 1; }
# the staged copy moved: point its prefix there (glib's own .pc stays as is)
mkdir "$stage/pc"
sed "s|^prefix=|prefix=$stage|" "$pc" >"$stage/pc/agriclip.pc"
flags=$(PKG_CONFIG_PATH="$stage/pc" pkg-config --cflags --libs agriclip)
cc -o "$stage/consumer" "$src/tests/lint/public-consumer.c" $flags
lib=$(find "$stage" -name 'libagriclip.so.0' | head -n 1)
[ -n "$lib" ] || { echo "no libagriclip.so.0 (soname link) installed"; exit 1; }
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libagriclip.so.0 ] || { echo "soname is '$soname', expected libagriclip.so.0"; exit 1; }
out=$(LD_LIBRARY_PATH="$(dirname "$lib")" "$stage/consumer")
echo "$out"
[ "$out" = "3 classes, first rust" ]
