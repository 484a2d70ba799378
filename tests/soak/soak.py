#!/usr/bin/python3
"""The soak's sampler and verdict (tests/soak/soak.sh runs it inside the lab's namespace).

Usage:
  soak.py DIR run --minutes M --out OUTDIR [--sample S] [--warmup W] [--checks K]
                  [--recover R] [--max-slope KIB_H] [--max-growth KIB]
      with the agents running and rotating: every S s (default 30) samples each
      agent's VmRSS (/proc/PID/status), its open fds (/proc/PID/fd) and its
      channels' counters (qkdlinkctl status --json); K times (default 3) during
      the run, spread evenly, reads both routers for every CA (ncclient,
      tests/lab/routers.py: same CKN/CAK, no lock, no candidate edit; each CA
      and router judged on its best read within 30 s, since one read of all
      CAs nearly always meets a rotation in progress). At the
      end: the relay's loss is switched off (when the lab has one) and, from the
      masters' logs ("rotation R metrics: result X"), every failed rotation must
      be followed by a successful one of its channel within R s (default 120)
      of the end; then the routers once more and both agents alive. Memory:
      from the samples after W minutes of warm-up (default 5), the least-squares
      slope in KiB/hour and the first against the last; it fails when the slope
      exceeds KIB_H (default 1024) and the last sample exceeds the first by more
      than KIB (default 1024): both, so that a step in a short run or a slope
      from noise alone does not count as a leak. fds: every sample after the
      warm-up at most 2 above the most seen in the first three (the KME's and
      routers' connections come and go). TAP lines; OUTDIR/soak.json (samples and
      summary) and OUTDIR/soak.md (the summary as markdown).
"""
import datetime
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import agents  # noqa: E402
import routers  # noqa: E402

METRICS = re.compile(r"^(\S+)Z qkdlinkd\[\w+\]: channel (\d+) master: rotation (\d+) metrics: "
                     r"result (\S+) duration_ms (\d+)")

N = 0
FAILS = 0


def tap(ok, what, diag=""):
    global N, FAILS
    N += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", N, what))
    if not ok:
        FAILS += 1
        for line in str(diag).strip().splitlines()[:25]:
            print("#   " + line)
    sys.stdout.flush()


def kib(pid, key="VmRSS"):
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def nfds(pid):
    try:
        return len(os.listdir("/proc/%s/fd" % pid))
    except OSError:
        return None


def fd_kinds(pid):
    """{"socket": n, "pipe": n, "file": n, ...} of a process's open fds."""
    out = {}
    try:
        for fd in os.listdir("/proc/%s/fd" % pid):
            try:
                t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            k = t.split(":", 1)[0] if ":" in t and not t.startswith("/") else "file"
            out[k] = out.get(k, 0) + 1
    except OSError:
        pass
    return out


def alive(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError):
        return False


def slope_kib_h(pts):
    """Least-squares slope of [(seconds, kib)] in KiB per hour."""
    if len(pts) < 2:
        return None
    n = float(len(pts))
    mx = sum(t for t, _ in pts) / n
    my = sum(v for _, v in pts) / n
    sxx = sum((t - mx) ** 2 for t, _ in pts)
    if sxx == 0:
        return None
    return sum((t - mx) * (v - my) for t, v in pts) / sxx * 3600.0


def all_cas(lab):
    cas = ["CA-QKD-7", "CA-QKD-8"]
    try:
        with open(os.path.join(lab, "bootstrap", "channels.json")) as f:
            cas += [c["ca"] for c in json.load(f)["channels"]]
    except OSError:
        pass
    return cas


def routers_ok(lab, cas, wait=30.0):
    """Reads both routers again and again for up to `wait` s: every CA must be
    seen at least once with the same CKN and CAK on both routers, and each
    router at least once with no lock and candidate equal to running. With
    every channel rotating every few seconds a single read of all CAs at once
    almost always catches one in the middle of a rotation (its routers differ
    for the skew, and a router's candidate holds the edit being committed), so
    each CA and each router is judged on its best read. [] or the problems of
    what was never seen right (from the last read)."""
    envs = {s: routers.load_env(os.path.join(lab, "router-" + s)) for s in "ab"}
    deadline = time.monotonic() + wait
    pending = set(cas) | {"router A", "router B"}
    while True:
        problems, _ = routers.survey(envs, cas, {}, {}, False)
        for item in list(pending):
            pat = re.compile(r"(?<![\w-])%s(?![\w-])" % re.escape(item))
            if item.startswith("router "):
                bad = [p for p in problems if p.startswith(item + ":") and
                       ("locked" in p or "candidate" in p or "ncclient" in p)]
            else:
                bad = [p for p in problems if pat.search(p)]
            if not bad:
                pending.discard(item)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    if not pending:
        return []
    last = [p for p in problems if any(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(i), p)
                                       for i in pending)]
    return ["never seen right within %.0f s: %s" % (wait, ", ".join(sorted(pending)))] + last


def rotations(lab):
    """{channel: [(time, ok)]} from both masters' logs."""
    out = {}
    for s in "ab":
        with open(os.path.join(lab, "site-%s/qkdlinkd.log" % s), errors="replace") as f:
            for line in f:
                m = METRICS.match(line)
                if m:
                    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                        tzinfo=datetime.timezone.utc).timestamp()
                    out.setdefault(int(m.group(2)), []).append((t, m.group(4) == "OK"))
    return out


def unrecovered(rots, until):
    """Channels with a failed rotation before `until` and no success after it;
    and the longest time from a failure to the next success."""
    bad, worst = {}, 0.0
    for ch, v in rots.items():
        v.sort()
        for i, (t, ok) in enumerate(v):
            if ok or t > until:
                continue
            nxt = next((t2 for t2, ok2 in v[i + 1:] if ok2), None)
            if nxt is None:
                bad[ch] = t
            else:
                worst = max(worst, nxt - t)
    return bad, worst


def run(lab, args):
    o = {"--minutes": "30", "--out": None, "--sample": "30", "--warmup": "5", "--checks": "3",
         "--recover": "120", "--max-slope": "1024", "--max-growth": "1024"}
    i = 0
    while i + 1 < len(args):
        if args[i] not in o:
            sys.exit("soak.py: unknown option %s" % args[i])
        o[args[i]] = args[i + 1]
        i += 2
    if not o["--out"]:
        sys.exit("soak.py: --out OUTDIR")
    minutes, sample = float(o["--minutes"]), float(o["--sample"])
    warmup = float(o["--warmup"]) * 60
    env = agents.lab_env(lab)
    pids = {s: env.get("AGENT_PID_" + s) for s in "ab"}
    cas = all_cas(lab)
    t0 = time.time()
    m0 = time.monotonic()
    end = minutes * 60
    nchecks = int(o["--checks"])
    check_at = [end * (k + 1) / (nchecks + 1) for k in range(nchecks)]
    samples, checks, dead = [], [], []
    print("# soak: %.0f min, %d channels (%s), a sample every %.0f s, warm-up %.0f min" % (
        minutes, len(cas), ", ".join(c.replace("CA-QKD-", "") for c in cas), sample, warmup / 60))
    sys.stdout.flush()
    while True:
        el = time.monotonic() - m0
        sm = {"t": round(el, 1)}
        for s in "ab":
            sm["rss_" + s] = kib(pids[s])
            sm["fds_" + s] = nfds(pids[s])
            sm["alive_" + s] = alive(pids[s])
            if not sm["alive_" + s]:
                dead.append((round(el), s))
            try:
                st, _ = agents.status(lab, s)
                sm["ch_" + s] = {c["id"]: [c.get("rotations_completed"), c.get("rotations_failed")]
                                 for c in agents.find_channels(st)}
            except RuntimeError as e:
                sm["ch_" + s] = str(e)
        samples.append(sm)
        if check_at and el >= check_at[0]:
            check_at.pop(0)
            p = routers_ok(lab, cas)
            checks.append({"t": round(el), "problems": p})
            print("# %4.0f s: routers %s" % (el, "agree on every CA, no lock" if not p else "; ".join(p[:3])))
        if el >= end:
            break
        print("# %4.0f s: RSS A %s KiB B %s KiB, fds A %s B %s" % (
            el, sm["rss_a"], sm["rss_b"], sm["fds_a"], sm["fds_b"]))
        sys.stdout.flush()
        time.sleep(max(0.0, min(sample, end - (time.monotonic() - m0))))
    t_end = time.time()

    # the verdict
    tap(not dead and all(alive(p) for p in pids.values()),
        "both agents alive at every sample and at the end", "dead at: %s" % dead)
    summary = {"minutes": minutes, "channels": len(cas), "samples": len(samples), "agents": {}}
    for s in "ab":
        post = [(x["t"], x["rss_" + s]) for x in samples if x["t"] >= warmup and x["rss_" + s]]
        if len(post) < 2:  # a short run: all samples
            post = [(x["t"], x["rss_" + s]) for x in samples if x["rss_" + s]]
        sl = slope_kib_h(post)
        first, last = (post[0][1], post[-1][1]) if post else (None, None)
        fds = [x["fds_" + s] for x in samples if x["t"] >= warmup and x["fds_" + s] is not None] or \
              [x["fds_" + s] for x in samples if x["fds_" + s] is not None]
        summary["agents"][s] = {
            "rss_first_kib": first, "rss_last_kib": last, "rss_max_kib": max(v for _, v in post) if post else None,
            "rss_slope_kib_h": round(sl, 1) if sl is not None else None,
            "hwm_kib": kib(pids[s], "VmHWM"), "fds_first": fds[0] if fds else None,
            "fds_last": fds[-1] if fds else None, "fds_min": min(fds) if fds else None,
            "fds_max": max(fds) if fds else None}
        a = summary["agents"][s]
        leak = (sl is None or first is None or
                (sl > float(o["--max-slope"]) and last - first > float(o["--max-growth"])))
        tap(not leak, "agent %s memory: VmRSS %s -> %s KiB after warm-up, slope %s KiB/h "
            "(limit: slope > %s KiB/h and growth > %s KiB)" % (
                s.upper(), first, last, a["rss_slope_kib_h"], o["--max-slope"], o["--max-growth"]))
        # the KME's and routers' connections come and go: the baseline is the
        # most seen in the first three samples after the warm-up
        base = max(fds[:3]) if fds else None
        a["fds_baseline"] = base
        a["fds_end_kinds"] = fd_kinds(pids[s])
        tap(bool(fds) and max(fds) <= base + 2,
            "agent %s fds constant after warm-up: never more than 2 above the first samples' %s "
            "(first %s, last %s, min %s, max %s; at the end %s)" % (
                s.upper(), base, a["fds_first"], a["fds_last"], a["fds_min"], a["fds_max"],
                a["fds_end_kinds"]))
    for c in checks:
        tap(not c["problems"], "at %d s the routers agree on each of the %d CAs (same CKN/CAK; no lock, "
            "no candidate edit; each seen so within 30 s)" % (c["t"], len(cas)), "\n".join(c["problems"]))
    if env.get("IMPAIR_SOCK"):
        try:
            summary["relay"] = agents.impair(lab, "stats")
            agents.impair(lab, "set", "loss=0")
        except RuntimeError as e:
            tap(False, "the impairment relay answers (stats, loss off)", str(e))
    # every failed rotation followed by a successful one
    deadline = time.monotonic() + float(o["--recover"])
    while True:
        rots = rotations(lab)
        bad, worst = unrecovered(rots, t_end)
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(2)
    inwin = {ch: [x for x in v if t0 <= x[0] <= t_end] for ch, v in rots.items()}
    okn = sum(1 for v in inwin.values() for _, ok in v if ok)
    failn = sum(1 for v in inwin.values() for _, ok in v if not ok)
    summary.update({"rotations_ok": okn, "rotations_failed": failn,
                    "per_channel": {ch: [sum(1 for _, ok in v if ok), sum(1 for _, ok in v if not ok)]
                                    for ch, v in sorted(inwin.items())},
                    "worst_recovery_s": round(worst, 1), "unrecovered": sorted(bad)})
    idle = [c for c in (int(x.replace("CA-QKD-", "")) for x in cas) if not summary["per_channel"].get(c, [0])[0]]
    tap(not idle, "every one of the %d channels completed rotations during the soak (%d OK, %d failed)" % (
        len(cas), okn, failn), "no successful rotation: %s" % idle)
    tap(not bad, "every failed rotation was followed by a successful one of its channel "
        "(longest failure to success: %.1f s)" % worst,
        "\n".join("channel %d: failed at %s, no success since" % (ch, datetime.datetime.utcfromtimestamp(t)
                                                                   .strftime("%H:%M:%S")) for ch, t in bad.items()))
    p = routers_ok(lab, cas)
    tap(not p, "at the end the routers agree on all %d CAs (same CKN/CAK, no lock, no candidate edit)"
        % len(cas), "\n".join(p))
    tap(all(alive(p) for p in pids.values()), "both agents still running at the end")
    summary["checks"] = checks
    summary["tap_failed"] = FAILS
    os.makedirs(o["--out"], exist_ok=True)
    with open(os.path.join(o["--out"], "soak.json"), "w") as f:
        json.dump({"summary": summary, "samples": samples}, f, sort_keys=True)
    with open(os.path.join(o["--out"], "soak.md"), "w") as f:
        f.write(markdown(summary))
    return 1 if FAILS else 0


def markdown(s):
    r = ["| agent | VmRSS after warm-up, first -> last (KiB) | peak | slope (KiB/h) | VmHWM | fds first / last (min-max) |",
         "|---|---|---:|---:|---:|---|"]
    for x, a in sorted(s["agents"].items()):
        r.append("| %s | %s -> %s | %s | %s | %s | %s / %s (%s-%s) |" % (
            x.upper(), a["rss_first_kib"], a["rss_last_kib"], a["rss_max_kib"], a["rss_slope_kib_h"],
            a["hwm_kib"], a["fds_first"], a["fds_last"], a["fds_min"], a["fds_max"]))
    r.append("")
    r.append("%.0f min, %d channels, %d samples: %d rotations OK, %d failed, every failure followed by "
             "a success: %s (longest failure to success %.1f s); router checks during the run: %s." % (
                 s["minutes"], s["channels"], s["samples"], s["rotations_ok"], s["rotations_failed"],
                 "yes" if not s["unrecovered"] else "NO (channels %s)" % s["unrecovered"],
                 s["worst_recovery_s"], ", ".join("%d s %s" % (c["t"], "ok" if not c["problems"] else "FAILED")
                                                  for c in s["checks"]) or "none"))
    rl = s.get("relay") or {}
    if rl.get("ab") and rl.get("ba"):
        r.append("")
        r.append("Impairment relay (seed %s): %s." % (rl.get("seed"), "; ".join(
            "%s dropped %d of %d frames (%.2f%%)" % (
                d, rl[d].get("dropped_loss", 0), rl[d].get("received", 0),
                100.0 * rl[d].get("dropped_loss", 0) / max(1, rl[d].get("received", 0)))
            for d in ("ab", "ba"))))
    return "\n".join(r) + "\n"


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "run":
        sys.exit(__doc__)
    return run(os.path.abspath(sys.argv[1]), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
