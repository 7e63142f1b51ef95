#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus into fuzz/seeds/TARGET/ (docs/fuzzing.md).

Seeds are the repository's own inputs (test captures, scenario files, keepalived log
fixtures) plus malformed heartbeats made here: VRRP whose counts, lengths, versions or
checksums lie, cut at every layer, the cases tcpdump's print-vrrp.c guards against.
Run from the repository root: python3 fuzz/make-seeds.py
"""
import glob
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
LINK = {1: 0, 113: 1, 276: 2, 101: 3, 0: 4, 108: 5}  # DLT -> heartbeat_decode's first byte


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def vrrp(version=2, vrid=51, prio=100, count=1, interval=1, addrs=(b"\x0a\x0a\x00\x64",), good_sum=True):
    if version == 2:
        head = struct.pack("!BBBBBBH", 0x20 | 1, vrid, prio, count, 0, interval, 0)
        body = head + b"".join(addrs) + b"\0" * 8
    else:
        head = struct.pack("!BBBBHH", 0x30 | 1, vrid, prio, count, interval & 0xFFF, 0)
        body = head + b"".join(addrs)
    s = checksum(body) if good_sum else 0xBEEF
    return body[:6] + struct.pack("!H", s) + body[8:]


def ipv4(payload, proto=112, src=b"\x0a\x0a\x00\x01", dst=b"\xe0\x00\x00\x12", ttl=255, total=None):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 7, 0, ttl, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + payload


def ether(ip, vlans=()):
    f = b"\x01\x00\x5e\x00\x00\x12" + b"\x00\x00\x5e\x00\x01\x33"
    for v in vlans:
        f += struct.pack("!HH", 0x8100, v)
    return f + b"\x08\x00" + ip


def frames():
    good = vrrp()
    yield "v2", ether(ipv4(good))
    yield "v3", ether(ipv4(vrrp(version=3, interval=100)))
    yield "vlan", ether(ipv4(good), vlans=(10,))
    yield "qinq", ether(ipv4(good), vlans=(100, 10))
    yield "count-lies", ether(ipv4(vrrp(count=200)))
    yield "count-zero", ether(ipv4(vrrp(count=0, addrs=())))
    yield "bad-checksum", ether(ipv4(vrrp(good_sum=False)))
    yield "version-9", ether(ipv4(b"\x91" + good[1:]))
    yield "ttl-1", ether(ipv4(good, ttl=1))
    yield "ip-total-short", ether(ipv4(good, total=24))
    yield "ip-total-long", ether(ipv4(good, total=1500))
    yield "cut-in-vrrp", ether(ipv4(good))[:14 + 20 + 5]
    yield "cut-in-ip", ether(ipv4(good))[:14 + 9]
    yield "cut-in-vlan", ether(ipv4(good), vlans=(10,))[:15]
    yield "udp-5405", ether(ipv4(struct.pack("!HHHH", 5405, 5405, 12, 0) + b"ping", proto=17))
    yield "udp-len-lies", ether(ipv4(struct.pack("!HHHH", 3784, 3784, 400, 0) + b"\x20" * 24, proto=17))


def pcap(records, dlt=1):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, dlt)
    for i, frame in enumerate(records):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    return out


def block(kind, body):
    """One pcapng block: type, total length, body padded to 4 bytes, total length."""
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng(classic):
    """A classic pcap as pcapng: section, interface (with if_tsresol for nanoseconds),
    enhanced packets."""
    magic, dlt = struct.unpack("<I", classic[:4])[0], struct.unpack("<I", classic[20:24])[0]
    per_second = 1_000_000_000 if magic == 0xA1B23C4D else 1_000_000
    interface = struct.pack("<HHI", dlt, 0, 65535)
    if per_second == 1_000_000_000:
        interface += struct.pack("<HHB3xHH", 9, 1, 9, 0, 0)  # if_tsresol 10^-9, end
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, interface)
    at = 24
    while at + 16 <= len(classic):
        sec, frac, caplen, origlen = struct.unpack("<IIII", classic[at:at + 16])
        ts = sec * per_second + frac
        frame = classic[at + 16:at + 16 + caplen]
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), origlen) + frame)
        at += 16 + caplen
    return out


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    fs = list(frames())
    for name, frame in fs:
        put("heartbeat_decode", name, bytes([0]) + frame)
    for path in glob.glob(os.path.join(ROOT, "analyzer/tests/fixtures/*.pcap")):
        data = open(path, "rb").read()
        name = os.path.basename(path)
        put("capture_file", name, data)
        magic, dlt = struct.unpack("<I", data[:4])[0], struct.unpack("<I", data[20:24])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            caplen = struct.unpack("<I", data[24 + 8:24 + 12])[0]
            put("heartbeat_decode", name, bytes([LINK.get(dlt, 0)]) + data[40:40 + caplen])
            put("capture_file", name + "ng", pcapng(data))
    put("capture_file", "malformed.pcap", pcap([f for _, f in fs]))
    put("capture_file", "cut.pcap", pcap([f for _, f in fs])[:-5])
    for path in glob.glob(os.path.join(ROOT, "scenarios/**/*.toml"), recursive=True):
        put("scenario_file", os.path.relpath(path, os.path.join(ROOT, "scenarios")).replace("/", "-"),
            open(path, "rb").read())
    for path in glob.glob(os.path.join(ROOT, "analyzer/tests/fixtures/keepalived-logs/*.log")):
        put("keepalived_log", os.path.basename(path), open(path, "rb").read()[:4096])
    put("keepalived_log", "journal.json",
        b'{"__REALTIME_TIMESTAMP":"1796072017669223","_PID":"23051","SYSLOG_IDENTIFIER":"Keepalived_vrrp",'
        b'"MESSAGE":"(VI_1) Entering MASTER STATE"}\n{"MESSAGE":[40,86,73,41,255]}\n')
    put("bundle_manifest", "manifest.json", open(os.path.join(ROOT, "fuzz/seed-manifest.json"), "rb").read())
    put("bundle_manifest", "future.json", b'{"format_version": 99}')
    put("bundle_events", "recorded", open(os.path.join(ROOT, "fuzz/seed-events.vmlat"), "rb").read())
    put("bundle_events", "header-only", b"VMLATEV\0" + struct.pack("<I", 2))
    put("bundle_events", "torn-chunk", b"VMLATEV\0" + struct.pack("<I", 2) + b"CHNK" + struct.pack("<III", 64, 3, 0) + b"\x01" * 20)


if __name__ == "__main__":
    main()
