#!/usr/bin/env bash
# Benchmark: examples/sshd.ncl, as a user runs it — its image size, and the
# guest's uptime when the SSH server first answers the host's OpenSSH
# client (median and spread over several boots).
#
#   bash bench/ssh.sh                # suite trixie, 5 boots
#   SUITE=stable BOOTS=7 bash bench/ssh.sh
#
# Needs Debian's archive (MICROS_MIRROR or the host's apt sources), QEMU
# and openssh-client.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
boots="${BOOTS:-5}"

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1pY3JPUyBleGFtcGxlOiB1c2UgeW91ciBvd24ga2V5 replace-me@example|$(cat "$work/key.pub")|" \
    -e "s|host = 2222|host = $port|" \
    -e "s|networking.hostName = \"micros-ssh\",|networking.hostName = \"micros-ssh\", packages.source.suite = \"$suite\",|" \
    examples/sshd.ncl > "$work/system.ncl"
(cd "$work" && "$micros" build > build.txt 2>&1) || { cat "$work/build.txt" >&2; exit 1; }

echo "examples/sshd.ncl, suite $suite, $boots boots"
for artifact in kernel initrd root.squashfs; do
    row "$artifact bytes" "$(stat -c %s "$work/result/$artifact")"
done

uptimes=()
for boot in $(seq 1 "$boots"); do
    "$work/result/run-vm" > "$work/console.txt" 2>&1 < /dev/null &
    pid=$!
    answer=""
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        if answer=$(ssh -F /dev/null -p "$port" -i "$work/key" -o IdentitiesOnly=yes -o BatchMode=yes \
                -o ConnectTimeout=5 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o LogLevel=ERROR root@127.0.0.1 'cut -d" " -f1 /proc/uptime' 2>/dev/null); then
            break
        fi
        answer=""
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if grep -aq -e "Oops: double fault" -e "Kernel panic" "$work/console.txt"; then
        cp "$work/console.txt" "${TMPDIR:-/tmp}/micros-bench-ssh-fault-$boot.txt"
        echo "boot $boot: the kernel crashed under the emulator (not counted; console in ${TMPDIR:-/tmp}/micros-bench-ssh-fault-$boot.txt)" >&2
        continue
    fi
    if [ -z "$answer" ]; then
        echo "boot $boot: ssh never answered" >&2
        continue
    fi
    uptimes+=("$answer")
done
[ "${#uptimes[@]}" -gt 0 ] || { echo "no boot answered" >&2; exit 1; }
sorted=$(printf '%s\n' "${uptimes[@]}" | sort -n)
row "boots that answered (crashed boots not counted)" "${#uptimes[@]} of $boots"
row "guest uptime at first SSH answer s (median)" "$(echo "$sorted" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
row "  min / max" "$(echo "$sorted" | head -1) / $(echo "$sorted" | tail -1)"
