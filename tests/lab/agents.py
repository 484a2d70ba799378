#!/usr/bin/python3
"""The lab's view of the two agents, through `qkdlinkctl status --json`.

Usage (inside the lab's namespace; `tests/lab/lab.sh exec DIR /usr/bin/python3 ...`):
  agents.py DIR e2e [--rotations N]    end-to-end checks on a running lab with its
                                       agents started; TAP lines, exit 1 on failure.
                                       Two sites: N rotations of channel 7, one of 8,
                                       then 7 and 8 at once; three sites: N of channel
                                       9 (one master, two slaves) and one of 7;
                                       two sites also: each agent killed with
                                       SIGKILL mid-rotation and restarted (guarantee
                                       2), forged and replayed frames injected during
                                       rotations
  agents.py DIR watch [--seconds S]    the demo's display: one line per rotation, both
                                       agents' status every few seconds (Ctrl-C ends)
  agents.py DIR show                   both agents' channels, normalised, as JSON

The status JSON is read tolerantly: a list "channels" of objects with "id",
"role", "state", the current key_ID ("current_key_id", or "current": {"key_id"}),
and "last_rotation" {"rotation", "result"/"ok", "duration_ms", "skew_ms",
"confirm_skew_ms", "diverged_ms"}; field names are matched without regard to
case, "_" or "-". What cannot be found is reported, with the raw JSON.
"""
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routers  # noqa: E402

PREFIX7 = "5142434b0000000000000000000000a7"
PREFIX9 = "5142434b0000000000000000000000a9"
# the lab's channels (tests/lab/lab.sh): master site, slave sites, CKN convention
CHANNELS = {7: {"ca": "CA-QKD-7", "master": "a", "slaves": "b", "conv": "prefix", "prefix": PREFIX7},
            8: {"ca": "CA-QKD-8", "master": "b", "slaves": "a", "conv": "sha256"},
            9: {"ca": "CA-QKD-9", "master": "a", "slaves": "bc", "conv": "prefix", "prefix": PREFIX9}}


def lab_env(lab):
    env = {}
    with open(os.path.join(lab, "lab.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v[1:-1] if len(v) >= 2 and v[0] == v[-1] == "'" else v
    return env


def ctl(lab, site, *args, timeout=10):
    build = lab_env(lab)["LAB_BUILD"]
    cmd = [os.path.join(build, "qkdlinkctl"), "-s", os.path.join(lab, "site-" + site, "qkdlinkd.sock")]
    try:
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        return -1, "", "qkdlinkctl timed out after %d s" % timeout


def impair(lab, *cmd):
    """One command to the lab's impairment relay (lab.sh up with LAB_IMPAIR=1), e.g.
    impair(lab, "set", "loss=0.3") or impair(lab, "partition on dir=ab"): the reply
    line ("ok"), or for `stats` the parsed JSON. RuntimeError when the lab has no
    relay, the relay cannot be reached or it refuses the command (the reply says why)."""
    env = lab_env(lab)
    if not env.get("IMPAIR_SOCK"):
        raise RuntimeError("%s: this lab has no impairment relay (LAB_IMPAIR=1 at up)" % lab)
    words = " ".join(cmd).split()
    try:
        r = subprocess.run([os.path.join(env["LAB_BUILD"], "qkdlink-impair"), "-C", env["IMPAIR_SOCK"]] + words,
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise RuntimeError("qkdlink-impair -C %s: no reply within 10 s" % " ".join(words))
    out = r.stdout.strip()
    if r.returncode != 0:
        raise RuntimeError("qkdlink-impair -C %s: exit %d: %s" % (" ".join(words), r.returncode, (out or r.stderr).strip()))
    if words and words[0] == "stats":
        return json.loads(out)
    return out


def nk(k):
    return re.sub(r"[^a-z0-9]", "", str(k).lower())


def get(d, *names):
    if not isinstance(d, dict):
        return None
    keys = {nk(k): v for k, v in d.items()}
    for n in names:
        if nk(n) in keys and keys[nk(n)] is not None:
            return keys[nk(n)]
    return None


def find_channels(st):
    """The list of channel objects, wherever the status keeps it."""
    v = get(st, "channels")
    if isinstance(v, list):
        return v
    if isinstance(v, dict):  # {"7": {...}}
        out = []
        for k, c in v.items():
            if isinstance(c, dict):
                c = dict(c)
                c.setdefault("id", k)
                out.append(c)
        return out
    if isinstance(st, dict):
        for x in st.values():
            r = find_channels(x) if isinstance(x, dict) else None
            if r:
                return r
    return []


def key_id_of(x):
    if isinstance(x, str):
        return x or None
    if isinstance(x, dict):
        return key_id_of(get(x, "key_id", "keyid", "key"))
    if isinstance(x, list) and x:
        return key_id_of(x[0])
    return None


def norm_channel(c):
    lr = get(c, "last_rotation", "lastrotation", "last")
    if not isinstance(lr, dict):
        lr = {}
    cur = get(c, "current_key_id", "current_key_ids", "current_key")
    if cur is None:
        cur = get(c, "current")
    pend = get(c, "pending_key_id", "pending_key")
    if pend is None:
        pend = get(c, "pending")
    ok = get(lr, "ok")
    result = get(lr, "result", "status")
    if ok is None and isinstance(result, str):
        ok = result.lower() in ("ok", "success", "done")
    cid = get(c, "id", "channel", "channel_id")
    return {
        "id": int(cid) if cid is not None and str(cid).isdigit() else cid,
        "role": get(c, "role"),
        "state": get(c, "state"),
        "current_key_id": key_id_of(cur),
        "current_rotation": get(cur, "rotation") if isinstance(cur, dict) else get(c, "current_rotation"),
        "pending": key_id_of(pend) if not isinstance(pend, (int, float)) else pend,
        "pending_rotation": get(c, "pending_rotation"),
        "last": {
            "rotation": get(lr, "rotation", "rotation_id", "id"),
            "key_id": key_id_of(get(lr, "key_id", "keyid", "key_ids")),
            "ok": ok, "result": result,
            "duration_ms": get(lr, "duration_ms", "latency_ms", "duration"),
            "skew_ms": get(lr, "skew_ms", "skew"),
            "confirm_skew_ms": get(lr, "confirm_skew_ms"),
            "diverged_ms": get(lr, "diverged_ms"),
        },
        "peers": get(c, "peers"),
        "resync": get(c, "resync"),
        "failed": get(c, "rotations_failed"),
        "deferred": get(c, "rotations_deferred"),
        "detail": get(c, "last_detail"),
        "peers_alive": all(get(p, "alive") is not False for p in (get(c, "peers") or [])
                           if isinstance(p, dict)),
    }


def status(lab, site):
    rc, out, err = ctl(lab, site, "status", "--json")
    if rc != 0:
        raise RuntimeError("qkdlinkctl status --json (site %s) exit %d: %s" % (site.upper(), rc, (err or out).strip()))
    try:
        st = json.loads(out)
    except ValueError as e:
        raise RuntimeError("site %s: status --json is not JSON (%s): %s" % (site.upper(), e, out[:300]))
    return st, {c["id"]: c for c in (norm_channel(x) for x in find_channels(st))}


def idle(c):
    s = c.get("state")
    return s is None or str(s).lower() in ("idle", "0")


def expected_ckn(ch, key_id):
    if CHANNELS[ch]["conv"] == "prefix":
        h = key_id.replace("-", "").lower()
        return CHANNELS[ch]["prefix"] + h if re.fullmatch(r"[0-9a-f]{32}", h) else None
    return hashlib.sha256(key_id.encode()).hexdigest()


def lab_sites(lab):
    return lab_env(lab).get("LAB_SITES", "a b").split()


def chan_sites(lab, ch):
    """The sites of channel ch in this lab, master first ([] if the lab lacks it)."""
    c = CHANNELS[ch]
    sites = [c["master"]] + list(c["slaves"])
    have = lab_sites(lab)
    return sites if all(x in have for x in sites) else []


def kme_log_check(lab, ch, key_id):
    """The KME simulator's log (key_IDs only) shows key_id delivered exactly once
    by enc_keys to the channel's master at its KME and once by dec_keys to each
    slave at its own KME: the routers' common CAK is that KME key. "" or why not."""
    c = CHANNELS[ch]
    ms = c["master"].upper()
    slaves = [x.upper() for x in c["slaves"]]
    enc, dec = 0, {x: 0 for x in slaves}
    try:
        with open(os.path.join(lab, "kme", "kmesim.log")) as f:
            for line in f:
                w = line.split()
                if "key_IDs" not in w or key_id not in w[w.index("key_IDs") + 1:] or "200" not in w:
                    continue
                if w[1:3] == ["KME-" + ms, "SAE-" + ms] and any(
                        w[4].endswith("/SAE-%s/enc_keys" % x) for x in slaves):
                    enc += 1
                for x in slaves:
                    if w[1:3] == ["KME-" + x, "SAE-" + x] and w[4].endswith("/SAE-%s/dec_keys" % ms):
                        dec[x] += 1
    except OSError as e:
        return "kmesim.log: %s" % e
    if enc == 1 and all(v == 1 for v in dec.values()):
        return ""
    return "KME log: key_ID %s delivered %d times by enc_keys to SAE-%s, by dec_keys %s (want 1 each)" % (
        key_id, enc, ms, ", ".join("%d times to SAE-%s" % (v, x) for x, v in sorted(dec.items())))


# ------------------------------------------------------------------ TAP
N = 0
FAILED = 0


def tap(ok, what, diag=""):
    global N, FAILED
    N += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", N, what))
    if not ok:
        FAILED += 1
        for line in str(diag).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()
    return ok


def snapshot(lab):
    """({site: {channel id: normalised channel}}, error text or None)"""
    out = {}
    try:
        for site in lab_sites(lab):
            out[site] = status(lab, site)[1]
        return out, None
    except RuntimeError as e:
        return None, str(e)


def settled(lab, ch):
    """Every agent of channel ch idle on one current key_ID:
    (key_ID, {site: channel}, why-not or None)."""
    snap, err = snapshot(lab)
    if err:
        return None, {}, err
    chans = {x: snap[x].get(ch) for x in chan_sites(lab, ch)}
    missing = [x.upper() for x, c in chans.items() if c is None]
    if missing:
        return None, chans, "channel %d missing from the status of %s" % (ch, ",".join(missing))
    if not all(idle(c) for c in chans.values()):
        return None, chans, "rotating: " + ", ".join("%s %s" % (x.upper(), c["state"]) for x, c in chans.items())
    keys = {c["current_key_id"] for c in chans.values()}
    if len(keys) != 1:
        return None, chans, "current key_IDs differ: " + ", ".join(
            "%s %s" % (x.upper(), c["current_key_id"]) for x, c in chans.items())
    return keys.pop(), chans, None


def wait_settled(lab, ch, secs, started=False):
    deadline = time.monotonic() + secs
    while True:
        k, chans, why = settled(lab, ch)
        if why is None and started:
            for site, c in chans.items():
                if c["resync"]:
                    why = "agent %s still in resync" % site.upper()
                elif not c["peers_alive"]:
                    why = "agent %s: a peer is not alive yet" % site.upper()
        if why is None:
            return k, chans, None
        if time.monotonic() > deadline:
            return k, chans, why
        time.sleep(0.25)


def pid_alive(pid):
    """The process runs (a zombie, an agent killed and not yet reaped, does not)."""
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def dead_agents(lab):
    """[(site, pid, last log lines)] of the agents whose recorded process is gone."""
    env, out = lab_env(lab), []
    for site in lab_sites(lab):
        pid = env.get("AGENT_PID_" + site)
        if pid_alive(pid):
            continue
        try:
            with open(os.path.join(lab, "site-" + site, "qkdlinkd.log"), errors="replace") as f:
                tail = "".join(f.readlines()[-12:])
        except OSError:
            tail = ""
        out.append((site.upper(), pid, tail))
    return out


def check_alive(lab):
    """False (and a not-ok line) when an agent died: the remaining checks cannot run."""
    dead = dead_agents(lab)
    for site, pid, tail in dead:
        tap(False, "agent %s (pid %s) is still running" % (site, pid), "its log ends:\n" + tail)
    return not dead


def routers_check(lab, want):
    """routers.py check for {ch: expected CKN or None}: (ok, output)."""
    args = []
    for ch, ckn in want.items():
        args += ["--ca", CHANNELS[ch]["ca"]]
        if ckn:
            args += ["--ckn", "%s=%s" % (CHANNELS[ch]["ca"], ckn)]
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "routers.py"),
                        lab, "check"] + args, capture_output=True, text=True, timeout=90)
    return r.returncode == 0, r.stdout + r.stderr


def raw_status(lab):
    out = []
    for site in lab_sites(lab):
        try:
            out.append("status of %s: %s" % (site.upper(), json.dumps(status(lab, site)[0])))
        except RuntimeError as e:
            out.append(str(e))
    return "\n".join(out)


def rotate_once(lab, ch, i, seen):
    """Rotates channel ch through its master's qkdlinkctl and checks the result
    from outside. Returns False when an agent died."""
    c = CHANNELS[ch]
    m = c["master"]
    nslaves = len(c["slaves"])
    if not check_alive(lab):
        return False
    before, _, _ = wait_settled(lab, ch, 20)
    t0 = time.monotonic()
    deadline = t0 + 40
    last_try, asked, why = 0.0, 0, None
    chans = {}
    while True:
        now = time.monotonic()
        if now - last_try > 3 and asked < 5:  # a skipped rotate (peer busy) is asked again
            rc, out, err = ctl(lab, m, "rotate", str(ch))
            last_try, asked = now, asked + 1
            if rc != 0:
                why = "qkdlinkctl rotate %d: exit %d: %s" % (ch, rc, (err or out).strip())
        k, chans, w = settled(lab, ch)
        if w is None and k and k != before:
            why = None
            break
        if now > deadline or dead_agents(lab):
            why = (why + "; " if why else "") + (w or "key_ID unchanged (%s)" % k)
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    what = "rotation %s (channel %d, %s master, %d slave%s): " % (
        i, ch, m.upper(), nslaves, "s" if nslaves > 1 else "")
    if why:
        tap(False, what + "completes within 40 s", why + "\n" + raw_status(lab))
        return check_alive(lab)
    # the routers, read by ncclient: same CKN and CAK, CKN under the convention
    want = expected_ckn(ch, k)
    ok, out = routers_check(lab, {ch: want})
    lr = chans[m]["last"]
    fresh = k not in seen
    seen.add(k)
    kme_why = kme_log_check(lab, ch, k)
    metrics = "latency %s ms, skew %s ms" % (lr.get("duration_ms"), lr.get("skew_ms"))
    tap(ok and want is not None and fresh and not kme_why,
        what + "key_ID %s new, fetched once at each KME, all %d routers hold the same CKN and CAK, "
        "CKN = %s(key_ID) (%s; %.1f s)" % (k, nslaves + 1, c["conv"], metrics, took),
        ("" if fresh else "key_ID %s used before\n" % k) + (kme_why + "\n" if kme_why else "") +
        ("" if want else "key_ID %s gives no CKN under the prefix convention\n" % k) + out)
    return True


def e2e(lab, rotations):
    three = lab_sites(lab) == ["a", "b", "c"]
    chs = (7, 8, 9) if three else (7, 8)
    for ch in chs:
        if not check_alive(lab):
            return False
        k, chans, why = wait_settled(lab, ch, 40, started=True)
        tap(why is None, "after start, channel %d settles: peers alive, its %d agents idle on one key_ID (%s)" % (
            ch, len(chans), k), why or "")
    seen = set()
    plan = ([9] * rotations + [7]) if three else ([7] * rotations + [8])
    for i, ch in enumerate(plan, 1):
        if not rotate_once(lab, ch, i, seen):
            return False
    if not three:
        if not check_alive(lab):
            return False
        concurrent(lab, seen)
        if not check_alive(lab) or not injections(lab, seen):
            return False
        if not crashes(lab, seen):
            return False
        if not provisioning(lab, seen):
            return False
    return FAILED == 0


# ------------------------------------------------ provisioning
def routers_json(lab):
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "routers.py"),
                        lab, "show", "--json"], capture_output=True, text=True, timeout=90)
    try:
        return json.loads(r.stdout), ""
    except ValueError:
        return None, r.stdout + r.stderr


def provisioning(lab, seen):
    """Router B loses CA-QKD-7 and its binding while the agents are stopped;
    with "provisioning": true the agents find that at start, rotate afresh,
    and the stage recreates CA and binding in the same confirmed commit; CA-QKD-8
    on the same router is not touched."""
    env = lab_env(lab)
    sh = os.path.join(env["LAB_REPO"], "tests", "lab", "lab.sh")
    r = subprocess.run(["sh", sh, "stop", lab], capture_output=True, text=True, timeout=60)
    before, err = routers_json(lab)
    rm = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "routers.py"),
                         lab, "remove", "b", "CA-QKD-7", "et-0/0/1"], capture_output=True, text=True, timeout=60)
    after_rm, _ = routers_json(lab)
    gone = bool(after_rm) and "CA-QKD-7" not in after_rm["b"]["cas"]
    for s in ("a", "b"):
        path = os.path.join(lab, "site-" + s, "qkdlinkd.json")
        with open(path) as f:
            cfg = json.load(f)
        for c in cfg["channels"]:
            if c["id"] == 7:
                c["provisioning"] = True
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
    chk = subprocess.run([os.path.join(env["LAB_BUILD"], "qkdlinkd-check"),
                          os.path.join(lab, "site-b", "qkdlinkd.json")], capture_output=True, text=True)
    tap(r.returncode == 0 and rm.returncode == 0 and gone and chk.returncode == 0,
        "provisioning: agents stopped, CA-QKD-7 and the binding of et-0/0/1 deleted on router B, "
        "\"provisioning\": true accepted by qkdlinkd-check",
        r.stdout + r.stderr + rm.stdout + rm.stderr + chk.stdout + chk.stderr + err)
    ok, out = start_agents(lab)
    if not ok:
        tap(False, "provisioning: the agents restart", out)
        return False
    k, chans, why = None, {}, "not settled"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        k, chans, why = wait_settled(lab, 7, 5, started=True)
        if why is None and k and k not in seen:
            break
        time.sleep(0.5)
    rok, rout = routers_check(lab, {7: expected_ckn(7, k) if k else None})
    after, err2 = routers_json(lab)
    bound = bool(after) and "et-0/0/1" in (after["b"]["cas"].get("CA-QKD-7") or {}).get("interfaces", [])
    ca8 = bool(before and after) and before["b"]["cas"].get("CA-QKD-8") == after["b"]["cas"].get("CA-QKD-8")
    logb = open(os.path.join(lab, "site-b", "qkdlinkd.log")).read()
    loga = open(os.path.join(lab, "site-a", "qkdlinkd.log")).read()
    said = ("provisioning check: router lacks part of CA CA-QKD-7" in logb and
            "provisioning in this stage" in logb and
            "provisioning check: CA CA-QKD-7 and its bindings present" in loga)
    fresh = k is not None and k not in seen
    if k:
        seen.add(k)
    tap(why is None and fresh and rok and bound and ca8 and said,
        "provisioning: the agents found the missing CA at start and rotated afresh (key_ID %s, %.1f s); "
        "router B holds CA-QKD-7 again, bound to et-0/0/1, with the same CKN/CAK as router A; CA-QKD-8 "
        "untouched; both logs say what was found and done" % (k, time.monotonic() - t0),
        (why or "") + "\n" + rout + "bound %s, CA-QKD-8 unchanged %s, logs %s\n%s" % (bound, ca8, said, err2) +
        "\n".join(l for l in logb.splitlines() if "provisioning" in l))
    return check_alive(lab)


def concurrent(lab, seen):
    """Channels 7 (A master) and 8 (B master) rotated at the same moment: each
    router then holds two channels' changes at once."""
    before, failed0, deferred0 = {}, {}, {}
    for ch in (7, 8):
        k, chans, why = wait_settled(lab, ch, 20)
        before[ch] = k
        failed0[ch] = (chans.get(CHANNELS[ch]["master"]) or {}).get("failed")
        deferred0[ch] = (chans.get(CHANNELS[ch]["master"]) or {}).get("deferred")
    procs = [subprocess.Popen([os.path.join(lab_env(lab)["LAB_BUILD"], "qkdlinkctl"), "-s",
                               os.path.join(lab, "site-" + CHANNELS[ch]["master"], "qkdlinkd.sock"),
                               "rotate", str(ch)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for ch in (7, 8)]
    outs = [p.communicate(timeout=15)[0] for p in procs]
    t0 = time.monotonic()
    done, detail, details_seen = {}, {}, {}
    while time.monotonic() - t0 < 40 and len(done) < 2 and not dead_agents(lab):
        for ch in (7, 8):
            if ch in done:
                continue
            k, chans, why = settled(lab, ch)
            if why is None and k and k != before[ch]:
                done[ch] = (k, time.monotonic() - t0)
            m = chans.get(CHANNELS[ch]["master"])
            if m and m.get("detail"):
                detail[ch] = "%s (rotations failed: %s)" % (m["detail"], m.get("failed"))
                details_seen.setdefault(ch, set()).add(m["detail"])
        time.sleep(0.2)
    tap(len(done) == 2, "channels 7 and 8 rotated at the same moment (A and B masters): both complete within 40 s (%s)" % (
        ", ".join("ch %d %.1f s" % (ch, t) for ch, (_, t) in sorted(done.items())) or "none did"),
        "qkdlinkctl rotate: %s\nlast detail: %s" % (" | ".join(o.strip() for o in outs), detail))
    snap, err = snapshot(lab)
    m1 = {ch: ((snap or {}).get(CHANNELS[ch]["master"], {}).get(ch) or {}) for ch in (7, 8)}
    failed1 = {ch: m1[ch].get("failed") for ch in (7, 8)}
    deferred1 = {ch: m1[ch].get("deferred") for ch in (7, 8)}
    # A router holds one confirmed commit at a time (protocol.md 10.1): the
    # lower channel keeps its router, the higher one is deferred (ACK
    # ROUTER_BUSY, counted as deferred, never as failed) and retried.
    deferred = (deferred1.get(8) or 0) - (deferred0.get(8) or 0)
    tap(not err and failed1 == failed0 and deferred1.get(7) == deferred0.get(7) and
        0 <= deferred <= 1 and (deferred == 0 or any("router busy" in d for d in details_seen.get(8, set()))),
        "... no rotation failed; channel 8 was at most deferred once with 'router busy' (one confirmed commit per router)",
        "rotations_failed before %s, after %s; deferred before %s, after %s; details seen: %s %s" % (
            failed0, failed1, deferred0, deferred1, details_seen, err or ""))
    ok, out = routers_check(lab, {ch: expected_ckn(ch, done[ch][0]) if ch in done else None for ch in (7, 8)})
    fresh = all(k not in seen for k, _ in done.values())
    tap(ok and fresh, "after the concurrent rotations both routers agree on CA-QKD-7 and CA-QKD-8 (%s)" % (
        "; ".join("ch %d on new key_ID %s" % (ch, k) for ch, (k, _) in sorted(done.items())) or "old keys kept"),
        out + ("" if fresh else "a key_ID was used before"))
    seen.update(k for k, _ in done.values())


# ------------------------------------------------ SIGKILL mid-rotation
def lab_timers(lab):
    """(T_c, H, D, commit window) in seconds, from site A's configuration and as
    the daemon derives D from a short T_c (agent/daemon.c, protocol.md 10.2)."""
    with open(os.path.join(lab, "site-a", "qkdlinkd.json")) as f:
        cfg = json.load(f)
    tc = float(cfg.get("router", {}).get("confirm_timeout", 120))
    h = float(cfg.get("hello_interval", 10))
    window = tc - min(tc / 4.0, 10.0)
    d = 30.0 if 30.0 + 8.0 < window else window / 2.0
    return tc, h, d, window


def recovery_bound(lab):
    """protocol.md 10.6: T_c (the longest a stage lives) + 3 H (a dead peer
    noticed, its HELLO read) + one rotation (D + the commit window), plus the
    restart itself (a few seconds)."""
    tc, h, d, window = lab_timers(lab)
    return tc + 3 * h + d + window + 5


def quick_status(lab, site, timeout=2.0):
    """One channel map from the control socket directly (no process spawned:
    polled every few ms to catch an agent mid-rotation). None on failure."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as so:
            so.settimeout(timeout)
            so.connect(os.path.join(lab, "site-" + site, "qkdlinkd.sock"))
            so.sendall(b"status\n")
            buf = b""
            while b"\n" not in buf:
                got = so.recv(65536)
                if not got:
                    break
                buf += got
        st = json.loads(buf.decode())
        return {c["id"]: c for c in (norm_channel(x) for x in find_channels(st))}
    except (OSError, ValueError):
        return None


def kme_fault(lab, query):
    env = lab_env(lab)
    url = "http://127.0.0.1:%s/%s" % (env["KME_ADMIN_PORT"], query)
    with urllib.request.urlopen(url, timeout=5) as r:
        r.read()


def kill_agent(lab, site):
    """SIGKILL to the agent of site; True once it is gone (within 5 s)."""
    pid = int(lab_env(lab)["AGENT_PID_" + site])
    os.kill(pid, signal.SIGKILL)
    t = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < t:
        time.sleep(0.02)
    return not pid_alive(pid)


def start_agents(lab):
    """tests/lab/lab.sh start: restarts the agents that are not running, with
    the same configuration; (ok, output)."""
    env = lab_env(lab)
    r = subprocess.run(["sh", os.path.join(env["LAB_REPO"], "tests", "lab", "lab.sh"), "start", lab],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0, r.stdout + r.stderr


def crash_one(lab, victim, when, seen):
    """Channel 7 rotated at A (master), the agent of site victim killed with
    SIGKILL at moment when ("at-rotate": as soon as `rotate` returns; "pending":
    the master once it is ANNOUNCING (its stage under way or done), the slave once
    its status shows the rotation pending, the KME relaying keys slowly so that
    the rotation lasts), restarted, and guarantee 2 checked within the
    recovery bound. Returns False when the lab cannot go on."""
    ch, c = 7, CHANNELS[7]
    role = "master" if victim == c["master"] else "slave"
    what = "SIGKILL of agent %s (channel 7 %s) %s" % (
        victim.upper(), role, "right after `rotate`" if when == "at-rotate" else "mid-rotation")
    before, _, why = wait_settled(lab, ch, 20)
    if why:
        tap(False, what + ": channel 7 settled before the kill", why + "\n" + raw_status(lab))
        return False
    caught = "-"
    slow = when == "pending"
    try:
        if slow:  # dec_keys answers "not found" for a while: the slave waits, retries
            kme_fault(lab, "set?relay_ms=700")
        rc, out, err = ctl(lab, c["master"], "rotate", str(ch))
        if when == "pending":
            t = time.monotonic() + 5
            while time.monotonic() < t:
                st = quick_status(lab, victim, timeout=1)
                v = (st or {}).get(ch)
                # the master once its own stage runs (ANNOUNCING: the slave is
                # still waiting for its key); the slave once it knows the rotation
                if v and ((role == "master" and str(v["state"]).upper() == "ANNOUNCING") or
                          (role == "slave" and (v.get("pending_rotation") or not idle(v)))):
                    caught = "state %s, pending rotation %s" % (v["state"], v["pending_rotation"])
                    break
                time.sleep(0.005)
        else:
            caught = "rotate: exit %d" % rc
        killed = kill_agent(lab, victim)
    finally:
        if slow:
            try:
                kme_fault(lab, "set?relay_ms=0")
            except OSError as e:
                tap(False, "KME simulator: relay_ms reset", str(e))
    if when == "pending" and caught == "-":
        tap(False, what + ": the rotation seen pending at %s before the kill" % victim.upper(),
            raw_status(lab))
    ok, out = start_agents(lab)
    tap(killed and ok, what + " (%s): killed, then restarted with the same configuration" % caught,
        out)
    if not (killed and ok):
        return False
    bound = recovery_bound(lab)
    t0 = time.monotonic()
    k, chans, why = wait_settled(lab, ch, bound, started=True)
    took = time.monotonic() - t0
    if why is None:
        # routers: same CKN/CAK, CKN = convention(k), no lock, no candidate
        # edit, no pending confirmed commit (--strict takes the candidate lock)
        r = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "routers.py"),
                            lab, "check", "--ca", c["ca"], "--ckn", "%s=%s" % (c["ca"], expected_ckn(ch, k) or "?"),
                            "--strict", "--wait", "10"], capture_output=True, text=True, timeout=120)
        rok, rout = r.returncode == 0, r.stdout + r.stderr
    else:
        rok, rout = False, ""
    fresh = k is not None and (k == before or k not in seen)
    if k and k != before:
        seen.add(k)
    tap(why is None and rok and fresh,
        "... guarantee 2 within the recovery bound (%.0f s): both agents IDLE on key_ID %s (%s), both routers "
        "the same CKN/CAK for CA-QKD-7 under its convention, no lock, no candidate edit, no pending confirmed "
        "commit (%.1f s)" % (bound, k, "the old key" if k == before else "a new key", took),
        (why or "") + "\n" + rout + ("" if fresh else "key_ID %s used before\n" % k) + raw_status(lab))
    return check_alive(lab)


def crashes(lab, seen):
    for victim in (CHANNELS[7]["master"], CHANNELS[7]["slaves"][0]):
        for when in ("at-rotate", "pending"):
            if not crash_one(lab, victim, when, seen):
                return False
    # after the crashes the channel still rotates normally
    return rotate_once(lab, 7, "after the kills", seen)


# ------------------------------------------------ forged and replayed frames
def drops(lab):
    """{site: {"accepted": n, reason: n, ...}} from every agent's status."""
    out = {}
    for site in lab_sites(lab):
        st = status(lab, site)[0]
        fr = get(st, "frames") or {}
        d = dict(get(fr, "dropped") or {})
        d["accepted"] = get(fr, "accepted") or 0
        out[site] = d
    return out


class Injector(threading.Thread):
    """Sends, until stopped, on both ports of the link: frames of channel 7
    signed with a wrong secret (bad_mac), frames of a channel nobody serves
    (unknown_channel), and the genuine frames captured before (tcpreplay:
    replay)."""

    def __init__(self, lab, caps):
        super().__init__(daemon=True)
        self.lab, self.caps = lab, caps
        self.stop = threading.Event()
        self.sent = {"bad_mac": 0, "unknown_channel": 0, "replayed": 0}
        self.errors = []

    def run1(self, cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        if r.returncode != 0 and len(self.errors) < 5:
            self.errors.append("%s: exit %d: %s" % (" ".join(cmd[:3]), r.returncode, (r.stderr or r.stdout).strip()[:200]))
        return r.returncode == 0

    def run(self):
        env = lab_env(self.lab)
        q = os.path.join(env["LAB_BUILD"], "qkd88b7")
        wrong = os.path.join(self.lab, "secrets", "check.secret")
        seq = 1
        while not self.stop.is_set():
            for tx, sender in (("site-a", "SAE-A"), ("site-b", "SAE-B")):
                # channel 7's secret ID (1), a wrong secret, the real sender: bad_mac
                if self.run1([q, "send", "-i", tx, "-s", wrong, "--secret-id", "1", "-c", "7",
                              "--sender", sender, "--epoch", "4000000000", "--seq", str(seq), "-n", "3", "-q",
                              "hello", "--role", "master" if sender == "SAE-A" else "slave"]):
                    self.sent["bad_mac"] += 3
                # a channel no agent serves: unknown_channel
                if self.run1([q, "send", "-i", tx, "-s", wrong, "--secret-id", "1", "-c", "4243",
                              "--sender", sender, "--epoch", "1", "--seq", str(seq), "-n", "2", "-q",
                              "announce", "--rotation", "1", "--key-id",
                              "00000000-0000-0000-0000-00000000beef"]):
                    self.sent["unknown_channel"] += 2
            # genuine frames, captured earlier: replay
            for tx, cap in self.caps:
                if self.run1(["tcpreplay", "-q", "-i", tx, cap]):
                    self.sent["replayed"] += 1
            seq += 3
            self.stop.wait(0.15)


def capture(lab, seen):
    """Genuine frames of both agents, captured on the link while channel 7
    rotates once: [(port to replay them on, pcap)]."""
    caps, procs = [], []
    for rx, tx in (("site-b", "site-a"), ("site-a", "site-b")):
        # frames arriving at rx (sent by the other agent), replayed later from
        # tx so that they reach rx's agent again
        f = os.path.join(lab, "check", "genuine-%s.pcap" % rx)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        procs.append(subprocess.Popen(["tcpdump", "-U", "--immediate-mode", "-Q", "in", "-i", rx, "-w", f,
                                       "ether proto 0x88b7"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        caps.append((tx, f))
    time.sleep(1.0)  # tcpdump's socket open
    ok = rotate_once(lab, 7, "captured", seen)
    time.sleep(1.2)  # a HELLO each way at least
    for p in procs:
        p.send_signal(signal.SIGINT)
    errs = []
    for p in procs:
        try:
            errs.append(p.communicate(timeout=10)[1].decode(errors="replace"))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
    return ok, caps, "\n".join(errs)


def injections(lab, seen, rotations=3):
    ok, caps, err = capture(lab, seen)
    if not ok:
        return False
    sizes = [os.path.getsize(f) if os.path.exists(f) else 0 for _, f in caps]
    tap(all(x > 24 for x in sizes), "tcpdump captured genuine 0x88B7 frames on both ports during a rotation "
        "(%s octets)" % ", ".join(map(str, sizes)), err)
    before = drops(lab)
    inj = Injector(lab, caps)
    inj.start()
    try:
        time.sleep(0.5)
        for i in range(1, rotations + 1):
            if not rotate_once(lab, 7, "under injection %d/%d" % (i, rotations), seen):
                return False
    finally:
        inj.stop.set()
        inj.join(30)
    time.sleep(0.3)
    after = drops(lab)
    tap(not inj.errors and all(inj.sent.values()),
        "forged and replayed frames injected during the rotations (qkd88b7 send, tcpreplay): %s" % (
            ", ".join("%s %d" % kv for kv in sorted(inj.sent.items()))), "\n".join(inj.errors))
    for reason in ("bad_mac", "unknown_channel", "replay"):
        grew = {x: (after[x].get(reason) or 0) - (before[x].get(reason) or 0) for x in after}
        tap(all(v > 0 for v in grew.values()),
            "... every agent rejected them as %s: its counter grew (%s)" % (
                reason, ", ".join("%s +%d" % (x.upper(), v) for x, v in sorted(grew.items()))),
            "before %s\nafter %s" % (before, after))
    # the rotations under injection completed; the channel is idle on one key
    k, chans, why = wait_settled(lab, 7, 10)
    tap(why is None and all(c["peers_alive"] for c in chans.values()),
        "... after the injections both agents are IDLE on key_ID %s with their peer alive" % k,
        (why or "") + "\n" + raw_status(lab))
    return check_alive(lab)


def fmt_ms(v):
    return "-" if v is None else ("%s ms" % v)


def watch(lab, seconds):
    last = {}
    t_end = time.monotonic() + seconds if seconds else None
    next_status = 0.0
    sites = lab_sites(lab)
    chs = [ch for ch in CHANNELS if chan_sites(lab, ch)]
    print("watching the agents (Ctrl-C to stop)%s" % ("" if not seconds else ", %d s" % seconds))
    while t_end is None or time.monotonic() < t_end:
        snap, err = snapshot(lab)
        now = time.monotonic()
        ts = time.strftime("%H:%M:%S")
        if err:
            print("%s  status unavailable: %s" % (ts, err))
            sys.stdout.flush()
            time.sleep(2)
            continue
        for ch in chs:
            info = CHANNELS[ch]
            mine = snap[info["master"]].get(ch)
            if not mine:
                continue
            lr = mine["last"]
            ident = (lr.get("rotation"), lr.get("key_id"), mine["current_key_id"])
            if ch in last and ident != last[ch] and (lr.get("rotation") is not None or lr.get("key_id")):
                try:
                    got = routers.snapshot_pair(lab, info["ca"])
                except Exception as e:  # noqa: BLE001
                    got = "router read failed: %r" % e
                res = lr.get("result") if lr.get("result") is not None else ("ok" if lr.get("ok") else lr.get("ok"))
                print("%s  ch %d %s->%s rotation %-5s key_ID %-36s %-6s latency %-9s skew %-8s confirm-skew %-8s %s" % (
                    ts, ch, info["master"].upper(), info["slaves"].upper(), lr.get("rotation"),
                    lr.get("key_id") or mine["current_key_id"] or "-", res, fmt_ms(lr.get("duration_ms")),
                    fmt_ms(lr.get("skew_ms")), fmt_ms(lr.get("confirm_skew_ms")), got))
            last[ch] = ident
        if now >= next_status:
            next_status = now + 5
            for site in sites:
                chans = snap[site]
                parts = []
                for ch in sorted(chans, key=str):
                    c = chans[ch]
                    parts.append("ch %s %s %s key_ID %s" % (ch, c["role"], c["state"], c["current_key_id"] or "-"))
                print("%s  agent %s: %s" % (ts, site.upper(), "; ".join(parts) or "no channel"))
        sys.stdout.flush()
        time.sleep(1)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lab, cmd = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    if cmd == "e2e":
        n = int(args[args.index("--rotations") + 1]) if "--rotations" in args else 5
        return 0 if e2e(lab, n) else 1
    if cmd == "watch":
        s = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 0
        try:
            watch(lab, s)
        except KeyboardInterrupt:
            pass
        return 0
    if cmd == "show":
        out = {}
        for site in lab_sites(lab):
            try:
                out[site] = status(lab, site)[1]
            except RuntimeError as e:
                out[site] = str(e)
        print(json.dumps(out, indent=1, default=str))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
