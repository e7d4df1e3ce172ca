#!/bin/sh
# Runs inside the clean Debian 13 root of tests/packaging/run.sh: /debs holds
# the built packages, /fixture a test model and photo, /out takes what the
# installed programs printed (tests/packaging/check.py judges it).
# Usage: in-clean-root.sh prepare   apt-get install GIMP (while the packages build)
#        in-clean-root.sh check     install ours, use them, remove them
set -eu
export DEBIAN_FRONTEND=noninteractive
ours="libagriclip0 libagriclip-dev agriclip gimp-plugin-agriclip"
step () { echo "== $(date +%s) $*"; }

if [ "$1" = prepare ]; then
  exec >/out/prepare.log 2>&1
  # gimp-plugin-agriclip depends on it; whether our packages' own Depends
  # bring everything else their programs load is checked below (needed.txt).
  apt-get update -q
  apt-get install -y -q --no-install-recommends gimp
  exit 0
fi

exec >/out/steps.log 2>&1
# Every file and folder outside the places apt, dpkg and the test write to.
snapshot () {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /out \
    -o -path /debs -o -path /fixture -o -path /tests -o -path /root -o -path /var/lib/dpkg \
    -o -path /var/lib/apt -o -path /var/cache -o -path /var/log -o -path /run \) -prune \
    -o -print | sort
}

step "apt-get install the built packages and what they depend on"
apt-get install -y -q --no-install-recommends /debs/*.deb
dpkg-query -W -f='${Package} ${Version} ${Status}\n' $ours >/out/installed.txt

step "remove ours, keeping what they pulled in: the state to come back to"
apt-get remove -y -q $ours
snapshot >/out/before.txt
apt-get install -y -q --no-install-recommends /debs/*.deb
dpkg -L $ours | sort -u >/out/files.txt

step "the libraries our programs load, and the packages providing them"
# PACKAGE FILE SONAME PATH REALPATH for every library ldd resolves, and who
# owns those paths (dpkg -S, once: each call reads the whole database);
# check.py wants the owner among PACKAGE's dependencies, recursively.
for p in $ours; do
  for f in $(dpkg -L "$p"); do
    [ -f "$f" ] && ! [ -L "$f" ] && [ "$(head -c 4 "$f" | tail -c 3)" = ELF ] || continue
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r soname path; do
      echo "$p $f $soname $path $(realpath "$path")"
    done
  done
done >/out/needed.txt
# (merged /usr: dpkg may know a library by its path with or without /usr)
awk '{ print $4; print $5; sub("^/usr", "", $4); print $4; sub("^/usr", "", $5); print $5 }' \
  /out/needed.txt | sort -u | xargs dpkg -S >/out/owners.txt 2>/dev/null || true
dpkg-query -W -f='${Package}\t${Pre-Depends}, ${Depends}\t${Provides}\n' >/out/depends.txt

home=$(mktemp -d)
export HOME="$home" LC_ALL=C.UTF-8
step "agriclip --version"
agriclip --version >/out/version.txt
step "agriclip classify --labels plantvillage"
agriclip classify --model /fixture/model --labels plantvillage --top 38 --format jsonl \
  /fixture/leaf.png >/out/classify.jsonl
step "agriclip models list"
agriclip models list >/out/models.txt
step "bash completion and manual pages"
ls /usr/share/bash-completion/completions/agriclip /usr/share/man/man1/agriclip*.1.gz \
  >/out/docs.txt

step "gimp-console-3.0: the AgriCLIP procedures, and Label on the fixture photo"
# (no Python bytecode of GIMP's own plug-ins: it would outlive our packages)
AGC_OUT=/out PYTHONDONTWRITEBYTECODE=1 gimp-console-3.0 -i -d --batch-interpreter python-fu-eval -b - --quit \
  </tests/gimp_procedures.py >/out/gimp.log 2>&1 || echo "gimp-console-3.0 exited with $?"
cat /out/gimp.log

step "apt-get remove"
rm -rf "$home"
apt-get remove -y -q $ours
snapshot >/out/after.txt
dpkg-query -W -f='${Package} ${Status}\n' $ours >/out/removed.txt 2>&1 || true
step "done"
