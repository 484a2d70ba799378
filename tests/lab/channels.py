#!/usr/bin/python3
"""More channels for a lab that is up (tests/lab/lab.sh up DIR), before the agents start.

Usage (as root; runs itself inside the lab's namespace when started outside it):
  channels.py DIR add N [--first ID] [--masters alternate|a] [--interval S]
                        [--shared-secret]
      adds N channels with ids ID, ID+1, ... (default 100): CA CA-QKD-<id>, one
      interface et-1/<i>/0 each (i = 0..N-1), cipher suites in turn gcm-aes-128,
      gcm-aes-256, gcm-aes-xpn-128, gcm-aes-xpn-256, CKN convention in turn
      {"prefix": 5142434b...5c<id as 6 hex digits>} and "sha256"; masters
      alternate A, B, A, ... from the first id (default) or all on A; rotation
      interval S seconds (default: the lab's LAB_ROTATION_INTERVAL); a frame
      secret per channel (DIR/secrets/ch<id>.secret) or one shared by all
      (DIR/secrets/extra.secret), 32 random bytes, 0600.
      (a) bootstraps every new CA on both routers with one random CAK common to
      its routers (0600 in DIR/bootstrap/ch<id>.cak, CKN in ch<id>.ckn): one
      edit-config of all CAs and their bindings, then one commit, per router;
      (b) adds the channels to DIR/site-a/qkdlinkd.json and site-b's and checks
      both with qkdlinkd-check. The channel list is kept in
      DIR/bootstrap/channels.json for the other commands. Not twice per lab.
  channels.py DIR list
      the added channels, one per line: id master conv ca
  channels.py DIR check [--rotate] [--rotations K] [--wait S] [--strict]
      (agents running) with --rotate, first rotates each added channel in turn
      (qkdlinkctl rotate at its master, waiting for the rotation to complete;
      a failed one is asked again, three times at most); then waits up to S
      seconds (default 60) until the master of
      every added channel reports K (default 1) completed rotations, then reads
      both routers once (ncclient, tests/lab/routers.py) for every added CA:
      same CKN and CAK on both, the CKN the channel's convention applied to the
      master's current key_ID, no lock, no candidate edit. TAP lines; exit 1 on
      a failure.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agents  # noqa: E402
import routers  # noqa: E402

SUITES = ["gcm-aes-128", "gcm-aes-256", "gcm-aes-xpn-128", "gcm-aes-xpn-256"]
CAK_HEX = {"gcm-aes-128": 32, "gcm-aes-256": 64, "gcm-aes-xpn-128": 32, "gcm-aes-xpn-256": 64}
NIL = "00000000-0000-0000-0000-000000000000"
NS_ROOT = "http://yang.juniper.net/junos/conf/root"
NS_SEC = "http://yang.juniper.net/junos/conf/security"
LIST = "bootstrap/channels.json"


def die(msg):
    sys.stderr.write("channels: %s\n" % msg)
    sys.exit(1)


def in_lab_ns(env):
    """True when this process already runs in the lab's namespace."""
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/run/netns/" + env["LAB_NS"]).st_ino
    except OSError:
        return False


def prefix_of(cid):
    # 32 hex digits; "5c" keeps these apart from the lab's own a7/a9 prefixes
    return "5142434b" + "0" * 16 + "5c%06x" % cid


def bootstrap_ckn(ch):
    if ch["conv"] == "prefix":
        return ch["prefix"] + "0" * 32
    return hashlib.sha256(NIL.encode()).hexdigest()


def expected_ckn(ch, key_id):
    if ch["conv"] == "prefix":
        return ch["prefix"] + key_id.replace("-", "").lower()
    return hashlib.sha256(key_id.encode()).hexdigest()


def write_private(path, data, mode="w"):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, mode) as f:
        f.write(data)


def config_xml(chans):
    """One <config> with every CA and its binding (merge: the lab's own CAs stay)."""
    cas, ifs = [], []
    for ch in chans:
        cas.append("<connectivity-association><name>%s</name><cipher-suite>%s</cipher-suite>"
                   "<security-mode>static-cak</security-mode><pre-shared-key><ckn>%s</ckn>"
                   "<cak>%s</cak></pre-shared-key></connectivity-association>"
                   % (ch["ca"], ch["suite"], ch["boot_ckn"], ch["boot_cak"]))
        ifs.append("<interfaces><name>%s</name><connectivity-association>%s"
                   "</connectivity-association></interfaces>" % (ch["ifname"], ch["ca"]))
    return ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
            '<configuration xmlns="%s"><security xmlns="%s"><macsec>%s%s</macsec></security>'
            '</configuration></config>' % (NS_ROOT, NS_SEC, "".join(cas), "".join(ifs)))


def push(lab, chans):
    """Per router: one edit-config of every CA into candidate, one commit."""
    xml = config_xml(chans)
    times = {}
    for s in ("a", "b"):
        env = routers.load_env(os.path.join(lab, "router-" + s))
        t0 = time.monotonic()
        with routers.connect(env) as m:
            try:
                m.edit_config(target="candidate", config=xml)
                m.commit()
            except Exception:
                try:
                    m.discard_changes()
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass
                raise
        times[s] = time.monotonic() - t0
    return times


def add(lab, env, args):
    n = int(args[0])
    first, masters, shared = 100, "alternate", False
    interval = int(env.get("LAB_ROTATION_INTERVAL") or 0)
    i = 1
    while i < len(args):
        a = args[i]
        if a == "--shared-secret":
            shared = True
            i += 1
            continue
        if i + 1 >= len(args):
            die("%s needs a value" % a)
        v = args[i + 1]
        if a == "--first":
            first = int(v)
        elif a == "--masters":
            if v not in ("alternate", "a"):
                die("--masters alternate or a")
            masters = v
        elif a == "--interval":
            interval = int(v)
        else:
            die("unknown option %s" % a)
        i += 2
    if n < 1 or first < 10 or first + n - 1 > 65535:
        die("channel ids %d..%d: between 10 and 65535 please" % (first, first + n - 1))
    if env.get("LAB_SITES", "a b").split() != ["a", "b"]:
        die("a two-site lab only (LAB_SITES=2)")
    if any(env.get("AGENT_PID_" + s) for s in "ab"):
        die("add channels before the agents start (lab.sh stop DIR first)")
    if os.path.exists(os.path.join(lab, LIST)):
        die("channels were already added to this lab (%s)" % os.path.join(lab, LIST))

    chans = []
    shared_file = os.path.join(lab, "secrets", "extra.secret")
    if shared:
        write_private(shared_file, os.urandom(32), "wb")
    for k in range(n):
        cid = first + k
        suite = SUITES[k % 4]
        ch = {"id": cid, "ca": "CA-QKD-%d" % cid, "ifname": "et-1/%d/0" % k, "suite": suite,
              "master": "a" if masters == "a" or k % 2 == 0 else "b",
              "conv": "prefix" if k % 2 == 0 else "sha256"}
        if ch["conv"] == "prefix":
            ch["prefix"] = prefix_of(cid)
        ch["secret"] = shared_file if shared else os.path.join(lab, "secrets", "ch%d.secret" % cid)
        if not shared:
            write_private(ch["secret"], os.urandom(32), "wb")
        ch["boot_ckn"] = bootstrap_ckn(ch)
        ch["boot_cak"] = os.urandom(CAK_HEX[suite] // 2).hex()
        write_private(os.path.join(lab, "bootstrap", "ch%d.cak" % cid), ch["boot_cak"])
        write_private(os.path.join(lab, "bootstrap", "ch%d.ckn" % cid), ch["boot_ckn"] + "\n")
        chans.append(ch)

    t = push(lab, chans)

    sae = {"a": "SAE-A", "b": "SAE-B"}
    for s in ("a", "b"):
        path = os.path.join(lab, "site-" + s, "qkdlinkd.json")
        with open(path) as f:
            cfg = json.load(f)
        other = "b" if s == "a" else "a"
        for ch in chans:
            o = {"id": ch["id"], "ca_name": ch["ca"], "interfaces": [ch["ifname"]],
                 "cipher_suite": ch["suite"], "role": "master" if ch["master"] == s else "slave",
                 "peers": [sae[other]],
                 "secrets": [{"id": 1, "file": ch["secret"], "current": True}],
                 "rotation_interval": interval,
                 "ckn": {"prefix": ch["prefix"]} if ch["conv"] == "prefix" else "sha256"}
            cfg["channels"].append(o)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        os.rename(tmp, path)
        r = subprocess.run([os.path.join(env["LAB_BUILD"], "qkdlinkd-check"), path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die("site %s: qkdlinkd-check refused the configuration:\n%s%s" % (s, r.stdout, r.stderr))
    keep = [{k: v for k, v in ch.items() if k != "boot_cak"} for ch in chans]
    write_private(os.path.join(lab, LIST), json.dumps({"interval": interval, "channels": keep}))
    print("channels: %d channels %d..%d added (masters %s, rotation interval %d s, %s secret); "
          "routers bootstrapped in one edit-config + commit each (A %.1f s, B %.1f s); "
          "configurations pass qkdlinkd-check" % (
              n, first, first + n - 1, "alternating A/B" if masters == "alternate" else "all on A",
              interval, "one shared" if shared else "one per channel", t["a"], t["b"]))
    return 0


def load_list(lab):
    try:
        with open(os.path.join(lab, LIST)) as f:
            return json.load(f)
    except OSError as e:
        die("no added channels in %s (%s)" % (lab, e))


def master_counts(lab, ch):
    st, _ = agents.status(lab, ch["master"])
    c = next((x for x in agents.find_channels(st) if x.get("id") == ch["id"]), {})
    return c.get("rotations_completed") or 0, c.get("rotations_failed") or 0, c.get("state")


def one_rotation(lab, ch, tries=3, secs=20.0):
    """qkdlinkctl rotate at the channel's master until one more rotation completed."""
    done0, _, _ = master_counts(lab, ch)
    for _ in range(tries):
        _, fail0, _ = master_counts(lab, ch)
        rc, out, err = agents.ctl(lab, ch["master"], "rotate", str(ch["id"]))
        if rc != 0:
            time.sleep(1)  # e.g. still settling after the start: ask again
            continue
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            done, fail, state = master_counts(lab, ch)
            if done > done0:
                return True
            if fail > fail0 and str(state).upper() == "IDLE":
                break
            time.sleep(0.1)
    return False


def check(lab, args):
    k, wait, strict, rotate = 1, 60.0, False, False
    i = 0
    while i < len(args):
        if args[i] in ("--strict", "--rotate"):
            strict = strict or args[i] == "--strict"
            rotate = rotate or args[i] == "--rotate"
            i += 1
            continue
        if i + 1 >= len(args):
            die("%s needs a value" % args[i])
        if args[i] == "--rotations":
            k = int(args[i + 1])
        elif args[i] == "--wait":
            wait = float(args[i + 1])
        else:
            die("unknown option %s" % args[i])
        i += 2
    chans = load_list(lab)["channels"]
    n, fails = 0, 0

    def tap(ok, what, diag=""):
        nonlocal n, fails
        n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
        if not ok:
            fails += 1
            for line in diag.strip().splitlines()[:20]:
                print("#   " + line)
        sys.stdout.flush()

    if rotate:
        slow = []
        for ch in chans:
            if not one_rotation(lab, ch):
                slow.append(ch["id"])
        tap(not slow, "each of the %d added channels rotated once on request, one after another "
            "(qkdlinkctl rotate at its master)" % len(chans), "did not complete: %s" % slow)
    deadline = time.monotonic() + wait
    while True:
        st, err = {}, ""
        for s in ("a", "b"):
            try:
                st[s] = {c["id"]: c for c in agents.find_channels(agents.status(lab, s)[0])}
            except RuntimeError as e:
                err = str(e)
        behind = [ch["id"] for ch in chans if not err and
                  (st[ch["master"]].get(ch["id"], {}).get("rotations_completed") or 0) < k]
        if not err and not behind:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    tap(not err and not behind, "every one of the %d added channels completed %d rotation(s) "
        "within %.0f s" % (len(chans), k, wait),
        err or "behind: %s\n%s" % (" ".join(map(str, behind[:40])), "\n".join(
            "ch %s: %s" % (c, json.dumps({x: st[ch["master"]].get(c, {}).get(x) for x in (
                "state", "rotations_completed", "rotations_failed", "rotations_skipped",
                "last_detail")})) for c, ch in ((c, next(h for h in chans if h["id"] == c))
                                               for c in behind[:10]))))
    if err:
        return 1
    # the routers: same CKN/CAK, and the CKN the master's current key_ID under
    # the channel's convention (a rotation may land between the reads: retried)
    envs = {s: routers.load_env(os.path.join(lab, "router-" + s)) for s in "ab"}
    cas = [ch["ca"] for ch in chans]
    deadline = time.monotonic() + 20
    while True:
        for s in ("a", "b"):
            st[s] = {c["id"]: c for c in agents.find_channels(agents.status(lab, s)[0])}
        ckns = {}
        for ch in chans:
            kid = st[ch["master"]].get(ch["id"], {}).get("current_key_id")
            if kid:
                ckns[ch["ca"]] = expected_ckn(ch, kid)
        problems, _ = routers.survey(envs, cas, ckns, {}, strict)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(1)
    tap(not problems, "both routers hold the same CKN and CAK for the %d added CAs, each CKN the "
        "convention applied to the master's key_ID; no lock, no candidate edit%s" % (
            len(cas), ", no pending confirmed commit" if strict else ""), "\n".join(problems))
    return 1 if fails else 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lab, cmd, args = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    env = agents.lab_env(lab)
    if not in_lab_ns(env):
        os.execvp("ip", ["ip", "netns", "exec", env["LAB_NS"], sys.executable,
                         os.path.abspath(__file__)] + sys.argv[1:])
    if cmd == "add" and args:
        return add(lab, env, args)
    if cmd == "list":
        for ch in load_list(lab)["channels"]:
            print(ch["id"], ch["master"], ch["conv"], ch["ca"])
        return 0
    if cmd == "check":
        return check(lab, args)
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
