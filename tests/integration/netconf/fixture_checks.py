#!/usr/bin/python3
"""Checks of the test router itself (tests/fixtures/netconf): the commit-time
rules the agent's tests rely on still hold, and the scale variant drops only
what it says. Run by tests/integration/test_netconf_fixture.sh.

Usage: fixture_checks.py PLAIN_DIR SCALE_DIR
  PLAIN_DIR: server.sh start without NC_SCALE; SCALE_DIR: with NC_SCALE=1.
Prints TAP lines; exit 1 if any check failed.
"""
import os
import subprocess
import sys

from lxml import etree
from ncclient import manager
from ncclient.operations import RPCError

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SERVER = os.path.join(REPO, "tests", "fixtures", "netconf", "server.sh")
ROOT = "http://yang.juniper.net/junos/conf/root"
SEC = "http://yang.juniper.net/junos/conf/security"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
CKN1 = "ab" * 32
CKN2 = "cd" * 32
CAK = "01" * 32

n = 0
failures = 0


def tap(ok, what, diag=""):
    global n, failures
    n += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
    if not ok:
        failures += 1
        for line in str(diag).splitlines()[:12]:
            print("#   " + line)
    sys.stdout.flush()
    return ok


def load_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            k, v = line.strip().split("=", 1)
            env[k] = v
    return env


def connect(d):
    env = load_env(d)
    return manager.connect(host="127.0.0.1", port=int(env["NC_PORT"]), username=env["NC_USER"],
                           key_filename=env["NC_KEY"], hostkey_verify=False, look_for_keys=False,
                           allow_agent=False, timeout=20)


def macsec(body):
    return ('<config><configuration xmlns="%s"><security xmlns="%s"><macsec>%s</macsec>'
            '</security></configuration></config>' % (ROOT, SEC, body))


def ca(name, ckn):
    return ('<connectivity-association><name>%s</name><security-mode>static-cak</security-mode>'
            '<pre-shared-key><ckn>%s</ckn><cak>%s</cak></pre-shared-key>'
            '</connectivity-association>' % (name, ckn, CAK))


def binding(ifname, caname):
    return ('<interfaces><name>%s</name><connectivity-association>%s</connectivity-association>'
            '</interfaces>' % (ifname, caname))


def frozen(ckn, delete=False):
    op = ' xmlns:nc="%s" nc:operation="delete"' % NC if delete else ""
    return "<qkdlink-test-frozen-ckn%s>%s</qkdlink-test-frozen-ckn>" % (op, ckn)


def commit(m, body):
    """edit-config on candidate + commit; None on success, else the error text.
    A refused commit leaves the candidate discarded and unlocked."""
    m.lock("candidate")
    try:
        m.edit_config(target="candidate", config=macsec(body))
        m.commit()
        return None
    except RPCError as e:
        m.discard_changes()
        return "%s %s" % (e.tag, e.message)
    finally:
        m.unlock("candidate")


def running_text(m):
    return etree.tostring(m.get_config(source="running").data_ele).decode()


def checks(d, scale):
    tag = "scale" if scale else "plain"
    with connect(d) as m:
        err = commit(m, binding("ge-0/0/9", "CA-NONE"))
        if scale:
            tap(err is None, "%s: a binding to an undefined CA commits (must removed by the "
                "deviation)" % tag, err)
            commit(m, '<interfaces xmlns:nc="%s" nc:operation="delete"><name>ge-0/0/9</name>'
                   '</interfaces>' % NC)
        else:
            tap(err is not None and "connectivity-association is not defined" in err,
                "%s: a binding to an undefined CA is refused, named" % tag, err)
        err = commit(m, ca("CA-F", CKN1) + binding("ge-0/0/1", "CA-F"))
        tap(err is None, "%s: a CA and its binding commit" % tag, err)
        err = commit(m, frozen(CKN1))
        tap(err is None, "%s: freeze the CA's CKN" % tag, err)
        err = commit(m, ca("CA-F", CKN2))
        tap(err is not None and "CKN frozen by the test fixture" in err,
            "%s: a CKN change is refused while frozen, named" % tag, err)
        tap(CKN1 in running_text(m) and CKN2 not in running_text(m),
            "%s: running keeps the frozen CKN" % tag)
        err = commit(m, ca("CA-F", CKN1))
        tap(err is None, "%s: rewriting the same CKN commits while frozen" % tag, err)
        err = commit(m, frozen(CKN1, delete=True))
        tap(err is None, "%s: unfreeze" % tag, err)
        err = commit(m, ca("CA-F", CKN2))
        tap(err is None and CKN2 in running_text(m), "%s: the CKN changes once unfrozen" % tag, err)


def main():
    plain, scale = sys.argv[1], sys.argv[2]
    checks(plain, False)
    checks(scale, True)
    # a netconfd restarted by server.sh (the fault matrix does) keeps its variant
    r = subprocess.run(["sh", SERVER, "stop-netconfd", scale], capture_output=True, text=True)
    r2 = subprocess.run(["sh", SERVER, "start-netconfd", scale], capture_output=True, text=True)
    tap(r.returncode == 0 and r2.returncode == 0, "scale: netconfd stopped and started again",
        r.stderr + r2.stderr)
    with connect(scale) as m:
        err = commit(m, binding("ge-0/0/8", "CA-NONE"))
        tap(err is None, "scale: after a restart the deviation is still loaded", err)
    print("1..%d" % n)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
