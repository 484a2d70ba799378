#!/usr/bin/python3
"""The lab's independent router-state check: ncclient (paramiko), not our client.

Usage (inside the lab's namespace: `tests/lab/lab.sh routers DIR ...` runs it there):
  routers.py DIR show [--json]
      each router's CAs: cipher suite, mode, CKN, a fingerprint of the CAK
      (sha256, 12 hex digits; the CAK itself is never printed), the interfaces
      bound to it, and the datastore locks.
  routers.py DIR check [--ca CA]... [--ckn CA=CKN]... [--expect CA=CKN:CAK_FILE]...
                       [--strict] [--wait SECONDS]
      exit 0 when, for every CA given (default: every CA of the lab): each of
      its routers (CA_SITES) holds it in running, in static-CAK mode, with the same cipher suite,
      CKN and CAK; the CKN (and CAK) equal what was expected, if given; no
      datastore is locked (ietf-netconf-monitoring, read-only) and candidate
      equals running. --strict also takes and releases the candidate lock, which
      netconfd refuses while a confirmed commit is outstanding (only when no
      agent is in the middle of a change). A failed check is read again for
      --wait seconds (default 3): an agent may be mid-commit, or a rotation
      may land between the reads of the two routers.
      Prints one line per problem; exit 1 if any.
  routers.py DIR remove SITE CA INTERFACE
      deletes CA and INTERFACE's binding from router SITE (edit-config
      operation="delete" on candidate, commit): a router that lacks them, for
      the provisioning test.
  routers.py DIR no-cak-in FILE...
      exit 0 when no CAK the routers hold appears in any FILE (logs, state files);
      names the file and the CA, never the value.
DIR is the lab directory (tests/lab/lab.sh up DIR): DIR/router-a/env, DIR/router-b/env.
"""
import hashlib
import json
import os
import sys
import time

from lxml import etree
from ncclient import manager

# which sites' routers hold each CA of the lab (tests/lab/lab.sh)
CA_SITES = {"CA-QKD-7": "ab", "CA-QKD-8": "ab", "CA-QKD-9": "abc"}

MON = ('<netconf-state xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">'
       '<datastores/></netconf-state>')


def load_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            k, v = line.strip().split("=", 1)
            env[k] = v
    return env


def connect(env):
    return manager.connect(host="127.0.0.1", port=int(env["NC_PORT"]), username=env["NC_USER"],
                           key_filename=env["NC_KEY"], hostkey_verify=False, look_for_keys=False,
                           allow_agent=False, timeout=20)


def local(el):
    return etree.QName(el).localname


def children(el, name):
    return [c for c in (el if el is not None else []) if isinstance(c.tag, str) and local(c) == name]


def find(el, *path):
    for name in path:
        if el is None:
            return None
        c = children(el, name)
        el = c[0] if c else None
    return el


def text(el, name):
    c = find(el, name)
    return c.text.strip() if c is not None and c.text else None


def fp(cak):
    return hashlib.sha256(cak.encode()).hexdigest()[:12] if cak else None


def read_router(m):
    """{'cas': {name: {...}}, 'locks': [datastore...], 'candidate_differs': bool}"""
    out = {"cas": {}, "locks": [], "candidate_differs": False}
    data = m.get_config(source="running").data_ele
    ms = find(data, "configuration", "security", "macsec")
    for c in children(ms, "connectivity-association"):
        psk = find(c, "pre-shared-key")
        out["cas"][text(c, "name")] = {
            "cipher-suite": text(c, "cipher-suite"), "security-mode": text(c, "security-mode"),
            "ckn": (text(psk, "ckn") or "").lower() or None, "cak": text(psk, "cak"),
            "interfaces": []}
    for i in children(ms, "interfaces"):
        ca = text(i, "connectivity-association")
        if ca in out["cas"]:
            out["cas"][ca]["interfaces"].append(text(i, "name"))
    run = etree.tostring(data, method="c14n")
    cand = etree.tostring(m.get_config(source="candidate").data_ele, method="c14n")
    out["candidate_differs"] = run != cand
    mon = m.get(filter=("subtree", MON)).data_ele
    for ds in mon.iter():
        if isinstance(ds.tag, str) and local(ds) == "datastore" and find(ds, "locks") is not None:
            out["locks"].append(text(ds, "name"))
    return out


def strict_probe(m):
    """Take and release the candidate lock: refused while another session holds
    it, while it holds uncommitted edits, or while a confirmed commit is pending."""
    try:
        m.lock("candidate")
    except Exception as e:  # noqa: BLE001 - any refusal is the finding
        return "candidate cannot be locked (%s)" % str(e).strip().splitlines()[0]
    try:
        m.unlock("candidate")
    except Exception as e:  # noqa: BLE001
        return "candidate unlock failed (%s)" % e
    return None


def snapshot_pair(lab, ca):
    """One line for the demo: do the routers of CA all hold the same key?
    The reads are some 100 ms apart, so a rotation may land between them: the
    first router is read again after the others, and all retried until it did
    not change."""
    sites = [x for x in CA_SITES.get(ca, "ab") if os.path.isdir(os.path.join(lab, "router-" + x))]
    envs = [load_env(os.path.join(lab, "router-" + x)) for x in sites]

    def one(env):
        with connect(env) as m:
            return read_router(m)["cas"].get(ca) or {}

    def key(c):
        return (c.get("ckn"), c.get("cak"))
    for _ in range(4):
        got = [one(e) for e in envs]
        if key(one(envs[0])) == key(got[0]):
            break
    else:
        return "routers: rotating too often to read them all at once"
    if got[0].get("ckn") and all(key(c) == key(got[0]) for c in got):
        return "routers %s: same CKN ..%s, CAK sha256:%s" % (
            "".join(sites).upper(), got[0]["ckn"][-8:], fp(got[0]["cak"]))
    return "routers DIFFER: " + ", ".join("%s ckn ..%s cak sha256:%s" % (
        x.upper(), (c.get("ckn") or "-")[-8:], fp(c.get("cak"))) for x, c in zip(sites, got))


def survey(envs, cas, ckns, expect, strict):
    """Reads both routers once: (problems, {site: read_router()})."""
    problems = []
    got = {}
    for s, env in envs.items():
        try:
            with connect(env) as m:
                got[s] = read_router(m)
                if strict and not got[s]["locks"] and not got[s]["candidate_differs"]:
                    p = strict_probe(m)
                    if p:
                        problems.append("router %s: %s" % (s.upper(), p))
        except Exception as e:  # noqa: BLE001
            problems.append("router %s: ncclient failed: %r" % (s.upper(), e))
    for s, r in got.items():
        if r["locks"]:
            problems.append("router %s: datastore locked: %s" % (s.upper(), ",".join(r["locks"])))
        if r["candidate_differs"]:
            problems.append("router %s: candidate differs from running (uncommitted edits)" % s.upper())
    for ca in cas:
        seen = {s: got[s]["cas"].get(ca) for s in got if s in CA_SITES.get(ca, "ab")}
        for s, c in seen.items():
            if c is None:
                problems.append("router %s: no CA %s in running" % (s.upper(), ca))
            elif c["security-mode"] != "static-cak" or not c["ckn"] or not c["cak"]:
                problems.append("router %s: CA %s is not static-CAK with a CKN and CAK: %s" % (
                    s.upper(), ca, {k: v for k, v in c.items() if k != "cak"}))
        if len(seen) >= 2 and all(seen.values()):
            first = sorted(seen)[0]
            a = seen[first]
            for x, b in sorted(seen.items()):
                for field in ("cipher-suite", "ckn"):
                    if a[field] != b[field]:
                        problems.append("%s: %s differs: router %s %s, router %s %s" % (
                            ca, field, first.upper(), a[field], x.upper(), b[field]))
                if a["cak"] != b["cak"]:
                    problems.append("%s: CAK differs: router %s sha256:%s, router %s sha256:%s" % (
                        ca, first.upper(), fp(a["cak"]), x.upper(), fp(b["cak"])))
        for s, c in seen.items():
            if c and ca in ckns and c["ckn"] != ckns[ca]:
                problems.append("router %s: %s CKN %s, expected %s" % (s.upper(), ca, c["ckn"], ckns[ca]))
            if c and ca in expect and (c["cak"] or "").lower() != expect[ca]:
                problems.append("router %s: %s CAK sha256:%s, expected sha256:%s" % (
                    s.upper(), ca, fp(c["cak"]), fp(expect[ca])))
    return problems, got


def no_cak_in(envs, files):
    """None of the routers' current CAKs appears (as hex, any case) in FILES."""
    caks = {}
    for s, env in envs.items():
        with connect(env) as m:
            for name, ca in read_router(m)["cas"].items():
                if ca["cak"]:
                    caks[ca["cak"].lower()] = "%s on router %s" % (name, s.upper())
    bad = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read().decode("latin-1").lower()
        for cak, where in caks.items():
            if cak in data:
                print("%s: holds the CAK of %s" % (f, where))
                bad += 1
    if not bad:
        print("none of %d CAKs appears in %d files" % (len(caks), len(files)))
    return 1 if bad or not caks else 0


def remove(env, ca, ifname):
    nc = "urn:ietf:params:xml:ns:netconf:base:1.0"
    cfg = ('<config xmlns="%s" xmlns:nc="%s"><configuration xmlns="http://yang.juniper.net/junos/conf/root">'
           '<security xmlns="http://yang.juniper.net/junos/conf/security"><macsec>'
           '<connectivity-association nc:operation="delete"><name>%s</name></connectivity-association>'
           '<interfaces nc:operation="delete"><name>%s</name></interfaces>'
           '</macsec></security></configuration></config>') % (nc, nc, ca, ifname)
    with connect(env) as m:
        m.edit_config(target="candidate", config=cfg)
        m.commit()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lab, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    envs = {s: load_env(os.path.join(lab, "router-" + s)) for s in "abc"
            if os.path.isdir(os.path.join(lab, "router-" + s))}
    if cmd == "show":
        res = {}
        for s, env in envs.items():
            with connect(env) as m:
                r = read_router(m)
            for ca in r["cas"].values():
                ca["cak_fp"] = fp(ca.pop("cak"))
            res[s] = r
        if "--json" in args:
            print(json.dumps(res, sort_keys=True))
            return 0
        for s, r in res.items():
            print("router %s: locks %s, candidate %s" % (
                s.upper(), ",".join(r["locks"]) or "none",
                "DIFFERS from running" if r["candidate_differs"] else "= running"))
            for name, ca in sorted(r["cas"].items()):
                print("  %-9s %-15s %s ckn %s cak sha256:%s on %s" % (
                    name, ca["cipher-suite"], ca["security-mode"], ca["ckn"], ca["cak_fp"],
                    ",".join(ca["interfaces"]) or "-"))
        return 0
    if cmd == "no-cak-in":
        return no_cak_in(envs, args)
    if cmd == "remove":
        if len(args) != 3 or args[0] not in envs:
            sys.exit("routers.py: remove SITE CA INTERFACE")
        remove(envs[args[0]], args[1], args[2])
        print("router %s: %s and the binding of %s deleted" % (args[0].upper(), args[1], args[2]))
        return 0
    if cmd != "check":
        sys.exit(__doc__)
    cas, ckns, expect, strict, wait = [], {}, {}, False, 3.0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--strict":
            strict = True
            i += 1
            continue
        if i + 1 >= len(args):
            sys.exit("routers.py: %s needs a value" % a)
        v = args[i + 1]
        if a == "--ca":
            cas.append(v)
        elif a == "--ckn":
            k, x = v.split("=", 1)
            ckns[k] = x.lower()
        elif a == "--expect":
            k, x = v.split("=", 1)
            ckn, cakf = x.split(":", 1)
            ckns[k] = ckn.lower()
            with open(cakf) as f:
                expect[k] = f.read().strip().lower()
        elif a == "--wait":
            wait = float(v)
        else:
            sys.exit("routers.py: unknown option %s" % a)
        i += 2
    cas = cas or [ca for ca, sites in sorted(CA_SITES.items()) if all(x in envs for x in sites)]
    deadline = time.monotonic() + wait
    while True:
        problems, got = survey(envs, cas, ckns, expect, strict)
        # an agent may be mid-commit, or a rotation may land between the two
        # reads: look again until the wait is over
        if problems and time.monotonic() < deadline:
            time.sleep(0.3)
            continue
        break
    for p in problems:
        print(p)
    if not problems:
        print("routers %s agree on %s%s" % ("".join(sorted(envs)).upper(), ", ".join(
            "%s (ckn %s, cak sha256:%s)" % (ca, got["a"]["cas"][ca]["ckn"], fp(got["a"]["cas"][ca]["cak"]))
            for ca in cas), "; no lock, no candidate edit" + (", no pending confirmed commit" if strict else "")))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
