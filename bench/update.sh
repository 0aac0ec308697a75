#!/usr/bin/env bash
# Benchmark: updates of examples/sshd.ncl built for them (aarch64, the A/B
# disk under QEMU with U-Boot): the bundle's size next to a RAUC bundle of
# the same slot and to re-flashing the whole disk; `micros deploy` over
# loopback SSH (send and install, then downtime: reboot to the health check
# passing); and the time a broken version takes to roll back on its own.
#
#   bash bench/update.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources), QEMU
# (qemu-system-arm) and openssh-client; `rauc` and openssl for the RAUC
# row (skipped without them).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/ssh-key"
(cd "$work" && "$micros" keygen update.key > /dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config() { # VERSION EXTRA
    sed -e "s|ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1pY3JPUyBleGFtcGxlOiB1c2UgeW91ciBvd24ga2V5 replace-me@example|$(cat "$work/ssh-key.pub")|" \
        -e "s|host = 2222|host = $port|" \
        -e "s|networking.hostName = \"micros-ssh\",|networking.hostName = \"micros-ssh\", packages.source.suite = \"$suite\", platform.host = \"aarch64-linux\", boot.overlay = \"data\", system.update = { enable = true, version = \"$1\", trustedKeys = [\"$(cat "$work/update.key.pub")\"], healthCheck.services = [\"sshd\"] $2 },|" \
        examples/sshd.ncl > "$work/v$1.ncl"
}
config 1 ""
config 2 ""
config 3 ", healthCheck.command = \"false\", healthCheck.timeout = 5"
(cd "$work" && "$micros" build -A disk v1.ncl > build.txt 2>&1) || { cat "$work/build.txt" >&2; exit 1; }
(cd "$work" && "$micros" build -A update --key update.key -o v2 v2.ncl > build.txt 2>&1) || { cat "$work/build.txt" >&2; exit 1; }

echo "examples/sshd.ncl on aarch64 with system.update.enable, suite $suite"
row "update.bundle bytes (micros)" "$(stat -c %s "$work/v2/update.bundle")"
if command -v rauc > /dev/null && command -v openssl > /dev/null; then
    # The same slot as a RAUC bundle: kernel as Debian ships it, initrd,
    # root, signed with a self-made certificate.
    mkdir "$work/rauc"
    cp "$work/v2/kernel" "$work/v2/initrd" "$work/v2/root.squashfs" "$work/rauc/"
    printf '[update]\ncompatible=micros-ssh\nversion=2\n\n[image.rootfs]\nfilename=root.squashfs\n\n[image.kernel]\nfilename=kernel\n\n[image.initrd]\nfilename=initrd\n' > "$work/rauc/manifest.raucm"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj /CN=bench -keyout "$work/rauc.key" -out "$work/rauc.crt" 2> /dev/null
    rauc bundle --cert="$work/rauc.crt" --key="$work/rauc.key" "$work/rauc" "$work/update.raucb" > /dev/null 2>&1
    row "the same slot as a RAUC bundle bytes (rauc bundle)" "$(stat -c %s "$work/update.raucb")"
else
    row "the same slot as a RAUC bundle bytes (rauc bundle)" "rauc not installed"
fi
row "re-flashing instead: disk.img bytes written" "$(stat -c %s "$work/result/disk.img")"

MICROS_DISK="$work/disk.img" "$work/result/run-vm" > "$work/console.txt" 2>&1 < /dev/null &
pid=$!
trap 'kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
ssh_options=(--ssh-option "IdentityFile=$work/ssh-key" --ssh-option IdentitiesOnly=yes
    --ssh-option StrictHostKeyChecking=no --ssh-option UserKnownHostsFile=/dev/null --ssh-option LogLevel=ERROR)
for _ in $(seq 1 300); do
    (cd "$work" && "$micros" deploy --status --to "root@127.0.0.1:$port" "${ssh_options[@]}" > /dev/null 2>&1) && break
    sleep 1
done
deploy() { # CONFIG
    local start end
    start=$(date +%s.%N)
    (cd "$work" && "$micros" deploy --to "root@127.0.0.1:$port" --key update.key -o "out-$1" "${ssh_options[@]}" "$1" > "deploy-$1.txt" 2>&1) || true
    end=$(date +%s.%N)
    python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$start" "$end"
}
whole=$(deploy v2.ncl)
line=$(tail -1 "$work/deploy-v2.ncl.txt")
case "$line" in *confirmed*) ;; *) cat "$work/deploy-v2.ncl.txt" >&2; exit 1 ;; esac
row "deploy v1 -> v2: send and install s" "$(echo "$line" | sed -n 's/.*deploy \([0-9.]*\) s.*/\1/p')"
row "deploy v1 -> v2: downtime, reboot to health check passed s" "$(echo "$line" | sed -n 's/.*downtime \([0-9.]*\) s.*/\1/p')"
row "deploy v1 -> v2: whole command (build, send, install, reboot) s" "$whole"
deploy v3.ncl > /dev/null
line=$(grep 'rolled back after' "$work/deploy-v3.ncl.txt" || true)
[ -n "$line" ] || { cat "$work/deploy-v3.ncl.txt" >&2; exit 1; }
row "broken v3 (health check fails, timeout 5 s): reboot to back on v2 s" "$(echo "$line" | sed -n 's/.*rolled back after \([0-9.]*\) s.*/\1/p')"
