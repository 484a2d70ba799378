#!/usr/bin/python3
"""The scale benchmark's measurement (tests/bench/scale.sh runs it): cost and
timeliness of the agents of a lab with many channels (tests/lab/channels.py).

Usage:
  scale.py DIR measure --interval S --warmup W --window T [--sample P] [--out FILE]
      after W seconds of warm-up, measures over T seconds: per agent, CPU share
      (utime+stime deltas of /proc/PID/stat over the window / wall time), VmRSS
      and VmHWM (/proc/PID/status; the largest VmRSS of the samples taken every
      P s, default 10), open fds (/proc/PID/fd, first and last sample), the
      rotations (qkdlinkctl status --json counters: completed, failed, skipped,
      deltas over the window; "due" = masters x T / S), and from the agents' logs
      (timestamps inside the window) the rotation duration p50/p99 of the
      successful ones, the refusals "router busy" (and of them the stages
      that waited D/2 for the router in vain), and per master channel the
      longest time between two successful rotations (from the window start to
      the first, between two, from the last to the window end). A channel keeps
      its schedule when that longest gap is at most 1.1 x S. Also the CPU share
      of each router's netconfd and of the KME simulator. One JSON object.
  scale.py table FILE...
      the markdown table of cost against channels, from measure's JSON files.
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

TICK = os.sysconf("SC_CLK_TCK")
LINE = re.compile(r"^(\S+)Z qkdlinkd\[\w+\]: channel (\d+) master: rotation (\d+) metrics: "
                  r"result (\S+) duration_ms (\d+)")
BUSY = re.compile(r"^(\S+)Z .*router busy")
# a stage that waited for the router D/2 and gave up (daemon.c stage_wait_cb)
WAITED = re.compile(r"^(\S+)Z .*: rotation \d+: stage not run: router busy")


def cpu_ticks(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    w = s[s.rindex(")") + 2:].split()
    return int(w[11]) + int(w[12])  # utime, stime (fields 14, 15)


def status_kib(pid):
    out = {}
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def nfds(pid):
    try:
        return len(os.listdir("/proc/%s/fd" % pid))
    except OSError:
        return None


def read_pid(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def counters(lab, site):
    """The masters' counters from qkdlinkctl status --json, with the time the
    answer took (status_s); with many channels the agent may not answer within
    qkdlinkctl's 10 s: then {"error": ..., "status_s": ...}, and the figures
    that need the counters are left out (a finding in itself)."""
    t = time.monotonic()
    rc, out, err = agents.ctl(lab, site, "status", "--json", timeout=120)
    t = time.monotonic() - t
    if rc != 0:
        return {"error": "exit %d after %.1f s: %s" % (rc, t, (err or out).strip()),
                "status_s": round(t, 2)}
    st = json.loads(out)
    m = [c for c in agents.find_channels(st) if c.get("role") == "master"]
    return {"masters": len(m), "status_s": round(t, 2),
            "completed": sum(c.get("rotations_completed") or 0 for c in m),
            "failed": sum(c.get("rotations_failed") or 0 for c in m),
            "skipped": sum(c.get("rotations_skipped") or 0 for c in m),
            "intervals": {c["id"]: c.get("rotation_interval") for c in m},
            "ids": [c["id"] for c in m]}


def masters_from_config(lab, site):
    """The master channels of SITE's configuration (when the agent does not answer)."""
    with open(os.path.join(lab, "site-%s/qkdlinkd.json" % site)) as f:
        cfg = json.load(f)
    ids = [c["id"] for c in cfg["channels"] if c.get("role") == "master"]
    return {"masters": len(ids), "ids": ids,
            "intervals": {c["id"]: c.get("rotation_interval") for c in cfg["channels"]
                          if c.get("role") == "master"}}


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def measure(lab, args):
    o = {"--interval": 60, "--warmup": 60, "--window": 180, "--sample": 10, "--out": None}
    i = 0
    while i + 1 < len(args):
        if args[i] not in o:
            sys.exit("scale.py: unknown option %s" % args[i])
        o[args[i]] = args[i + 1]
        i += 2
    interval, warmup, window = float(o["--interval"]), float(o["--warmup"]), float(o["--window"])
    env = agents.lab_env(lab)
    procs = {"agent_a": env.get("AGENT_PID_a"), "agent_b": env.get("AGENT_PID_b"),
             "kmesim": env.get("KMESIM_PID"),
             "netconfd_a": read_pid(os.path.join(lab, "router-a/run/netconfd.pid")),
             "netconfd_b": read_pid(os.path.join(lab, "router-b/run/netconfd.pid"))}
    time.sleep(warmup)
    t0 = time.time()
    m0 = time.monotonic()
    c0 = {p: cpu_ticks(pid) for p, pid in procs.items()}
    k0 = {s: counters(lab, s) for s in "ab"}
    fd0 = {s: nfds(procs["agent_" + s]) for s in "ab"}
    rss_max = {s: 0 for s in "ab"}
    while True:
        for s in "ab":
            rss_max[s] = max(rss_max[s], status_kib(procs["agent_" + s]).get("VmRSS", 0))
        left = window - (time.monotonic() - m0)
        if left <= 0:
            break
        time.sleep(min(float(o["--sample"]), left))
    wall = time.monotonic() - m0
    t1 = time.time()
    c1 = {p: cpu_ticks(pid) for p, pid in procs.items()}
    k1 = {s: counters(lab, s) for s in "ab"}
    cfgm = {s: masters_from_config(lab, s) for s in "ab"}
    res = {"channels": cfgm["a"]["masters"] + cfgm["b"]["masters"], "interval_s": interval,
           "warmup_s": warmup, "window_s": round(wall, 1), "procs": {}, "agents": {}}
    for p in procs:
        if c0[p] is None or c1[p] is None:
            res["procs"][p] = None
        else:
            res["procs"][p] = round(100.0 * (c1[p] - c0[p]) / TICK / wall, 2)
    all_gaps, late_total = [], 0
    for s in "ab":
        pid = procs["agent_" + s]
        st = status_kib(pid)
        a = {"masters": cfgm[s]["masters"], "status_s": max(k0[s]["status_s"], k1[s]["status_s"]),
             "status_error": k0[s].get("error") or k1[s].get("error"),
             "cpu_pct": res["procs"]["agent_" + s],
             "rss_kib": st.get("VmRSS"), "rss_max_kib": max(rss_max[s], st.get("VmRSS", 0)),
             "hwm_kib": st.get("VmHWM"), "fds_start": fd0[s], "fds_end": nfds(pid),
             "alive": cpu_ticks(pid) is not None}
        for k in ("completed", "failed", "skipped"):
            a[k] = k1[s][k] - k0[s][k] if k in k0[s] and k in k1[s] else None
        # due: scheduled rotations of the masters with a rotation interval
        a["due"] = round(sum(window / (iv or interval) for iv in cfgm[s]["intervals"].values()))
        durs, busy, waited, ok_at = [], 0, 0, {cid: [] for cid in cfgm[s]["ids"]}
        with open(os.path.join(lab, "site-%s/qkdlinkd.log" % s), errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if m:
                    t = ts(m.group(1))
                    if t0 <= t <= t1:
                        if m.group(4) == "OK":
                            durs.append(int(m.group(5)))
                            ok_at.setdefault(int(m.group(2)), []).append(t)
                    continue
                b = BUSY.match(line)
                if b and t0 <= ts(b.group(1)) <= t1:
                    busy += 1
                    if WAITED.match(line):
                        waited += 1
        gaps = {}
        for cid, v in ok_at.items():
            pts = [t0] + sorted(v) + [t1]
            gaps[cid] = max(b - a_ for a_, b in zip(pts, pts[1:]))
        late = sorted(cid for cid, g in gaps.items() if g > 1.1 * interval)
        late_total += len(late)
        all_gaps += list(gaps.values())
        fails_logged = 0
        with open(os.path.join(lab, "site-%s/qkdlinkd.log" % s), errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if m and m.group(4) != "OK" and t0 <= ts(m.group(1)) <= t1:
                    fails_logged += 1
        a.update({"ok_logged": len(durs), "failed_logged": fails_logged, "duration_p50_ms": pct(durs, 50),
                  "duration_p99_ms": pct(durs, 99), "duration_max_ms": max(durs) if durs else None,
                  "router_busy_lines": busy, "stage_wait_timeouts": waited, "late_channels": len(late), "late_ids": late[:20],
                  "max_gap_s": round(max(gaps.values()), 1) if gaps else None})
        res["agents"][s] = a
    res["late_channels"] = late_total
    res["on_time"] = late_total == 0
    res["max_gap_s"] = round(max(all_gaps), 1) if all_gaps else None
    out = json.dumps(res, sort_keys=True)
    if o["--out"]:
        with open(o["--out"], "w") as f:
            f.write(out + "\n")
    print(out)
    return 0


def fmt(v, unit=""):
    return "-" if v is None else "%s%s" % (v, unit)


def cnt(a, b, k, logged):
    """a[k] + b[k] from the status counters, else from the logs."""
    if a.get(k) is not None and b.get(k) is not None:
        return a[k] + b[k]
    return a.get(logged, 0) + b.get(logged, 0)


def worst(*v):
    v = [x for x in v if x is not None]
    return max(v) if v else None


def table(files):
    rows = []
    for p in files:
        with open(p) as f:
            rows.append(json.load(f))
    rows.sort(key=lambda r: r["channels"])
    print("| channels | agent CPU % of a core (A / B) | RSS MiB (A / B), peak | fds (A / B) "
          "| rotations done / due | failed | router busy | duration p50 / p99 ms "
          "| late channels (max gap s) | netconfd CPU % (A / B) | KME sim CPU % | status reply s |")
    print("|---:|---|---|---|---|---:|---:|---|---|---|---:|---:|")
    for r in rows:
        a, b = r["agents"]["a"], r["agents"]["b"]
        mib = lambda k: "%.1f" % (k / 1024.0) if k else "-"  # noqa: E731
        print("| %d | %s / %s | %s / %s, %s / %s | %s / %s | %d / %d | %d | %s | %s / %s | %d (%s) | %s / %s | %s | %s |" % (
            r["channels"], fmt(a["cpu_pct"]), fmt(b["cpu_pct"]), mib(a["rss_kib"]), mib(b["rss_kib"]),
            mib(a["hwm_kib"]), mib(b["hwm_kib"]), fmt(a["fds_end"]), fmt(b["fds_end"]),
            cnt(a, b, "completed", "ok_logged"), a["due"] + b["due"], cnt(a, b, "failed", "failed_logged"),
            "%d (%s vain waits)" % (a["router_busy_lines"] + b["router_busy_lines"],
                                    a["stage_wait_timeouts"] + b["stage_wait_timeouts"]
                                    if "stage_wait_timeouts" in a else "-"),
            fmt(worst(a["duration_p50_ms"], b["duration_p50_ms"])),
            fmt(worst(a["duration_p99_ms"], b["duration_p99_ms"])),
            r["late_channels"], fmt(r["max_gap_s"]), fmt(r["procs"]["netconfd_a"]),
            fmt(r["procs"]["netconfd_b"]), fmt(r["procs"]["kmesim"]),
            fmt(worst(a.get("status_s"), b.get("status_s")))))
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == "table":
        return table(sys.argv[2:])
    if sys.argv[2] == "measure":
        return measure(os.path.abspath(sys.argv[1]), sys.argv[3:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
