#!/usr/bin/env bash
# Builds nubo's tiny test guest from Debian packages only, and caches it.
#
#   tests/guest/build-guest.sh [OUTDIR]      (default /var/cache/nubo/test-guest)
#
# Outputs in OUTDIR (world-readable: QEMU runs as libvirt-qemu):
#   vmlinux     uncompressed ELF kernel, extracted from the Debian bzImage's XZ
#               payload; boots through its PVH entry with libvirt <kernel> on q35
#   initrd.img  gzip'd newc initramfs: static busybox, tests/guest/init as /init,
#               the kernel modules the guest needs (virtio, isofs, ACPI button...)
#   disk.raw    2 MiB raw base disk with a marker line at offset 0; instances get
#               a qcow2 overlay on top of it
#   SHA256SUMS  of the three files above
#   STAMP       what they were built from; same packages + same scripts = no rebuild
#
# Needs: root, apt (Debian 12). Uses the Debian packages linux-image-6.1.0-N-amd64
# (the one linux-image-amd64 currently depends on) and busybox-static, fetched
# with `apt-get download` and unpacked with `dpkg-deb -x` (nothing is installed
# from them). busybox's own applets pack the initramfs (no cpio package needed).
# The vmlinux extraction needs `xz` (xz-utils, priority standard; installed
# here when missing): busybox's unxz lacks the x86 BCJ filter the kernel uses.
#
# Overrides: NUBO_GUEST_KERNEL_PKG=linux-image-6.1.0-56-amd64 pins the kernel.
# A second run with the same package versions takes well under a second.
set -euo pipefail

OUTDIR=${1:-/var/cache/nubo/test-guest}
HERE=$(cd "$(dirname "$0")" && pwd)
INIT_SRC="$HERE/init"

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get download, mknod)"
[ -f "$INIT_SRC" ] || die "missing $INIT_SRC"

mkdir -p "$OUTDIR"
chmod 755 "$OUTDIR"
# Every parent of OUTDIR must be traversable by libvirt-qemu; /var/cache/nubo
# is ours to fix, others (e.g. /root) are the caller's business.
[ "$(dirname "$OUTDIR")" = /var/cache/nubo ] && chmod 755 /var/cache/nubo

# One build at a time per OUTDIR (tests may call this in parallel).
exec 9>"$OUTDIR/.lock"
flock 9

# ---- fast path: nothing changed since the last build ----------------------------
# apt-cache takes ~0.5 s per call here (no binary package cache), so the first
# check needs none: if apt's package lists, this script and /init are all
# exactly as they were at the last successful build, the candidate versions
# cannot have changed either.
scripts_key="build-guest.sh=$(sha256sum "$0" | cut -c1-16)
init=$(sha256sum "$INIT_SRC" | cut -c1-16)"
lists_key=$( { echo "$scripts_key"; echo "pin=${NUBO_GUEST_KERNEL_PKG:-}"
    stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* 2>/dev/null || true; } | sha256sum | cut -c1-32)

print_paths() {
    echo "$OUTDIR/vmlinux"
    echo "$OUTDIR/initrd.img"
    echo "$OUTDIR/disk.raw"
    echo "$OUTDIR/SHA256SUMS"
}
outputs_present() {
    [ -f "$OUTDIR/STAMP" ] && [ -f "$OUTDIR/vmlinux" ] && [ -f "$OUTDIR/initrd.img" ] && [ -f "$OUTDIR/disk.raw" ]
}

if outputs_present && [ -f "$OUTDIR/.listkey" ] && [ "$(cat "$OUTDIR/.listkey")" = "$lists_key" ]; then
    log "cached ($(head -n 1 "$OUTDIR/STAMP"))"
    print_paths
    exit 0
fi

# ---- which packages? ----------------------------------------------------------
# "Candidate:" versions of the given packages, one "name version" a line, in
# one apt-cache call.
candidates() {
    apt-cache policy "$@" 2>/dev/null | awk '/^[^ ].*:$/ { sub(":$", ""); p = $0 }
        /^ *Candidate:/ && $2 != "(none)" { print p, $2 }'
}
# The real package behind the linux-image-amd64 metapackage.
kernel_from_meta() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: *\(linux-image-[0-9.]*-[0-9]*-amd64\)$/\1/p' | head -n 1 || true
}

kernel_pkg=${NUBO_GUEST_KERNEL_PKG:-$(kernel_from_meta)}
if [ -z "$kernel_pkg" ] || [ "$(candidates "$kernel_pkg" busybox-static | wc -l)" -ne 2 ]; then
    # A fresh machine has no package lists yet.
    log "apt-get update (no package lists)"
    apt-get update -qq
    kernel_pkg=${NUBO_GUEST_KERNEL_PKG:-$(kernel_from_meta)}
fi
[ -n "$kernel_pkg" ] || die "cannot tell which linux-image-6.1.0-*-amd64 to use"
cands=$(candidates "$kernel_pkg" busybox-static)
kernel_ver=$(echo "$cands" | awk -v p="$kernel_pkg" '$1 == p { print $2 }')
bb_ver=$(echo "$cands" | awk '$1 == "busybox-static" { print $2 }')
[ -n "$kernel_ver" ] || die "no candidate version for $kernel_pkg"
[ -n "$bb_ver" ] || die "no candidate version for busybox-static"

# The stamp names everything the outputs depend on, including this script and
# the guest's /init, so editing either rebuilds.
stamp="kernel=$kernel_pkg $kernel_ver
busybox-static=$bb_ver
$scripts_key"

if outputs_present && [ "$(cat "$OUTDIR/STAMP")" = "$stamp" ]; then
    # Lists changed (apt-get update) but not our packages.
    echo "$lists_key" >"$OUTDIR/.listkey"
    log "cached, checked with apt-cache ($kernel_pkg $kernel_ver, busybox $bb_ver)"
    print_paths
    exit 0
fi

log "building from $kernel_pkg $kernel_ver and busybox-static $bb_ver"
# xz for the kernel payload (see the header comment).
if ! command -v xz >/dev/null; then
    log "installing xz-utils"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xz-utils >/dev/null
fi

work=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# ---- fetch and unpack ------------------------------------------------------------
# apt-get download drops privileges to _apt, which cannot write into our 0700
# mktemp dir; let it.
chmod 755 "$work"
apt-get download -qq "$kernel_pkg=$kernel_ver" "busybox-static=$bb_ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
ls ./linux-image-*.deb ./busybox-static_*.deb >/dev/null 2>&1 || die "apt-get download failed"
mkdir kpkg bbpkg
dpkg-deb -x ./busybox-static_*.deb bbpkg
BB="$work/bbpkg/bin/busybox"
[ -x "$BB" ] || die "no busybox in busybox-static"
# From the kernel package only the bzImage, the config and the few modules we
# need (extracting all of it takes seconds and ~400 MB).
dpkg-deb --fsys-tarfile ./linux-image-*.deb |
    tar -x -C kpkg --wildcards './boot/vmlinuz-*' './boot/config-*' './lib/modules/*/kernel/drivers/*' './lib/modules/*/kernel/fs/*' './lib/modules/*/kernel/net/*'
kver=$(ls kpkg/lib/modules)
[ -n "$kver" ] || die "no modules in $kernel_pkg"
bzimage="kpkg/boot/vmlinuz-$kver"
config="kpkg/boot/config-$kver"
grep -q '^CONFIG_PVH=y' "$config" || die "$kernel_pkg has no CONFIG_PVH=y: cannot boot vmlinux through PVH"

# ---- vmlinux: the ELF inside the bzImage ---------------------------------------
# x86 boot protocol: setup_sects at 0x1f1 (1 byte); the protected-mode part
# starts at (setup_sects+1)*512; payload_offset (0x248) and payload_length
# (0x24c) locate the compressed kernel inside it.
le32() { od -An -t u4 -j "$1" -N 4 "$bzimage" | tr -d ' '; }
setup_sects=$(od -An -t u1 -j $((0x1f1)) -N 1 "$bzimage" | tr -d ' ')
[ "$setup_sects" -eq 0 ] && setup_sects=4
pm_start=$(( (setup_sects + 1) * 512 ))
payload_off=$(( pm_start + $(le32 $((0x248))) ))
payload_len=$(le32 $((0x24c)))
magic=$(od -An -t x1 -j "$payload_off" -N 6 "$bzimage" | tr -d ' ')
[ "$magic" = "fd377a585a00" ] || die "bzImage payload is not XZ (magic $magic)"
# --single-stream: the payload ends with 4 bytes of decompressed size, not XZ.
# (dd, not tail|head: under pipefail tail's SIGPIPE would fail the build.)
dd if="$bzimage" iflag=skip_bytes,count_bytes skip="$payload_off" count="$payload_len" bs=1M status=none |
    xz -dc --single-stream >vmlinux
[ "$(od -An -c -N 4 vmlinux | tr -d ' ')" = '177ELF' ] || die "extracted kernel is not an ELF"

# ---- modules the guest needs ----------------------------------------------------
# Only those that are =m in this kernel's config; =y ones are built in.
# Kconfig name -> module name.
want_modules=""
for pair in VIRTIO_PCI:virtio_pci VIRTIO_BLK:virtio_blk ISO9660_FS:isofs \
    ACPI_BUTTON:button INPUT_EVDEV:evdev VIRTIO_NET:virtio_net; do
    opt=${pair%%:*} mod=${pair#*:}
    case "$(sed -n "s/^CONFIG_$opt=//p" "$config")" in
        m) want_modules="$want_modules $mod" ;;
        y) ;;
        *) log "warning: CONFIG_$opt is not set in $kernel_pkg" ;;
    esac
done

# Path of a module file relative to lib/modules/KVER (.ko, or .ko.xz/.ko.zst
# in kernels built with module compression).
modpath() {
    (cd "kpkg/lib/modules/$kver" && find kernel \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) | head -n 1)
}
# The depends= field of the module's .modinfo section (the package ships no
# modules.dep: depmod runs at install time).
moddeps() {
    local f="kpkg/lib/modules/$kver/$1"
    case "$f" in
        *.xz) xz -dc "$f" ;;
        *) cat "$f" ;;
    esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}
# Depth-first: dependencies before the module itself, each once.
ordered=""
add_module() {
    local m=$1 p d
    case " $ordered " in *" $m "*) return 0 ;; esac
    p=$(modpath "$m")
    [ -n "$p" ] || die "module $m not found in $kernel_pkg"
    for d in $(moddeps "$p"); do add_module "$d"; done
    ordered="$ordered $m"
}
for m in $want_modules; do add_module "$m"; done
boot_modules=$ordered

# The screen: the PVH entry gives the kernel no VGA text console, so the display is driven by
# DRM's bochs driver (QEMU's standard VGA) with fbcon on top; /init loads these after READY,
# in the background, so that they never delay the boot (/etc/nubo-display-modules).
display_modules=""
for pair in DRM_BOCHS:bochs; do
    opt=${pair%%:*} mod=${pair#*:}
    case "$(sed -n "s/^CONFIG_$opt=//p" "$config")" in
        m) add_module "$mod" ;;
        *) log "warning: CONFIG_$opt is not a module in $kernel_pkg: the guest has no screen" ;;
    esac
done
display_modules=${ordered#"$boot_modules"}

# ---- initramfs tree ------------------------------------------------------------
root="$work/root"
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,cidata,lib/modules}
cp "$BB" "$root/bin/busybox"
for a in $("$BB" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
ln -s bin "$root/sbin"
# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
: >"$root/etc/nubo-modules"
: >"$root/etc/nubo-display-modules"
for m in $ordered; do
    list=nubo-modules
    case " $display_modules " in *" $m "*) list=nubo-display-modules ;; esac
    p=$(modpath "$m")
    mkdir -p "$root/lib/modules/$(dirname "$p")"
    case "$p" in
        *.zst) die "zstd-compressed module $p: busybox insmod cannot load it" ;;
        # busybox insmod takes plain .ko files only: decompress at build time.
        *.xz) xz -dc "kpkg/lib/modules/$kver/$p" >"$root/lib/modules/${p%.xz}"; p=${p%.xz} ;;
        *) cp "kpkg/lib/modules/$kver/$p" "$root/lib/modules/$p" ;;
    esac
    echo "$p" >>"$root/etc/$list"
done
cp "$INIT_SRC" "$root/init"
chmod 755 "$root/init"
echo "nubo-test-guest" >"$root/etc/hostname"
# udhcpc hook: applies the lease (address, router, MTU) and leaves its values in
# /run/lease-<interface> for /init to print.
cat >"$root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set dev "$interface" up ;;
    bound | renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        mkdir -p /run
        echo "ip=$ip/${mask:-24} router=${router%% *} mtu=${mtu:-none}" >"/run/lease-$interface"
        echo "NUBO-GUEST-DHCP $interface ip=$ip" >/dev/console ;;
esac
exit 0
EOF
chmod 755 "$root/etc/udhcpc.script"
# Fixed mtimes: the same inputs give the same initrd bytes.
find "$root" -exec touch -h -d @0 {} +

# newc cpio via busybox's own applet (no cpio package needed), then gzip.
(cd "$root" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null) | "$BB" gzip -9 >initrd.img

# ---- base disk -------------------------------------------------------------
# 2 MiB raw, marker line at offset 0 (the guest prints it as NUBO-ROOT-DISK).
printf 'NUBO-TEST-DISK-v1\n' >disk.raw
truncate -s 2M disk.raw

# ---- install into OUTDIR -----------------------------------------------------
chmod 644 vmlinux initrd.img disk.raw
sha256sum vmlinux initrd.img disk.raw >SHA256SUMS
chmod 644 SHA256SUMS
# Rename into place (same filesystem); STAMP last, so a crash mid-way rebuilds.
rm -f "$OUTDIR/STAMP" "$OUTDIR/.listkey"
for f in vmlinux initrd.img disk.raw SHA256SUMS; do mv -f "$f" "$OUTDIR/$f"; done
echo "$stamp" >"$OUTDIR/STAMP"
echo "$lists_key" >"$OUTDIR/.listkey"
chmod 644 "$OUTDIR/STAMP"
log "built: modules:${ordered}"
print_paths
