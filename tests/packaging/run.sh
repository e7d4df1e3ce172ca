#!/bin/sh
# The packages as a user gets them.  Builds the Debian source package
# (packaging/debian) in the Debian 13 root of tools/debian13-root.sh, checks
# it with lintian, then installs the four .debs with apt into a clean minimal
# Debian 13 root made here and checks there: agriclip --version, classify
# --labels plantvillage (the installed set) on a generated model, models list
# (the installed catalogue), and gimp-console-3.0 listing the three AgriCLIP
# procedures and running the label one; then apt-get remove must leave no file
# behind.  Meanwhile checks the Flatpak extension (tests/packaging/flatpak.sh).
#
# Caches in /var/cache/agriclip (AGC_CACHE_DIR): the pristine clean root as a
# tarball (one debootstrap, ~2 min) and the .debs apt downloads into it.
# Work folder: build-packaging-test in the source tree (removed first).
# Needs root, debootstrap and /usr/bin/python3 with torch (the test model).
set -eu
cd "$(dirname "$0")/../.."
src=$(pwd -P)
work=$src/build-packaging-test
cache=${AGC_CACHE_DIR:-/var/cache/agriclip}
pristine=$cache/debian13-clean.tar
archives=$cache/debian13-clean-apt-archives
start=$(date +%s)
say () { echo "packaging test: $* ($(( $(date +%s) - start )) s)"; }
die () { echo "packaging test: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (chroot, mounts, apt)"
version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" meson.build)
[ -n "$version" ] || die "no version in meson.build"
head -n 1 packaging/debian/changelog | grep -q "^agriclip ($version)" ||
  die "packaging/debian/changelog does not start with version $version (meson.build)"

# --- the source package, built in the Debian 13 root -----------------------
rm -rf "$work"
mkdir -p "$work/agriclip-$version" "$work/debs" "$work/fixture" "$work/out"
if [ -d .git ] || [ -f .git ]; then
  git ls-files -z --cached --others --exclude-standard | tar -cf - --null -T - |
    tar -C "$work/agriclip-$version" -xf -
else
  tar -cf - --exclude='./build*' . | tar -C "$work/agriclip-$version" -xf -
fi
cp -r packaging/debian "$work/agriclip-$version/debian"
tools/debian13-root.sh run sh -euc '
  cd build-packaging-test/agriclip-'"$version"'
  DEB_BUILD_OPTIONS="parallel=2 noddebs" dpkg-buildpackage -us -uc -b >../build.log 2>&1 ||
    { tail -n 60 ../build.log; exit 1; }
  cd ..
  lintian --fail-on error --display-level ">=warning" --info *.changes | tee lintian.log' ||
  die "dpkg-buildpackage or lintian failed (see $work/build.log, $work/lintian.log)"
mv "$work"/*.deb "$work/debs/"
say "built $(ls "$work/debs" | tr '\n' ' ')"

# The Flatpak extension's checks build in the Debian 13 root meanwhile (CPU)
# while the clean root below installs packages (mostly disk and network).
tests/packaging/flatpak.sh "$work/flatpak" >"$work/flatpak.log" 2>&1 &
flatpak_pid=$!

# --- what the checks run on --------------------------------------------------
/usr/bin/python3 tests/packaging/fixture.py "$work/fixture" || die "cannot make the test model"

# --- a clean Debian 13 root, from the cached tarball --------------------------
if ! [ -f "$pristine" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is not installed (tools/install-deps.sh --tests)"
  fresh=$cache/debian13-clean.tmp
  rm -rf "$fresh"
  mkdir -p "$fresh" "$archives"
  mirror=$(tools/debian13-root.sh mirror)
  debootstrap --variant=minbase --cache-dir="$archives" trixie "$fresh" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || die "debootstrap failed (see $work/debootstrap.log)"
  printf 'deb %s trixie main\n' "$mirror" >"$fresh/etc/apt/sources.list"
  # services must not start while packages install
  printf '#!/bin/sh\nexit 101\n' >"$fresh/usr/sbin/policy-rc.d"
  chmod 755 "$fresh/usr/sbin/policy-rc.d"
  tar -C "$fresh" -cf "$pristine.part" . && mv "$pristine.part" "$pristine"
  rm -rf "$fresh"
  say "made the pristine clean root $pristine"
fi
root=$work/clean-root
mkdir -p "$root" "$archives"
tar -C "$root" -xf "$pristine"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
say "unpacked a clean root"

# In a private mount namespace: /proc, /sys, /dev, the apt download cache,
# the .debs, the fixture and the output folder.
status=0
unshare --mount --propagation private -- sh -euc '
  root=$1 work=$2 archives=$3 tests=$4
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  for pair in "$archives:/var/cache/apt/archives" "$work/debs:/debs" "$work/fixture:/fixture" \
              "$work/out:/out" "$tests:/tests"; do
    mkdir -p "$root${pair#*:}"
    mount --bind "${pair%%:*}" "$root${pair#*:}"
  done
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent LANG=C.UTF-8 \
    chroot "$root" sh /tests/in-clean-root.sh' sh "$root" "$work" "$archives" \
  "$src/tests/packaging" || status=$?
say "clean-root steps ended with status $status"
[ "$status" -eq 0 ] || { tail -n 40 "$work/out/steps.log" >&2; die "in the clean root"; }

/usr/bin/python3 tests/packaging/check.py "$work/out" "$work/fixture" "$src" "$version" ||
  die "the installed packages do not behave"
rm -rf "$root"
wait "$flatpak_pid" || { tail -n 30 "$work/flatpak.log" >&2; die "the Flatpak extension"; }
say "$(tail -n 1 "$work/flatpak.log")"
say "passed"
