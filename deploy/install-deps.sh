#!/usr/bin/env bash
# Installs the Debian packages nubo needs to build, run and test, when they are missing.
# Idempotent: prints what it installs, and nothing but one line when everything is there.
# Run as root (apt-get); as another user it only reports what is missing.
set -euo pipefail

PACKAGES=(
    # build
    build-essential pkg-config clang libclang-rt-14-dev clang-format cppcheck
    libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev libssl-dev
    libvirt-dev librados-dev libxml2-dev libcmocka-dev
    # run: the control plane's database
    postgresql postgresql-client
    # run: a compute node (libvirtd with QEMU, KVM or emulation), its disks and config drives;
    # xz-utils and busybox-static's download build the test guest (tests/guest/build-guest.sh)
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
    seabios ipxe-qemu genisoimage xz-utils
    # run/test: a single-node Ceph (one mon, one memstore OSD, no mgr) for the image store's
    # RADOS backend (tests/lib/ceph-up.sh); ceph-common brings the ceph and rados CLIs
    ceph-mon ceph-osd ceph-common
    # run/test: tenant networks (netctl/): Open vSwitch (userspace datapath here), strongSwan
    # with its userspace ESP plugin (kernel-libipsec, in libcharon-extra-plugins) for VPN
    # gateways, WireGuard in userspace for remote access, ethtool for checksum offload,
    # dnsmasq for the tenant networks' DHCP
    openvswitch-switch openvswitch-common strongswan-charon strongswan-swanctl
    libcharon-extra-plugins wireguard-go wireguard-tools ethtool dnsmasq-base
    # test: a real DHCP client (busybox udhcpc) in the instances' namespaces
    busybox-static
    # test: real clients and load tools
    python3-botocore python3-boto3 python3-yaml awscli curl wrk openssh-client openssl
    # test: the web console in headless Chromium, driven by Playwright (tests/e2e/test_console.py
    # installs playwright-core from npm under build/node; node and npm come with the machine's
    # Node.js, whose package conflicts with Debian's npm)
    chromium
    # run: the in-browser VM console's client (noVNC), served by the gateway under
    # /console/novnc/ (console.novnc_dir)
    novnc
)

missing=()
for p in "${PACKAGES[@]}"; do
    # dpkg-query prints "install ok installed" only for a package that is fully there.
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} Debian packages present"
    exit 0
fi

echo "deps: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root, so not installing; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update"
apt-get update -qq
echo "deps: apt-get install ${missing[*]}"
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} packages"
