#!/bin/sh
# Installs what agriclip needs on Debian 12 or 13 (as root, or through sudo).
# Does nothing for packages already there.
#
#   tools/install-deps.sh          building and running: the compiler, meson,
#                                  the libraries (what tools/demo.sh needs)
#   tools/install-deps.sh --tests  that, and what the tests compare with or
#                                  run (PyTorch, Pillow, clang for the fuzzers,
#                                  debootstrap and flatpak-builder for the
#                                  packaging test...):
#                                  what tools/test.sh needs
# Installed sizes on a minimal Debian 13: README.md, "Building".
set -eu

build_and_run="gcc meson ninja-build pkg-config gettext
  libglib2.0-dev libjson-glib-dev libgdk-pixbuf-2.0-dev libjpeg62-turbo-dev libopenblas-dev
  libcurl4-openssl-dev
  libstb-dev zlib1g-dev webp-pixbuf-loader"
# slurm-wlm and munge: tests/reference/test_tag_slurm.py starts its own
# one-node cluster (the Debian services stay stopped unless enabled).
# libimage-exiftool-perl: test_export.py reads XMP sidecars back with exiftool.
# libgtk-3-dev, xvfb, xauth: the GTK widgets of ui/ (the plug-in's windows)
# and their tests under Xvfb.
tests="clang locales debootstrap flatpak-builder libgtk-3-dev xvfb xauth
  python3-torch python3-torchvision python3-pil python3-numpy python3-regex python3-yaml
  slurm-wlm munge libimage-exiftool-perl"

packages=$build_and_run
case "${1:-}" in
  "") ;;
  --tests) packages="$build_and_run $tests" ;;
  *) echo "usage: tools/install-deps.sh [--tests]" >&2; exit 2 ;;
esac

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing:$missing" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
