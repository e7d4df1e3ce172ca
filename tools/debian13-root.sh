#!/bin/sh
# A Debian 13 "trixie" root for building and testing the GIMP 3 plug-in on a
# Debian 12 host (Debian 12 has only GIMP 2.10; installing trixie packages into
# the host would replace its libc, so they live in a separate root).
#
# Usage:
#   tools/debian13-root.sh [create]   create the root, or reuse it when complete
#   tools/debian13-root.sh run CMD…   run CMD as root inside it, in the source tree
#   tools/debian13-root.sh path       print where the root is
#   tools/debian13-root.sh mirror     print the Debian mirror it uses
#
# Environment:
#   AGC_DEBIAN13_ROOT   where the root lives (default /var/cache/agriclip/debian13-root,
#                       outside any clone so that CI runs reuse it)
#   AGC_DEBIAN_MIRROR   Debian mirror (default: the one in the host's apt sources)
#
# `run` bind-mounts the source tree at the same path inside the root, ../shared
# read-only beside it, /proc, /sys and /dev, inside a private mount namespace
# (nothing leaks to the host and nothing stays mounted if we are killed), and
# sets HOME to a throwaway folder.  The root is complete when its stamp file,
# written last, lists the packages below; anything less is finished on re-run,
# so adding a package to the list installs it into an existing root (apt-get
# only, no new debootstrap).  build-essential, debhelper, lintian and
# bash-completion build the Debian packages, appstream validates the Flatpak
# metainfo (tests/packaging/).  python3-onnx and python3-onnxruntime are for
# tests/bench/bench.py (ONNX Runtime as a third engine).  The downloaded .debs
# stay in the root's /var/cache/apt/archives: tests/packaging/run.sh installs
# the same ones into its clean root without downloading them again.
set -eu

root=${AGC_DEBIAN13_ROOT:-/var/cache/agriclip/debian13-root}
stamp=$root/.agriclip-root-complete
src=$(cd "$(dirname "$0")/.." && pwd -P)
shared=$(cd "$src/.." && pwd -P)/shared

packages="gimp libgimp-3.0-dev libgtk-3-dev gcc meson ninja-build pkg-config gettext
  libglib2.0-dev libjson-glib-dev libgdk-pixbuf-2.0-dev libopenblas-dev
  python3-torch python3-torchvision python3-pil python3-numpy python3-regex
  python3-onnx python3-onnxruntime
  python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4
  fonts-dejavu-core xvfb xauth imagemagick xdotool ca-certificates
  build-essential debhelper dpkg-dev lintian bash-completion appstream"

die () { echo "debian13-root: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot and mounts need it)"

host_mirror () {
  [ -n "${AGC_DEBIAN_MIRROR:-}" ] && { echo "$AGC_DEBIAN_MIRROR"; return; }
  # deb822 "URIs:" lines first, then one-line "deb URI suite" entries; the
  # first plain Debian archive (not security, not a third-party repo) wins.
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }' |
      grep -E '/debian/?$' | head -n 1 || true)
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' |
      grep -E '/debian/?$' | head -n 1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# What a complete root has: our packages, plus whatever the project's own
# tools/install-deps.sh installs (its checksum, so that an edit re-runs it).
stamp_text () {
  echo "$packages" | tr -s ' \n' '\n\n' | sed '/^$/d' | sort
  [ ! -f "$src/tools/install-deps.sh" ] || sha256sum "$src/tools/install-deps.sh" | cut -d' ' -f1
}

create () {
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stamp_text)" ]; then
    return 0
  fi
  start=$(date +%s)
  mirror=$(host_mirror)
  if ! [ -x "$root/usr/bin/apt-get" ] || ! [ -f "$root/.agriclip-debootstrap-done" ]; then
    if ! command -v debootstrap >/dev/null; then
      echo "debian13-root: installing debootstrap on the host" >&2
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap ||
        die "cannot install debootstrap on the host"
    fi
    # A half-made root from an interrupted debootstrap cannot be resumed.
    rm -rf "$root"
    mkdir -p "$root"
    echo "debian13-root: debootstrap trixie into $root from $mirror" >&2
    debootstrap --variant=minbase trixie "$root" "$mirror" ||
      die "debootstrap failed (see $root/debootstrap/debootstrap.log)"
    touch "$root/.agriclip-debootstrap-done"
  fi
  printf 'deb %s trixie main\n' "$mirror" > "$root/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  # Services must not start inside the root while packages install.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  echo "debian13-root: installing packages inside the root" >&2
  # torchvision and the ONNX packages are optional (the bench and some image
  # checks use them, the build does not): installed only when trixie has them.
  # Then the project's own build and test dependencies, from the source tree.
  RUN_SRC=$src in_root sh -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    list="$1"
    for optional in python3-torchvision python3-onnx python3-onnxruntime; do
      apt-cache show "$optional" >/dev/null 2>&1 || list=$(echo "$list" | sed "s/ $optional\b//")
    done
    apt-get install -y -q --no-install-recommends $list
    [ ! -f tools/install-deps.sh ] || sh tools/install-deps.sh --tests' sh "$packages" ||
    die "apt-get install inside the root failed"
  stamp_text > "$stamp"
  echo "debian13-root: ready in $(( $(date +%s) - start )) s: $root" >&2
}

# Runs a command inside the root with /proc, /sys and /dev mounted, in a
# private mount namespace; the trap unmounts when the namespace outlives us.
in_root () {
  unshare --mount --propagation private -- sh -eu -c '
    root=$1; src=$2; shared=$3; shift 3
    mounted=""
    cleanup () { for m in $mounted; do umount -l "$m" 2>/dev/null || true; done; }
    trap cleanup EXIT INT TERM
    bind () { # source, target, extra mount options
      mkdir -p "$2"
      mount --rbind "$1" "$2"; mounted="$2 $mounted"
      [ -z "${3:-}" ] || mount -o remount,bind,"$3" "$2"
    }
    mkdir -p "$root/proc" "$root/sys" "$root/dev"
    mount -t proc proc "$root/proc"; mounted="$root/proc $mounted"
    bind /sys "$root/sys"
    bind /dev "$root/dev"
    [ -z "$src" ] || bind "$src" "$root$src"
    [ -z "$shared" ] || ! [ -d "$shared" ] || bind "$shared" "$root$shared" ro
    home=$(mktemp -d "$root/tmp/home.XXXXXX")
    chmod 700 "$home"
    trap "cleanup; rm -rf \"$home\"" EXIT INT TERM
    cd "$root"
    status=0
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME="${home#$root}" LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
      AGC_SOURCE_DIR="$src" AGC_SHARED_DIR="$shared" \
      chroot "$root" sh -c "cd \"\${AGC_SOURCE_DIR:-/}\" && exec \"\$@\"" sh "$@" || status=$?
    exit $status' sh "$root" "${RUN_SRC:-}" "${RUN_SHARED:-}" "$@"
}

case "${1:-create}" in
  create) create ;;
  path) echo "$root" ;;
  mirror) host_mirror ;;
  run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD…"
    create
    RUN_SRC=$src RUN_SHARED=$shared in_root "$@"
    ;;
  *) die "unknown subcommand '$1' (create, run CMD…, path, mirror)" ;;
esac
