#!/usr/bin/env python3
"""Turns recorded RPC calls (proxy.py's *.rpc files) into seed inputs for
every fuzz target, and adds the seeds no client here sends (NLM/NSM calls,
control lines, config files, zone metadata; built by hand below).

    split.py RAW_DIR CORPUS_DIR

File handles of the capture server are replaced by handle tokens
(0xFEEDF0nn, see src/fuzzing.rs) in the dispatch targets' seeds, so the
fuzz server's own handles stand in for them. Seeds are named by their
SHA-1, as libFuzzer names its corpus files.
"""
import glob
import hashlib
import os
import struct
import sys

raw, corpus = sys.argv[1], sys.argv[2]
TOKEN = 0xFEEDF000
counts = {}


def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(d, name)
    if not os.path.exists(path):
        counts[target] = counts.get(target, 0) + 1
        with open(path, "wb") as f:
            f.write(data)


def u32(b, at):
    return struct.unpack(">I", b[at : at + 4])[0], at + 4


def opaque(b, at):
    n, at = u32(b, at)
    return b[at : at + n], at + ((n + 3) & ~3)


def header(msg):
    """(prog, vers, proc, uid or None, args) of a call, or None."""
    try:
        at = 0
        _xid, at = u32(msg, at)
        mtype, at = u32(msg, at)
        if mtype != 0:
            return None
        _rpcvers, at = u32(msg, at)
        prog, at = u32(msg, at)
        vers, at = u32(msg, at)
        proc, at = u32(msg, at)
        flavor, at = u32(msg, at)
        cred, at = opaque(msg, at)
        _vf, at = u32(msg, at)
        _verf, at = opaque(msg, at)
        uid = None
        if flavor == 1:
            c = 4
            _name, c = opaque(cred, c)
            uid, c = u32(cred, c)
        return prog, vers, proc, uid, msg[at:]
    except (struct.error, IndexError):
        return None


handles = {}


def tokenise(args):
    """Replaces every 48-byte volnfs handle (length word 48, version 1)."""
    out = b""
    at = 0
    while at + 4 <= len(args):
        if args[at : at + 4] == struct.pack(">I", 48) and at + 52 <= len(args) and args[at + 4] == 1:
            h = args[at + 4 : at + 52]
            k = handles.setdefault(h, len(handles) % 5)
            out += struct.pack(">I", TOKEN | k)
            at += 52
        else:
            out += args[at : at + 4]
            at += 4
    return out + args[at:]


def caller_bits(uid):
    return {0: 0, 1000: 1, 65534: 2, None: 3}.get(uid, 0)


def rpc(prog, vers, proc, args, uid=0):
    cred = struct.pack(">I", 0) + struct.pack(">I", 4) + b"seed" + struct.pack(">IIII", uid, uid, 1, uid)
    return (
        struct.pack(">IIIIII", 0x1234, 0, 2, prog, vers, proc)
        + struct.pack(">I", 1)
        + struct.pack(">I", len(cred))
        + cred
        + struct.pack(">II", 0, 0)
        + args
    )


def xdr_opaque(b):
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def add_call(msg, flags=0):
    h = header(msg)
    put("rpc_call", msg)
    put("record", b"\0" + struct.pack(">I", 0x80000000 | len(msg)) + msg)
    if h is None:
        return
    prog, vers, proc, uid, args = h
    flags |= caller_bits(uid) << 1
    if prog == 100003:
        put("nfs3_args", bytes([proc]) + args)
        put("nfs3", bytes([proc, flags]) + tokenise(args))
    elif prog == 100005:
        put("mount", bytes([proc, flags, vers]) + tokenise(args))
    elif prog == 100000:
        put("portmap", bytes([proc, flags, vers]) + args)
    elif prog == 100021:
        put("nlm", bytes([proc, flags, vers]) + tokenise(args))
    elif prog == 100024:
        put("nlm", bytes([proc, flags | 8, vers]) + args)


for path in sorted(glob.glob(os.path.join(raw, "*.rpc"))):
    with open(path, "rb") as f:
        add_call(f.read())
# The same calls over UDP (the transports differ in the largest READ/READDIR).
for path in sorted(glob.glob(os.path.join(raw, "nfs-*.rpc")))[:40]:
    with open(path, "rb") as f:
        add_call(f.read(), flags=1)

# A multi-fragment record: two fragments of one NULL call.
null = rpc(100003, 3, 0, b"")
put("record", b"\0" + struct.pack(">I", 12) + null[:12] + struct.pack(">I", 0x80000000 | (len(null) - 12)) + null[12:])

# NLM v4 and NSM: what a kernel lock manager sends (XNFS chapter 10/14).
FH = struct.pack(">I", TOKEN | 1)
cookie = xdr_opaque(b"\0\0\0\1")
caller = xdr_opaque(b"client")
oh = xdr_opaque(b"owner@client")


def lock(svid=7, off=0, length=0):
    return caller + FH + oh + struct.pack(">i", svid) + struct.pack(">QQ", off, length)


nlm = {
    0: b"",  # NULL
    1: cookie + struct.pack(">I", 1) + lock(),  # TEST exclusive
    2: cookie + struct.pack(">II", 1, 1) + lock() + struct.pack(">II", 0, 1),  # LOCK block excl reclaim=0 state=1
    3: cookie + struct.pack(">II", 1, 1) + lock(),  # CANCEL
    4: cookie + lock(),  # UNLOCK
    5: cookie + struct.pack(">I", 1) + lock(),  # GRANTED
    6: cookie + struct.pack(">I", 1) + lock(),  # TEST_MSG
    7: cookie + struct.pack(">II", 0, 1) + lock() + struct.pack(">II", 0, 1),  # LOCK_MSG
    9: cookie + lock(),  # UNLOCK_MSG
    12: cookie + struct.pack(">I", 0),  # LOCK_RES
    15: cookie + struct.pack(">I", 0),  # GRANTED_RES
    20: cookie + caller + FH + oh + struct.pack(">II", 1, 3) + struct.pack(">I", 0),  # SHARE
    21: cookie + caller + FH + oh + struct.pack(">II", 1, 3) + struct.pack(">I", 0),  # UNSHARE
    22: cookie + struct.pack(">I", 1) + lock() + struct.pack(">II", 0, 1),  # NM_LOCK
    23: caller + struct.pack(">I", 1),  # FREE_ALL
}
for proc, args in nlm.items():
    put("nlm", bytes([proc, 0, 4]) + args)
# A blocked lock: the first input's lock conflicts with nothing; a range lock.
put("nlm", bytes([2, 0, 4]) + cookie + struct.pack(">II", 0, 1) + lock(9, 100, 50) + struct.pack(">II", 0, 1))
mon_id = xdr_opaque(b"client") + xdr_opaque(b"server") + struct.pack(">III", 100021, 4, 16)
nsm = {
    0: b"",  # NULL
    1: xdr_opaque(b"client"),  # STAT
    2: mon_id + b"\0" * 16,  # MON
    3: xdr_opaque(b"client") + xdr_opaque(b"server") + struct.pack(">III", 100021, 4, 16),  # UNMON
    4: xdr_opaque(b"server") + struct.pack(">III", 100021, 4, 16),  # UNMON_ALL
    5: b"",  # SIMU_CRASH
    6: xdr_opaque(b"client") + struct.pack(">I", 3),  # NOTIFY
}
for proc, args in nsm.items():
    put("nlm", bytes([proc, 8, 1]) + args)

# The control socket (README "Control socket").
lines = [
    b'{"v":1,"id":1,"op":"status"}\n',
    b'{"v":1,"id":2,"op":"clients.list","args":{}}\n',
    b'{"v":1,"id":3,"op":"exports.reload"}\n',
    b'{"v":1,"id":4,"op":"snapshot.create","args":{"name":"daily"}}\n',
    b'{"v":1,"id":5,"op":"snapshot.list"}\n',
    b'{"v":1,"id":6,"op":"snapshot.delete","args":{"name":"daily"}}\n',
    b'{"v":1,"id":7,"op":"snapshot.rollback","args":{"name":"daily"}}\n',
    b'{"v":1,"id":8,"op":"quota.get"}\n',
    b'{"v":1,"id":9,"op":"quota.set","args":{"bytes":1073741824}}\n',
    b'{"v":2,"id":"x","op":"status"}\n',
    b'{"v":1,"id":[1,{"a":null}],"op":"nope","args":[]}\n',
    b'not json\n{"v":1}\n',
]
for l in lines:
    put("control", l)
put("control", b"".join(lines))

# Config files: the example, and the shapes the tests write.
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "../../etc/volnfs.example.json"), "rb") as f:
    put("config", f.read())
configs = [
    b'{"exports":[{"name":"/exports/data","path":"/srv/data","clients":[{"match":"10.0.0.0/8"}]}]}',
    b'{"listen":["::1","127.0.0.1"],"nfs_port":0,"mount_port":0,"portmap":{"enabled":false,"port":111},'
    b'"state_dir":"/var/lib/volnfs","control_socket":"/run/v.sock","control_connect":"/.zonecontrol/volnfs.sock",'
    b'"zfs":"/usr/sbin/zfs","snapshot_limit":10,"device_nodes":"refuse",'
    b'"locking":{"enabled":true,"grace_seconds":5},"limits":{"max_connections":8,"max_inflight_per_connection":2},'
    b'"io":{"threads":4,"threads_per_client":2},'
    b'"exports":[{"name":"/a","path":"/srv/a","dataset":"zones/u/data/a","sync":false,"secure":true,"anonuid":1,"anongid":2,'
    b'"clients":[{"match":"192.0.2.1","access":"ro","squash":"all_squash"},{"match":"fd00::/8","access":"rw","squash":"no_root_squash"}]},'
    b'{"name":"/b","path":"/srv/b","clients":[{"match":"0.0.0.0/0","squash":"root_squash"}]}]}',
    b'{"exports":[],"bogus":1}',
]
for c in configs:
    put("config", c)

# Zone metadata (image/README.md): strings holding JSON, as mdata-get prints
# them, and JSON values, as tests write them.
zones = [
    b'{"sdc:nics":"[{\\"interface\\":\\"net0\\",\\"ip\\":\\"10.88.3.7\\",\\"netmask\\":\\"255.255.0.0\\",\\"primary\\":true}]",'
    b'"export-volumes":"[\\"data\\"]","sdc:uuid":"8f2c1d5e-4b7e-4f7a-9d55-0a1b2c3d4e5f","volume-size-mib":"10240"}',
    b'{"sdc:nics":[{"interface":"net0","ip":"10.88.3.7","netmask":"255.255.0.0"},{"interface":"net1","ips":["192.168.7.9/22"]}],'
    b'"export-volumes":["data","scratch"],"volnfs-control-socket":"/var/run/volnfs/ctl.sock","volnfs-delegated-dataset":"tank/vols",'
    b'"volnfs-control-connect":"/.zonecontrol/volnfs.sock","volnfs-squash":"root_squash","volume-size-mib":1}',
    b'{"sdc:nics":[{"interface":"net0","ips":["fd00:88:0:1::7/64","fe80::8:20ff:fe11:2233/10","addrconf","10.1.2.3/24"]}],'
    b'"export-volumes":["data"],"sdc:uuid":"8f2c"}',
]
for z in zones:
    put("zone_metadata", z)

for t in sorted(counts):
    print(f"{t}: {counts[t]} new seeds")
