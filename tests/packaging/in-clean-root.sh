#!/bin/sh
# Runs inside the clean Debian 13 root of tests/packaging/run.sh: /debs holds
# the built packages, /fixture a test model and photo, /out takes what the
# installed programs printed (tests/packaging/check.py judges it).
set -eu
exec >/out/steps.log 2>&1
export DEBIAN_FRONTEND=noninteractive
ours="libagriclip0 libagriclip-dev agriclip gimp-plugin-agriclip"
step () { echo "== $*"; }
# Every file and folder outside the places apt, dpkg and the test write to.
snapshot () {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /out \
    -o -path /debs -o -path /fixture -o -path /tests -o -path /root -o -path /var/lib/dpkg \
    -o -path /var/lib/apt -o -path /var/cache -o -path /var/log -o -path /run \) -prune \
    -o -print | sort
}

step "apt-get install the built packages and what they depend on"
apt-get update -q
apt-get install -y -q --no-install-recommends /debs/*.deb
dpkg-query -W -f='${Package} ${Version} ${Status}\n' $ours >/out/installed.txt

step "remove ours, keeping what they pulled in: the state to come back to"
apt-get remove -y -q $ours
snapshot >/out/before.txt
apt-get install -y -q --no-install-recommends /debs/*.deb
dpkg -L $ours | sort -u >/out/files.txt

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
