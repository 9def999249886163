#!/usr/bin/env python3
"""A recording TCP proxy for ONC RPC: forwards LISTEN_PORT on 127.0.0.1 to
TARGET_PORT on 127.0.0.1 and writes every record the client sends (record
marks removed, fragments joined) to OUTDIR/<tag>-<n>.rpc. Replies are
forwarded, not recorded. Runs until killed.

    proxy.py LISTEN_PORT TARGET_PORT OUTDIR TAG
"""
import os
import socket
import sys
import threading

from records import Records

listen_port, target_port, outdir, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.makedirs(outdir, exist_ok=True)
counter = [0]
lock = threading.Lock()


def save(record):
    with lock:
        counter[0] += 1
        n = counter[0]
    with open(os.path.join(outdir, f"{tag}-{os.getpid()}-{n:06d}.rpc"), "wb") as f:
        f.write(record)


def client_to_server(src, dst):
    records = Records()
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            for record in records.feed(data):
                save(record)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def server_to_client(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        s = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=client_to_server, args=(c, s), daemon=True).start()
        threading.Thread(target=server_to_client, args=(s, c), daemon=True).start()


main()
