#!/usr/bin/python3
"""The same two measurements as nc-bench, with ncclient 0.6 (paramiko), for
comparison. usage: bench_netconf_ncclient.py PORT USER KEY RUNS"""
import sys
import time

from ncclient import manager

port, user, key, runs = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
CKN = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
CAKS = ["fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]
FILTER = ("<configuration><security><macsec><connectivity-association><name>BENCH</name>"
          "</connectivity-association></macsec></security></configuration>")


def connect():
    return manager.connect(host="127.0.0.1", port=port, username=user, key_filename=key,
                           hostkey_verify=False, look_for_keys=False, allow_agent=False,
                           timeout=30)


def report(what, v):
    v.sort()
    n = len(v)
    print("%-44s runs %3d  p50 %8.2f ms  p90 %8.2f ms  min %8.2f  max %8.2f"
          % (what, n, v[n // 2], v[min(n * 9 // 10, n - 1)], v[0], v[-1]))


t = []
for i in range(runs):
    t0 = time.monotonic()
    m = connect()
    t.append((time.monotonic() - t0) * 1e3)
    m.close_session()
report("ncclient connect+auth+hello (base:1.1)", t)

m = connect()
t = []
for i in range(runs):
    cfg = ("<config><configuration><security><macsec><connectivity-association><name>BENCH</name>"
           "<cipher-suite>gcm-aes-xpn-256</cipher-suite><security-mode>static-cak</security-mode>"
           "<pre-shared-key><ckn>%s</ckn><cak>%s</cak></pre-shared-key></connectivity-association>"
           "</macsec></security></configuration></config>" % (CKN, CAKS[i & 1]))
    t0 = time.monotonic()
    m.lock("candidate")
    m.edit_config(target="candidate", default_operation="merge", config=cfg)
    m.commit()
    m.unlock("candidate")
    m.get_config(source="running", filter=("subtree", FILTER))
    t.append((time.monotonic() - t0) * 1e3)
m.close_session()
report("ncclient lock+edit+commit+unlock+read (1.1)", t)
