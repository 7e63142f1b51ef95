#!/bin/busybox sh
# /init of vmlat's lab guest (see lab/src/qemu.rs for the host's side of each step).
#
# Boot: mount the kernel's filesystems, load the virtio modules, configure eth0 from the
# kernel command line (vmlat.addr=ADDR/LEN, vmlat.name=ROUTER), read the lab's files from the data disk
# (/dev/vda, a tar the host wrote), then serve the control channel on /dev/ttyS1: one
# command per line, one reply line per command, `ok ...` or `error ...`. The console
# (kernel and this script's own messages) is /dev/ttyS0.

/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
# The recorder samples the freezer state of keepalived's cgroup.
mount -t cgroup2 cgroup2 /sys/fs/cgroup

# Dependencies first: busybox insmod does not resolve them.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net virtio_blk; do
    insmod "/lib/modules/$m.ko" || echo "vmlat-init: insmod $m failed"
done

addr=
tmpdisk=
files=
for word in $(cat /proc/cmdline); do
    case "$word" in
        vmlat.addr=*) addr="${word#vmlat.addr=}" ;;
        # The length of the lab files' tar at the start of /dev/vda.
        vmlat.files=*) files="${word#vmlat.files=}" ;;
        # A second disk for /tmp (io-stall on a guest): ext4, made by the host.
        vmlat.tmpdisk=*) tmpdisk="/dev/${word#vmlat.tmpdisk=}" ;;
        # The bundle's hostname: the router's name, not "(none)".
        vmlat.name=*) hostname "${word#vmlat.name=}" ;;
    esac
done

# The devices appear once their drivers probe; a missing one is a broken image or command line.
n=0
while [ ! -e /sys/class/net/eth0 ] || [ ! -b /dev/vda ] || { [ -n "$tmpdisk" ] && [ ! -b "$tmpdisk" ]; }; do
    n=$((n + 1))
    [ "$n" -gt 100 ] && { echo "vmlat-init: no eth0, /dev/vda or $tmpdisk after 10 s"; break; }
    sleep 0.1
done
# sync: every write(2) to /tmp waits for the host to write it, like the io-stall lab's disk.
[ -n "$tmpdisk" ] && { mount -o sync "$tmpdisk" /tmp || echo "vmlat-init: mount $tmpdisk failed"; }

ip link set lo up
[ -n "$addr" ] && ip addr add "$addr" dev eth0
ip link set eth0 up

mkdir -p /etc/vmlat /var/vmlat /run/keepalived
# The tar's length only: busybox tar reads its input to the end, and the whole disk
# took 5 s under TCG.
{ [ -n "$files" ] && head -c "$files" /dev/vda | tar -xf - -C /etc/vmlat; } ||
    echo "vmlat-init: no lab files on /dev/vda (vmlat.files=$files)"

ka=/run/keepalived
rec_pid=
ka_pid=

# Replies on the control channel; fd 3 is the channel.
reply() { echo "$*" >&3; }

vrrp_pid() { cat "$ka/vrrp.pid" 2>/dev/null; }

# The state letter of a process (R, S, T...), the field after its parenthesised comm.
state_of() {
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return
    stat=${stat##*) }
    echo "${stat%% *}"
}

start() {
    # The recorder first, so that it sees keepalived from its first syscall.
    vmlat record -o /var/vmlat/bundle -i eth0 --comm 'keepalived*' --role guest \
        >/var/vmlat/record.log 2>&1 &
    rec_pid=$!
    n=0
    until grep -q '"recording"' /var/vmlat/bundle/manifest.json 2>/dev/null; do
        n=$((n + 1))
        if [ "$n" -gt 600 ] || ! kill -0 "$rec_pid" 2>/dev/null; then
            reply "error vmlat record did not start: $(tail -n 3 /var/vmlat/record.log | tr '\n' ' ')"
            return
        fi
        sleep 0.1
    done
    keepalived -n -l -D -f /etc/vmlat/keepalived.conf -p "$ka/keepalived.pid" \
        -r "$ka/vrrp.pid" -c "$ka/checker.pid" >/var/vmlat/keepalived.log 2>&1 &
    ka_pid=$!
    n=0
    until [ -n "$(vrrp_pid)" ]; do
        n=$((n + 1))
        if [ "$n" -gt 100 ] || ! kill -0 "$ka_pid" 2>/dev/null; then
            reply "error keepalived did not start: $(tail -n 3 /var/vmlat/keepalived.log | tr '\n' ' ')"
            return
        fi
        sleep 0.1
    done
    reply "ok $ka_pid $(vrrp_pid)"
}

# Waits up to 2 s for process $1 to reach state $2 (or to leave it, for "!T"); replies
# ok, or an error naming the state it stayed in after $3.
await_state() {
    n=0
    while [ "$n" -le 20 ]; do
        st=$(state_of "$1")
        case "$2" in
            !*) [ "$st" != "${2#!}" ] && { reply "ok $1"; return; } ;;
            *) [ "$st" = "$2" ] && { reply "ok $1"; return; } ;;
        esac
        n=$((n + 1))
        sleep 0.1
    done
    reply "error process $1 is in state $st after $3, not $2"
}

# Sends signal $1 to process $2; the VRRP process must then reach state $3.
signal_and_await() {
    pid=$(vrrp_pid)
    [ -n "$pid" ] || { reply "error no keepalived VRRP process"; return; }
    kill "-$1" "$2"
    await_state "$pid" "$3" "SIG$1 (keepalived's VRRP process)"
}

finish() {
    [ -n "$rec_pid" ] && kill -INT "$rec_pid" && wait "$rec_pid"
    [ -n "$ka_pid" ] && kill -TERM "$ka_pid" && wait "$ka_pid"
    # The kernel's log says which clocksource the guest's clocks ran on, and any change.
    dmesg >/var/vmlat/kernel.log
    # The data disk gets the bundle and the logs as one tar, read by the host.
    if tar -cf /dev/vda -C /var/vmlat bundle keepalived.log kernel.log && sync; then
        reply "ok"
    else
        reply "error writing the bundle to /dev/vda failed"
    fi
}

stty -F /dev/ttyS1 raw -echo
exec 3<>/dev/ttyS1
echo "vmlat-init: control channel up on /dev/ttyS1"
while read -r cmd arg <&3; do
    case "$cmd" in
        ping) reply "ok pong $arg" ;;
        # Set at a whole second the host chose; busybox date takes whole seconds only.
        clock) date -u -s "@$arg" >/dev/null && reply "ok" ;;
        now) reply "ok $(date -u -Ins)" ;;
        start) start ;;
        addrs) reply "ok $(ip -o addr show dev eth0 | tr '\n' ' ')" ;;
        stop-vrrp) signal_and_await STOP "$(vrrp_pid)" T ;;
        cont-vrrp) signal_and_await CONT "$(vrrp_pid)" '!T' ;;
        # keepalived's main process passes SIGUSR2 on to the VRRP child, which writes
        # /tmp/keepalived.stats; on a stalled /tmp disk that write blocks (D).
        stats) signal_and_await USR2 "$ka_pid" D ;;
        # A process other than keepalived writes /tmp; on a stalled /tmp disk it blocks (D).
        fill) sh -c 'echo vmlat >/tmp/vmlat-fill' & await_state "$!" D "writing /tmp/vmlat-fill" ;;
        finish) finish ;;
        *) reply "error unknown command $cmd" ;;
    esac
done
echo "vmlat-init: control channel closed"
poweroff -f
