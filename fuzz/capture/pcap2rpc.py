#!/usr/bin/env python3
"""Turns a packet capture of real client traffic (tcpdump -w, Ethernet or
Linux cooked) into the RPC call files split.py reads (one call message per
file, as proxy.py writes them).

    pcap2rpc.py CAPTURE.pcap SERVER_IP RAW_DIR [PER_PROCEDURE]

Only calls sent *to* SERVER_IP are kept (the server's own callbacks, such as
NLM GRANTED to the client, are not what it decodes). TCP streams are put
back together by sequence number and cut at the record marks; UDP datagrams
are messages as they are. At most PER_PROCEDURE calls (default 25) are kept
per program, version and procedure, evenly spaced over the capture, and none
over 70,000 bytes, so that a large untar does not make thousands of
near-identical seeds or megabyte inputs (libFuzzer's -max_len follows the
largest seed).
"""
import collections
import os
import struct
import sys

from records import Records

MAX_CALL = 70_000


def packets(path):
    """(linktype, frame bytes) for every packet of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        sys.exit(f"{path}: not a classic pcap file (pcapng is not read; run tcpdump -w)")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    at = 24
    while at + 16 <= len(data):
        _s, _us, incl, _orig = struct.unpack(end + "IIII", data[at : at + 16])
        at += 16
        yield linktype, data[at : at + incl]
        at += incl


def ipv4(linktype, frame):
    """The IPv4 packet inside a frame, or None."""
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        ethertype, off = struct.unpack(">H", frame[12:14])[0], 14
        if ethertype == 0x8100 and len(frame) >= 18:  # one VLAN tag
            ethertype, off = struct.unpack(">H", frame[16:18])[0], 18
    elif linktype == 113:  # Linux cooked (tcpdump -i any)
        if len(frame) < 16:
            return None
        ethertype, off = struct.unpack(">H", frame[14:16])[0], 16
    else:
        sys.exit(f"link type {linktype} is not read (Ethernet or Linux cooked only)")
    return frame[off:] if ethertype == 0x0800 else None


def main():
    pcap, server, raw = sys.argv[1], sys.argv[2], sys.argv[3]
    per_proc = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    server_ip = bytes(int(x) for x in server.split("."))
    os.makedirs(raw, exist_ok=True)
    streams = collections.defaultdict(dict)  # connection -> {seq: payload}
    generation = {}
    datagrams = []
    for linktype, frame in packets(pcap):
        ip = ipv4(linktype, frame)
        if ip is None or len(ip) < 20 or ip[16:20] != server_ip:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, src = ip[9], ip[12:16]
        body = ip[ihl:total]
        if proto == 6 and len(body) >= 20:
            sport, dport, seq = struct.unpack(">HHI", body[:8])
            conn = (src, sport, dport)
            if body[13] & 0x02:  # SYN: a new connection (clients reuse ports)
                generation[conn] = generation.get(conn, 0) + 1
            payload = body[(body[12] >> 4) * 4 :]
            if payload:
                streams[conn + (generation.get(conn, 0),)].setdefault(seq, payload)
        elif proto == 17 and len(body) >= 8:
            datagrams.append(body[8:])
    calls = []
    for flow in sorted(streams):
        segs = streams[flow]
        base = min(segs)
        parts, nxt = [], None
        for seq in sorted(segs, key=lambda s: (s - base) & 0xFFFFFFFF):
            p = segs[seq]
            if nxt is not None:
                skip = (nxt - seq) & 0xFFFFFFFF
                if skip < 1 << 31:
                    if skip >= len(p):
                        continue  # a retransmission of bytes already in the stream
                    p = p[skip:]
                # else a gap (a segment the capture missed): what follows is
                # cut at a wrong place and dropped by the header check below
            parts.append(p)
            nxt = (seq + len(segs[seq])) & 0xFFFFFFFF
        calls += [("tcp", r) for r in Records().feed(b"".join(parts))]
    calls += [("udp", d) for d in datagrams]
    by_proc = collections.defaultdict(list)  # (program, version, procedure) -> calls
    for transport, msg in calls:
        if len(msg) < 24 or len(msg) > MAX_CALL:
            continue
        _xid, mtype, rpcvers, prog, vers, proc = struct.unpack(">IIIIII", msg[:24])
        if mtype != 0 or rpcvers != 2:
            continue
        by_proc[(prog, vers, proc)].append((transport, msg))
    written = 0
    print(f"{len(calls)} calls in the capture, kept:")
    for key in sorted(by_proc):
        chosen = spread(by_proc[key], per_proc)
        for transport, msg in chosen:
            written += 1
            with open(os.path.join(raw, f"kernel-{transport}-{written:06d}.rpc"), "wb") as f:
                f.write(msg)
        prog, vers, proc = key
        print(f"  program {prog} v{vers} procedure {proc}: {len(chosen)} of {len(by_proc[key])}")
    print(f"{written} calls written to {raw}")


def spread(items, k):
    """At most k of items, evenly spaced over the whole list (first and last
    included): the calls of a procedure from every phase of the workload,
    not only from its start."""
    n = len(items)
    if n <= k:
        return items
    if k <= 1:
        return items[:k]
    return [items[round(i * (n - 1) / (k - 1))] for i in range(k)]


main()
