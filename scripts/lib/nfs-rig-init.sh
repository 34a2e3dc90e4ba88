#!/bin/bash
# PID 1 of scripts/nfs-rig's User-Mode Linux machine (see there). Its / is the host's / (hostfs),
# so everything it changes goes on tmpfs mounts of its own (/run, /var/lib/nfs, /etc/exports),
# never into the host's files. $gstop_rig (from the kernel command line) is the rig's folder.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
rig=$gstop_rig
say() { echo "nfs-rig: $*"; }
finish() {  # the status file tells scripts/nfs-rig that the command ran; then power off
    echo "$1" > "$rig/status"
    sync
    echo o > /proc/sysrq-trigger
    sleep 10
}
fail() { say "$*"; finish 70; }

mount -t proc proc /proc && mount -t sysfs sysfs /sys || fail "base mounts failed"
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev || fail "mounting /dev failed"
mount -t tmpfs tmpfs /run && mkdir -p /run/lock || fail "tmpfs on /run failed"
# /dev/shm, where the processes of a host share their watcher of the stop requests.
mkdir -p /dev/shm && { mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm; } || fail "tmpfs on /dev/shm failed"
mount -t tmpfs tmpfs /var/lib/nfs && mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/v4recovery &&
    touch /var/lib/nfs/etab /var/lib/nfs/rmtab /var/lib/nfs/state || fail "tmpfs on /var/lib/nfs failed"
# The UML kernel's modules, where modprobe looks for them (-d ROOT: ROOT/lib/modules/RELEASE).
mkdir -p /run/modules/lib && ln -s /usr/lib/uml/modules /run/modules/lib/modules
for module in nfsd nfs nfsv3 nfsv4 veth quota_v2; do
    modprobe -d /run/modules "$module" || fail "modprobe $module failed"
done
hostname nfsa
ip link set lo up

# The server: an ext4 block device exported read-write (fsid=0: the root of NFSv4's pseudo tree).
# usrquota: the image's quota feature accounts, this enforces (limits set by the tests, none by default).
mkdir -p /run/export && mount -o usrquota /dev/ubdb /run/export && chmod 1777 /run/export || fail "mounting the export failed"
echo "/run/export *(rw,sync,no_subtree_check,no_root_squash,insecure,fsid=0)" > /run/exports
mount --bind /run/exports /etc/exports
mount -t nfsd nfsd /proc/fs/nfsd || fail "mounting nfsd's control files failed"
rpcbind -w || fail "rpcbind failed"
rpc.statd --no-notify || fail "rpc.statd failed"
exportfs -ra || fail "exportfs failed"
rpc.mountd 2>/dev/null || fail "rpc.mountd failed"  # (it complains of IPv6, which the rig has not)
rpc.nfsd 8 || fail "rpc.nfsd failed"

# Host nfsb: a network namespace on a veth pair, and a UTS namespace with its own name.
ip netns add b && ip link add va type veth peer name vb && ip link set vb netns b &&
    ip addr add 10.77.0.1/24 dev va && ip link set va up &&
    ip netns exec b ip addr add 10.77.0.2/24 dev vb && ip netns exec b ip link set vb up &&
    ip netns exec b ip link set lo up || fail "the second host's network failed"
touch /run/uts-b && unshare --uts=/run/uts-b hostname nfsb || fail "the second host's name failed"
on_b="nsenter --net=/run/netns/b --uts=/run/uts-b"

# Each host mounts the export with NFS v4.2 and v3, default options. nsenter, not `ip netns exec`:
# the latter makes a mount namespace of its own, and the mount would vanish with it.
mkdir -p /run/a4 /run/a3 /run/b4 /run/b3
mount -t nfs -o vers=4.2 10.77.0.1:/ /run/a4 || fail "nfsa: mount v4.2 failed"
mount -t nfs -o vers=3 10.77.0.1:/run/export /run/a3 || fail "nfsa: mount v3 failed"
$on_b mount -t nfs -o vers=4.2 10.77.0.1:/ /run/b4 || fail "nfsb: mount v4.2 failed"
$on_b mount -t nfs -o vers=3 10.77.0.1:/run/export /run/b3 || fail "nfsb: mount v3 failed"
options=$(awk '$2 ~ /^\/run\/[ab][34]$/ { print $2 " " $3 " " $4 }' /proc/mounts)
say "up: nfsd exporting an ext4 image; hosts nfsa and nfsb each with v4.2 and v3 mounts:"
echo "$options" | sed 's/^/    /'

export GSTOP_NFS_A4=/run/a4 GSTOP_NFS_A3=/run/a3 GSTOP_NFS_B4=/run/b4 GSTOP_NFS_B3=/run/b3
# The server's own view of the export (its local ext4): what is on the server, whatever a client caches.
export GSTOP_NFS_ON_B="$on_b" GSTOP_NFS_OPTIONS="$options" GSTOP_NFS_SERVER=/run/export HOME=/root LANG=C.UTF-8
bash "$rig/command.sh"
status=$?
say "the command exited with status $status"
finish "$status"
