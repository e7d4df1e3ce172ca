#!/bin/sh
# The packages as a user gets them.  Builds the Debian source package
# (packaging/debian) in the Debian 13 root of tools/debian13-root.sh, checks
# it with lintian, then installs the four .debs with apt into a clean minimal
# Debian 13 root made here and checks there: agriclip --version, classify
# --labels plantvillage (the installed set) on a generated model, models list
# (the installed catalogue), every library the programs load coming from a
# package they depend on, and gimp-console-3.0 listing the three AgriCLIP
# procedures and running the label one; then apt-get remove must leave no file
# behind.  Also checks the Flatpak extension (tests/packaging/flatpak.sh).
#
# What runs beside what (2 cores): the clean root is unpacked and GIMP (which
# gimp-plugin-agriclip depends on, most of what apt installs) installed in it
# while the package build uses the CPUs; then lintian, the Flatpak steps and
# the checks in the clean root run together.  Each phase's time is printed.
#
# Caches in /var/cache/agriclip (AGC_CACHE_DIR): the pristine clean root as a
# tarball (one debootstrap) and the .debs apt installs into it, seeded with
# the .debs the Debian 13 root downloaded (it keeps them), so that a fresh
# machine downloads nothing twice.  Work folder: build-packaging-test in the
# source tree (removed first).
# Needs root, debootstrap and /usr/bin/python3 with torch (the test model).
set -eu
cd "$(dirname "$0")/../.."
src=$(pwd -P)
work=$src/build-packaging-test
cache=${AGC_CACHE_DIR:-/var/cache/agriclip}
pristine=$cache/debian13-clean.tar
archives=$cache/debian13-clean-apt-archives
root=$work/clean-root
start=$(date +%s)
say () { echo "packaging test: $* ($(( $(date +%s) - start )) s)"; }
# waits for what runs in the background first: nothing outlives the test
die () { echo "packaging test: FAILED: $*" >&2; wait; exit 1; }
# Runs a command, noting its wall and CPU time in $work/time-NAME when GNU
# time is installed (CPU seconds: a shared machine's load inflates wall times).
timed () {
  name=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%e s wall, %U s user + %S s system CPU" -o "$work/time-$name" "$@"
  else
    "$@"
  fi
}
took () { [ ! -f "$work/time-$1" ] || echo ": $(tail -n 1 "$work/time-$1")"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (chroot, mounts, apt)"
version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" meson.build)
[ -n "$version" ] || die "no version in meson.build"
head -n 1 packaging/debian/changelog | grep -q "^agriclip ($version)" ||
  die "packaging/debian/changelog does not start with version $version (meson.build)"

rm -rf "$work"
mkdir -p "$work/agriclip-$version" "$work/debs" "$work/fixture" "$work/out" "$root" "$archives"
tools/debian13-root.sh create || die "tools/debian13-root.sh create"

# in_clean_root NAME CMD...: runs CMD in the clean root (timed as NAME), in a
# private mount namespace: /proc, /sys, /dev, the apt download cache, the
# .debs, the fixture, the output folder and these tests.
in_clean_root () {
  name=$1; shift
  timed "$name" unshare --mount --propagation private -- sh -euc '
    root=$1 work=$2 archives=$3 tests=$4; shift 4
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    for pair in "$archives:/var/cache/apt/archives" "$work/debs:/debs" "$work/fixture:/fixture" \
                "$work/out:/out" "$tests:/tests"; do
      mkdir -p "$root${pair#*:}"
      mount --bind "${pair%%:*}" "$root${pair#*:}"
    done
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent LANG=C.UTF-8 \
      chroot "$root" "$@"' sh "$root" "$work" "$archives" "$src/tests/packaging" "$@"
}

# The clean root up to GIMP: disk and network, while the packages build.
prepare_clean_root () {
  # The .debs the Debian 13 root downloaded in this run (hard links: free).
  for deb in "$(tools/debian13-root.sh path)"/var/cache/apt/archives/*.deb; do
    [ -f "$deb" ] || continue
    [ -f "$archives/${deb##*/}" ] || ln "$deb" "$archives/" 2>/dev/null || cp "$deb" "$archives/"
  done
  if ! [ -f "$pristine" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (tools/install-deps.sh --tests)"
    fresh=$cache/debian13-clean.tmp
    rm -rf "$fresh" && mkdir -p "$fresh"
    mirror=$(tools/debian13-root.sh mirror)
    timed debootstrap debootstrap --variant=minbase --cache-dir="$archives" trixie "$fresh" "$mirror" \
      >"$work/debootstrap.log" 2>&1 || die "debootstrap failed (see $work/debootstrap.log)"
    printf 'deb %s trixie main\n' "$mirror" >"$fresh/etc/apt/sources.list"
    # services must not start while packages install
    printf '#!/bin/sh\nexit 101\n' >"$fresh/usr/sbin/policy-rc.d"
    chmod 755 "$fresh/usr/sbin/policy-rc.d"
    tar -C "$fresh" -cf "$pristine.part" . && mv "$pristine.part" "$pristine"
    rm -rf "$fresh"
    say "made the pristine clean root $pristine$(took debootstrap)"
  fi
  timed untar tar -C "$root" -xf "$pristine"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  # a throwaway root: dpkg need not fsync every file it unpacks
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/agriclip-test-unsafe-io"
  say "unpacked a clean root$(took untar)"
  in_clean_root gimp sh /tests/in-clean-root.sh prepare ||
    die "apt-get install gimp in the clean root (see $work/out/prepare.log)"
  say "installed GIMP in the clean root$(took gimp)"
}
prepare_clean_root &
prepare_pid=$!

# --- the source package, built in the Debian 13 root -----------------------
if [ -d .git ] || [ -f .git ]; then
  git ls-files -z --cached --others --exclude-standard | tar -cf - --null -T - |
    tar -C "$work/agriclip-$version" -xf -
else
  tar -cf - --exclude='./build*' . | tar -C "$work/agriclip-$version" -xf -
fi
cp -r packaging/debian "$work/agriclip-$version/debian"
# nocheck: the manual's --help check runs in the test suite already (man)
timed build tools/debian13-root.sh run sh -euc '
  cd build-packaging-test/agriclip-'"$version"'
  DEB_BUILD_OPTIONS="parallel=2 noddebs nocheck" dpkg-buildpackage -us -uc -b >../build.log 2>&1 ||
    { tail -n 60 ../build.log; exit 1; }' ||
  die "dpkg-buildpackage failed (see $work/build.log)"
cp "$work"/*.deb "$work/debs/"
say "built $(ls "$work/debs" | tr '\n' ' ')$(took build)"

# --- beside each other: lintian, the Flatpak steps, the clean root's checks --
if timed lintian tools/debian13-root.sh run sh -euc '
  cd build-packaging-test
  lintian --fail-on error --display-level ">=warning" --info *.changes >lintian.log 2>&1 ||
    { cat lintian.log; exit 1; }' >"$work/lintian.out" 2>&1
then say "lintian ended$(took lintian)"; else say "lintian failed"; exit 1; fi &
lintian_pid=$!
if timed flatpak tests/packaging/flatpak.sh "$work/flatpak" >"$work/flatpak.log" 2>&1
then say "the Flatpak steps ended$(took flatpak)"; else say "the Flatpak steps failed"; exit 1; fi &
flatpak_pid=$!

/usr/bin/python3 tests/packaging/fixture.py "$work/fixture" || die "cannot make the test model"
wait "$prepare_pid" || die "the clean root"
status=0
in_clean_root check sh /tests/in-clean-root.sh check || status=$?
sed -n 's/^== \([0-9]*\) /\1 /p' "$work/out/steps.log" | while read -r t what; do
  echo "packaging test: clean root: $what (at $(( t - start )) s)"
done
say "clean-root steps ended with status $status$(took check)"
[ "$status" -eq 0 ] || { tail -n 40 "$work/out/steps.log" >&2; die "in the clean root"; }
/usr/bin/python3 tests/packaging/check.py "$work/out" "$work/fixture" "$src" "$version" ||
  die "the installed packages do not behave"
rm -rf "$root" &  # (a minute of disk work: beside the other steps)

wait "$lintian_pid" || { cat "$work/lintian.out" >&2; die "lintian (see $work/lintian.log)"; }
say "lintian: no errors ($(grep -c '^[WE]:' "$work/lintian.log" || true) warnings)"
wait "$flatpak_pid" || { tail -n 30 "$work/flatpak.log" >&2; die "the Flatpak extension"; }
say "$(tail -n 1 "$work/flatpak.log")"
wait
say "passed"
