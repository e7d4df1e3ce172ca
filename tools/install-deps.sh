#!/bin/sh
# Installs what building and testing agriclip needs on Debian 12 or 13
# (as root, or through sudo).  Does nothing for packages already there.
set -eu

packages="gcc clang meson ninja-build pkg-config gettext locales
  libglib2.0-dev libjson-glib-dev libgdk-pixbuf-2.0-dev libopenblas-dev libcurl4-openssl-dev
  libstb-dev zlib1g-dev webp-pixbuf-loader
  libgtk-3-dev xvfb xauth
  python3-torch python3-torchvision python3-pil python3-numpy python3-regex
  slurm-wlm munge"
# slurm-wlm and munge: tests/reference/test_tag_slurm.py starts its own
# one-node cluster (the Debian services stay stopped unless enabled).

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
