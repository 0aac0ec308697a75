#!/usr/bin/env bash
# Benchmark: Debian's daemons as a user adds them. Each package is added with
# `runit.services.daemon.fromUnit = "<its systemd unit>"` and nothing
# hand-written, built, booted under QEMU and probed from inside the guest
# (its port open, or its process running) by a one-shot service. The table
# says which work and, for the others, why not (the build's error, or the
# daemon's last console lines). On Debian itself, under systemd, every one
# of them works: that is the bar.
#
#   bash bench/daemons.sh                      # the whole list
#   DAEMONS="mosquitto nginx" bash bench/daemons.sh
#   SUITE=stable bash bench/daemons.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources) and QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

# name|packages (space-separated)|unit|what else the system needs (a Nickel
# line: not the daemon's service, which comes from its unit, but what
# Debian takes for granted)|probe (sh, in the guest)
list=(
    "mosquitto|mosquitto|mosquitto.service||netstat -ltn | grep -q ':1883 '"
    # Its stock configuration runs perl scripts (include_shell); perl-base
    # is Essential in Debian, so lighttpd does not depend on it.
    "lighttpd|lighttpd perl-base|lighttpd.service||netstat -ltn | grep -q ':80 '"
    "nginx|nginx|nginx.service||netstat -ltn | grep -q ':80 '"
    "dnsmasq|dnsmasq|dnsmasq.service||netstat -lun | grep -q ':53 '"
    "chrony|chrony|chrony.service||pidof chronyd"
    "openssh-server|openssh-server|ssh.service||netstat -ltn | grep -q ':22 '"
    # Type=dbus: the D-Bus system bus, which systemd systems always run.
    "avahi-daemon|avahi-daemon|avahi-daemon.service|services.dbus.enable = true,|netstat -lun | grep -q ':5353 '"
    "haproxy|haproxy|haproxy.service||pidof haproxy"
    "rsyslog|rsyslog|rsyslog.service||pidof rsyslogd"
    "redis-server|redis-server|redis-server.service||netstat -ltn | grep -q ':6379 '"
)
wanted="${DAEMONS:-}"
export MICROS_CACHE_DIR="${MICROS_CACHE_DIR:-$HOME/.cache/micros}"

echo "Debian daemons added with fromUnit, suite $suite"
works=0
tried=0
for entry in "${list[@]}"; do
    IFS='|' read -r name packages unit extra probe <<< "$entry"
    if [ -n "$wanted" ] && ! grep -qw -- "$name" <<< "$wanted"; then
        continue
    fi
    tried=$((tried + 1))
    dir="$work/$name"
    mkdir -p "$dir"
    package_set=""
    for package in $packages; do package_set="$package_set \"$package\" = true,"; done
    cat > "$dir/system.ncl" <<NCL
let micros = import "micros" in
micros.system { modules = [ micros.profiles.minimal, micros.profiles.qemu, {
  networking.hostName = "compat",
  packages.source.suite = "$suite",
  environment.packages = { $package_set },
  runit.services.daemon.fromUnit = "$unit",
  $extra
  runit.services.probe = {
    oneshot = true,
    command = micros.lib.shell.command ["sh", "-c", m%"
      n=0
      while [ \$n -lt 90 ]; do
        if $probe; then echo PROBE-OK; /usr/sbin/poweroff; exit 0; fi
        sleep 1; n=\$((n + 1))
      done
      echo PROBE-FAIL; /usr/sbin/poweroff
    "%],
  },
} ] }
NCL
    if ! (cd "$dir" && "$micros" build > build.txt 2>&1); then
        row "$name" "does not build"
        grep -m1 '^error' "$dir/build.txt" | sed 's/^/    /' || tail -3 "$dir/build.txt" | sed 's/^/    /'
        continue
    fi
    grep '^warning: runit.services.daemon' "$dir/build.txt" | sed 's/^warning: runit.services.daemon.fromUnit: /    warning: /' || true
    timeout 300 "$dir/result/run-vm" > "$dir/console.txt" 2>&1 < /dev/null || true
    if grep -aq PROBE-OK "$dir/console.txt"; then
        works=$((works + 1))
        row "$name" "works${extra:+ (with $extra)}"
    else
        row "$name" "does not run"
        # What its packages' scripts do that MicrOS did not, first.
        for package in $packages; do
            grep -a "^note: $package:" "$dir/build.txt" | cut -c1-160 | sed 's/^/    /' || true
        done
        # The daemon's own words: console lines that are not the kernel's,
        # runit's or the probe's.
        grep -av -e '^\[ *[0-9.]*\]' -e 'runit' -e 'PROBE' -e '^micros' "$dir/console.txt" \
            | grep -a . | tail -4 | cut -c1-160 | sed 's/^/    /'
    fi
done
row "daemons that work (of those tried)" "$works of $tried"
