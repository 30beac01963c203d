#!/usr/bin/env python3
"""store-mcraw.py - raw memcached text-protocol access for the t-store-*.sh
tests, bypassing the backend: which keys a server holds, and tampering.

  store-mcraw.py PORT dump               print every key the server holds
  store-mcraw.py PORT has KEYSFILE     print "index" of every "index key" line the server holds
  store-mcraw.py PORT garbage KEY      overwrite KEY's value with random bytes of the same length
  store-mcraw.py PORT flip KEY         flip one bit in the middle of KEY's page data
  store-mcraw.py PORT copy SRC DPORT DST   store SRC's value under DST on port DPORT
"""
import os, socket, sys

def conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s, s.makefile("rb")

def get_many(port, keys):
    s, f = conn(port)
    out = {}
    for i in range(0, len(keys), 100):
        chunk = keys[i:i + 100]
        s.sendall(b"get " + b" ".join(k.encode() for k in chunk) + b"\r\n")
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line == b"END\r\n":
                break
            parts = line.split()
            if parts[0] != b"VALUE":
                raise SystemExit("unexpected: %r" % line)
            n = int(parts[3])
            out[parts[1].decode()] = f.read(n + 2)[:n]
    s.close()
    return out

def put(port, key, value):
    s, f = conn(port)
    s.sendall(b"set %s 0 0 %d\r\n" % (key.encode(), len(value)) + value + b"\r\n")
    line = f.readline()
    s.close()
    if line != b"STORED\r\n":
        raise SystemExit("set %s: %r" % (key, line))

def main():
    port, cmd = int(sys.argv[1]), sys.argv[2]
    if cmd == "dump":
        s, f = conn(port)
        s.sendall(b"lru_crawler metadump all\r\n")
        while True:
            line = f.readline()
            if not line or line == b"END\r\n":
                break
            if line.startswith(b"key="):
                print(line.split()[0][4:].decode())
            elif line.startswith(b"ERROR") or line.startswith(b"BUSY"):
                raise SystemExit("metadump: %r" % line)
        return
    if cmd == "has":
        pairs = [l.split() for l in open(sys.argv[3]) if l.strip()]
        held = get_many(port, [k for _, k in pairs])
        for i, k in pairs:
            if k in held:
                print(i)
        return
    key = sys.argv[3]
    v = get_many(port, [key]).get(key)
    if v is None:
        raise SystemExit("%s not on port %d" % (key, port))
    if cmd == "garbage":
        put(port, key, os.urandom(len(v)))
    elif cmd == "flip":
        b = bytearray(v)
        b[2000] ^= 0x10
        put(port, key, bytes(b))
    elif cmd == "copy":
        put(int(sys.argv[4]), sys.argv[5], v)
    else:
        raise SystemExit("unknown command " + cmd)

main()
