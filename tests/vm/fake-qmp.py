#!/usr/bin/env python3
# fake-qmp.py - a scripted QMP server for tests/t-vm-qmp-protocol.sh: speaks
# just enough QMP to drive 'fluidmem vm' through the awkward cases a real QEMU
# produces only by chance (events before a return, answers split across
# writes, a stale answer with another id, errors), and logs every command it
# gets, one per line, to LOG.
# Usage: fake-qmp.py SOCKET LOG MODE   (MODE: qmp, noqmp, silent)
import json, os, socket, sys, time

path, log, mode = sys.argv[1:4]
srv = socket.socket(socket.AF_UNIX)
if os.path.exists(path):
    os.unlink(path)
srv.bind(path)
srv.listen(1)
devices = []

def send(c, obj, split=False):
    data = (json.dumps(obj) + "\r\n").encode()
    if split:  # in three pieces, with pauses, to exercise partial reads
        for i in range(0, len(data), len(data) // 3 + 1):
            c.sendall(data[i:i + len(data) // 3 + 1])
            time.sleep(0.01)
    else:
        c.sendall(data)

def event(name, data):
    return {"event": name, "data": data, "timestamp": {"seconds": 1, "microseconds": 2}}

def answer(c, cmd, args, mid):
    ok = lambda r: send(c, {"return": r, "id": mid}, split=True)
    if cmd == "qmp_capabilities":
        ok({})
    elif cmd == "query-memory-devices":
        send(c, event("RTC_CHANGE", {"offset": 0}))
        send(c, {"return": [], "id": 999999})  # stale answer, must be ignored
        ok(devices)
    elif cmd == "query-memdev":
        ok([{"id": "pc.ram", "size": 268435456, "merge": True, "dump": True,
             "prealloc": False, "share": False, "host-nodes": [], "policy": "default"}])
    elif cmd == "qom-list":
        ok([{"name": "pc.ram", "type": "child<memory-backend-ram>"}])
    elif cmd == "query-memory-size-summary":
        ok({"base-memory": 268435456, "plugged-memory": sum(d["data"]["size"] for d in devices)})
    elif cmd == "object-add":
        ok({})
    elif cmd == "object-del":
        ok({})
    elif cmd == "device_add":
        if args.get("id") == "busy":
            send(c, {"error": {"class": "GenericError", "desc": "Fake: slot 3 is busy"}, "id": mid})
            return
        devices.append({"type": "dimm", "data": {"id": args["id"], "size": 536870912,
            "addr": 4294967296, "slot": 0, "node": 0, "memdev": "/objects/" + args["memdev"],
            "hotplugged": True, "hotpluggable": True}})
        ok({})
        # the guest's acknowledgement arrives as an event, after the return
        send(c, event("ACPI_DEVICE_OST", {"info": {"device": args["id"], "slot": "0",
             "slot-type": "DIMM", "source": 1, "status": 0}}))
    elif cmd == "device_del":
        ok({})
        if args.get("id") == "stuck":
            send(c, event("ACPI_DEVICE_OST", {"info": {"device": "stuck", "slot": "0",
                 "slot-type": "DIMM", "source": 259, "status": 0x84}}))
            send(c, event("ACPI_DEVICE_OST", {"info": {"device": "stuck", "slot": "0",
                 "slot-type": "DIMM", "source": 259, "status": 0x82}}))
            return
        devices[:] = [d for d in devices if d["data"]["id"] != args["id"]]
        send(c, event("DEVICE_DELETED", {"device": args["id"], "path": "/machine/peripheral/" + args["id"]}))
    else:
        send(c, {"error": {"class": "CommandNotFound", "desc": "The command %s has not been found" % cmd}, "id": mid})

while True:
    c, _ = srv.accept()
    if mode == "noqmp":
        c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        time.sleep(0.5)
        c.close()
        continue
    if mode == "silent":
        time.sleep(3)
        c.close()
        continue
    send(c, {"QMP": {"version": {"qemu": {"micro": 3, "minor": 2, "major": 8}, "package": ""},
                     "capabilities": ["oob"]}})
    f = c.makefile("r")
    for line in f:
        if not line.strip():
            continue
        m = json.loads(line)
        with open(log, "a") as lf:
            lf.write(json.dumps(m, sort_keys=True) + "\n")
        answer(c, m["execute"], m.get("arguments", {}), m.get("id"))
    c.close()
