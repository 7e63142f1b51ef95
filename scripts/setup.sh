#!/usr/bin/env bash
# Installs everything vmlat needs to build, record and run its labs on Debian 12.
# Idempotent: safe to run again.
set -euo pipefail

packages=(
  libpcap-dev   # libpcap headers for the pcap crate
  keepalived    # the VRRP daemon the labs run
  tcpdump       # reads our pcaps in tests, and users' captures
  sysstat       # iostat, the peer of our disk counters
  iproute2      # ip netns, veth, bridges
  procps        # ps, pkill
  util-linux    # losetup, mount, nsenter
  psmisc        # killall, fuser
  stress-ng     # CPU faults in labs
  iptables      # network faults in labs
  e2fsprogs     # mkfs.ext4 for the disk-stall lab
  chromium      # the HTML report test renders the page headless
  systemd       # journald and journalctl: the keepalived journal copy
  prometheus    # promtool and a real server scrape `vmlat watch --metrics` in tests
  help2man      # the package's man pages, from --help
  qemu-system-x86         # QEMU guest routers in labs (TCG; KVM is not needed)
  linux-image-cloud-amd64 # the guest's kernel (virtio modules, tracepoints built in)
  busybox-static          # the guest's userland (/init, ip, tar, date)
  binutils                # strip: vmlat goes into the guest image without debug info
  tar                     # the guest's files and bundle travel as a tar on a raw disk
  vagrant vagrant-libvirt  # `vagrant validate` of the Vagrantfile
  linux-perf              # the peer of the recording benchmarks (scripts/bench-*.sh)
  haproxy nginx           # the load balancer of scripts/bench-lb.sh
  wrk hey                 # its load: saturation (wrk) and a fixed rate (hey -q)
  curl                    # scripts/bench-lb.sh scrapes `vmlat watch --metrics`
)
missing=()
for p in "${packages[@]%% *}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # qemu-system-x86 refuses to install beside a qemu-utils from another QEMU build (some
  # machines of this kind come with a backported qemu-utils and no source for the rest of
  # that build): take the distribution's qemu-utils too, so that the two match.
  downgrade=()
  if [[ " ${missing[*]} " == *" qemu-system-x86 "* ]]; then
    have=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    want=$(apt-cache policy qemu-system-common | awk '/Candidate:/ {print $2}')
    if [ -n "$have" ] && [ -n "$want" ] && [ "$have" != "$want" ]; then
      echo "setup: qemu-utils $have -> $want, the version of qemu-system-x86"
      missing+=("qemu-utils=$want")
      downgrade=(--allow-downgrades)
    fi
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${downgrade[@]}" "${missing[@]}" >/dev/null
fi

# perf tracepoints need tracefs; vmlat mounts it itself, but tests read format files.
if [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
# The Debian package's builder (scripts/package.sh).
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb --version 3.8.0
