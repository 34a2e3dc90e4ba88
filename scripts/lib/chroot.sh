# Shared by scripts/slurm-cluster and scripts/userland: a Debian release debootstrapped once into a
# cache folder and kept, and the mounts a program inside it needs. Source it; it needs `die`.

# chroot_build ROOT SUITE INCLUDE [PACKAGE...]: debootstrap SUITE (minbase plus the comma-separated
# INCLUDE) into ROOT unless ROOT is already complete, then apt-get install the PACKAGEs inside. A
# half-made ROOT never looks complete: it is built in ROOT.partial and renamed at the end.
chroot_build() {
    local root=$1 suite=$2 include=$3
    shift 3
    [ -f "$root/.gracefulstop-ready" ] && return
    [ "$(id -u)" = 0 ] || die "building the $suite chroot in $root needs root"
    export DEBIAN_FRONTEND=noninteractive
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } || die "apt-get install debootstrap failed"
    local started=$SECONDS script=()
    # debootstrap has no script of its own for forky yet; sid's is the one that fits.
    [ "$suite" = forky ] && script=(/usr/share/debootstrap/scripts/sid)
    echo "debootstrapping $suite into $root (once; kept for later runs) ..." >&2
    rm -rf "$root.partial"
    mkdir -p "$(dirname "$root")"
    debootstrap --variant=minbase --include="$include" "$suite" "$root.partial" http://deb.debian.org/debian \
        "${script[@]}" > "$root.partial.log" 2>&1 || { tail -n 20 "$root.partial.log" >&2; die "debootstrap $suite failed (log: $root.partial.log)"; }
    # Package scripts must not start services in the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$root.partial/usr/sbin/policy-rc.d"
    chmod +x "$root.partial/usr/sbin/policy-rc.d"
    if [ $# -gt 0 ]; then
        mount -t proc proc "$root.partial/proc"
        chroot "$root.partial" apt-get install -y -qq --no-install-recommends "$@" >> "$root.partial.log" 2>&1 ||
            { umount "$root.partial/proc"; tail -n 20 "$root.partial.log" >&2; die "installing $* in the $suite chroot failed"; }
        umount "$root.partial/proc"
    fi
    mv "$root.partial" "$root"
    mv "$root.partial.log" "$root.log"
    touch "$root/.gracefulstop-ready"
    echo "$suite chroot ready in $root after $((SECONDS - started)) s" >&2
}

# chroot_mount ROOT: the chroot sees this machine's /proc, /sys, /dev and /tmp (so paths under /tmp
# are the same on both sides) and its /etc/hosts; it keeps its own /run.
chroot_mount() {
    local root=$1 place
    for place in proc sys dev tmp; do
        mountpoint -q "$root/$place" || mount --bind "/$place" "$root/$place"
    done
    cp /etc/hosts "$root/etc/hosts"
}

chroot_unmount() {
    local root=$1 place
    for place in tmp dev sys proc; do
        mountpoint -q "$root/$place" && umount -l "$root/$place" || true
    done
}
