#!/usr/bin/python3
"""The lab router's cost per commit against the number of CAs it holds
(docs/performance.md §7, "The lab router's cost per commit").

Usage: netconfd_cost.py [N...]   (default 100 300 1000; needs root)
For each N and each fixture variant (plain: the binding must; scale: NC_SCALE=1,
tests/fixtures/netconf/server.sh), a fresh netconfd behind sshd gets N CAs and
their bindings in one edit-config + commit, then COMMITS times one CA's CKN is
changed the way the agent does (lock, edit-config, confirmed commit, confirming
commit, unlock). Reports per change the wall time (ncclient, loopback) and
netconfd's CPU time (utime+stime from /proc, robust to other load), the median
of COMMITS. Not a test: nothing passes or fails on a number.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ncclient import manager

sys.dont_write_bytecode = True
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.path.join(REPO, "tests", "fixtures", "netconf", "server.sh")
ROOT = "http://yang.juniper.net/junos/conf/root"
SEC = "http://yang.juniper.net/junos/conf/security"
COMMITS = int(os.environ.get("COMMITS", "5"))
TICK = os.sysconf("SC_CLK_TCK")


def macsec(body):
    return ('<config><configuration xmlns="%s"><security xmlns="%s"><macsec>%s</macsec>'
            '</security></configuration></config>' % (ROOT, SEC, body))


def ca(i, ckn):
    return ('<connectivity-association><name>CA-%d</name><cipher-suite>gcm-aes-256</cipher-suite>'
            '<security-mode>static-cak</security-mode><pre-shared-key><ckn>%s</ckn>'
            '<cak>%s</cak></pre-shared-key></connectivity-association>' % (i, ckn, "01" * 32))


def binding(i):
    return ('<interfaces><name>xe-0/%d/%d</name><connectivity-association>CA-%d'
            '</connectivity-association></interfaces>' % (i // 100, i % 100, i))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def netconfd_pid(d):
    with open(os.path.join(d, "run", "netconfd.pid")) as f:
        setsid = int(f.read())
    # the pid file names the subshell's setsid; netconfd is it or its child
    r = subprocess.run(["pgrep", "-s", str(os.getsid(setsid)), "-x", "netconfd"],
                       capture_output=True, text=True)
    return int(r.stdout.split()[0]) if r.stdout.split() else setsid


def connect(d):
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(d, "env")))
    return manager.connect(host="127.0.0.1", port=int(env["NC_PORT"]), username=env["NC_USER"],
                           key_filename=env["NC_KEY"], hostkey_verify=False, look_for_keys=False,
                           allow_agent=False, timeout=600)


def measure(n, scale):
    d = tempfile.mkdtemp(prefix="qkdncc.")
    env = dict(os.environ, NC_SCALE="1" if scale else "0", NC_LOG_LEVEL="warn")
    try:
        subprocess.run(["sh", SERVER, "start", d], env=env, check=True, capture_output=True)
        pid = netconfd_pid(d)
        with connect(d) as m:
            m.lock("candidate")
            m.edit_config(target="candidate",
                          config=macsec("".join(ca(i, "%04x" % i) + binding(i) for i in range(n))))
            m.commit()
            m.unlock("candidate")
            wall, cpu = [], []
            for k in range(COMMITS):
                c0, t0 = cpu_s(pid), time.monotonic()
                m.lock("candidate")
                m.edit_config(target="candidate", config=macsec(ca(n // 2, "%08x" % (k + 1))))
                m.commit(confirmed=True, timeout="60", persist="qkdncc")
                m.commit(persist_id="qkdncc")
                m.unlock("candidate")
                wall.append(time.monotonic() - t0)
                cpu.append(cpu_s(pid) - c0)
        return statistics.median(wall), statistics.median(cpu)
    finally:
        subprocess.run(["sh", SERVER, "stop", d], capture_output=True)
        subprocess.run(["rm", "-rf", d])


def main():
    ns = [int(a) for a in sys.argv[1:]] or [100, 300, 1000]
    print("| CAs | variant | wall per key change s (median of %d) | netconfd CPU s |" % COMMITS)
    print("|---:|---|---:|---:|")
    for n in ns:
        for scale in (True, False):
            wall, cpu = measure(n, scale)
            print("| %d | %s | %.3f | %.3f |" % (n, "NC_SCALE=1" if scale else "plain (binding must)",
                                                 wall, cpu))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
