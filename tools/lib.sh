# Shared by tools/test.sh and tools/run-example.sh: installing Debian
# packages on a fresh Debian or Ubuntu machine, as root or through sudo.

# Runs a command as root: directly when we are root (fresh containers and
# VMs often have no sudo), else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Whether a package is installed, at least at a version when one is given.
installed() { # package [minimum version]
    local status
    status=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) || return 1
    case "$status" in "install ok installed "*) ;; *) return 1 ;; esac
    [ -z "${2:-}" ] || dpkg --compare-versions "${status##* }" ge "$2"
}

# Installs the packages that are missing. QEMU packages (qemu-system-*)
# come from bookworm-backports on Debian 12, whose own QEMU 7.2
# double-faults Debian's 6.12 kernel now and then under software emulation;
# other hosts (Debian 13, recent Ubuntu) use their own.
install_packages() { # package...
    local package missing=() backports=() bookworm=""
    if [ -r /etc/os-release ] && [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
        bookworm=1
    fi
    for package in "$@"; do
        case "$bookworm:$package" in
            1:qemu-system-*) installed "$package" 1:10 || backports+=("$package") ;;
            *) installed "$package" || missing+=("$package") ;;
        esac
    done
    [ "${#missing[@]}" -gt 0 ] || [ "${#backports[@]}" -gt 0 ] || return 0
    echo "installing ${missing[*]} ${backports[*]}" >&2
    if [ "${#backports[@]}" -gt 0 ] && ! apt-cache policy 2>/dev/null | grep -q ' bookworm-backports/main '; then
        # The host's own Debian mirror, as apt knows it, serves backports too.
        as_root apt-get update -qq || true
        local mirror
        mirror=$(apt-cache policy | awk '$3 == "bookworm/main" && $2 ~ /^https?:/ { print $2; exit }')
        if [ -z "$mirror" ]; then
            echo "error: no Debian mirror for bookworm in the apt sources; add bookworm-backports to them" >&2
            return 1
        fi
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" \
            | as_root tee /etc/apt/sources.list.d/micros-bookworm-backports.sources >/dev/null
    fi
    # Another source the host lists may be unreachable: what is needed is
    # checked by the install, which fails if it cannot be had.
    as_root apt-get update -qq || true
    if [ "${#missing[@]}" -gt 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ "${#backports[@]}" -gt 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports "${backports[@]}" >/dev/null
    fi
}
