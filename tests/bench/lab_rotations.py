#!/usr/bin/python3
"""lab_rotations.py LAB N: N rotations of channel 7 back to back in a running
two-site lab (tests/bench/lab_rotations.sh starts it), then p50/p99 of each
measure. Run inside the lab's namespace. Not a test: it prints figures.

Per rotation, from the master's `qkdlinkctl status --json` (last_rotation,
docs/protocol.md 10.7): duration (enc_keys request to the last router's
confirmed commit), skew, confirm skew, diverged, and the breakdown of the
master's critical path: kme (enc_keys), stage (own confirmed commit), ack
(ANNOUNCE to the slave's ACK OK: two frames, the slave's dec_keys and stage),
confirm (own confirm). agent_busy_us of both agents (the loop's time in the
channel's events and actions), read before and after each rotation, gives the
agent's own share; "wall" is the time from `qkdlinkctl rotate` to both agents
idle on the new key as the benchmark sees it (polling every 2 ms).
"""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import agents  # noqa: E402


def pct(v, p):
    """nearest-rank percentile"""
    s = sorted(v)
    if not s:
        return None
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def main():
    lab, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
    ch = 7
    k, _, why = agents.wait_settled(lab, ch, 40, started=True)
    if why:
        sys.exit("channel 7 did not settle: %s" % why)
    ctl = [os.path.join(agents.lab_env(lab)["LAB_BUILD"], "qkdlinkctl"), "-s",
           os.path.join(lab, "site-a", "qkdlinkd.sock"), "rotate", str(ch)]
    rows, failed = [], 0
    for i in range(n):
        a0 = agents.quick_status(lab, "a")
        t0 = time.monotonic()
        last0 = a0[ch]["last"]["rotation"]
        r = subprocess.run(ctl, capture_output=True, text=True)
        if r.returncode != 0:
            failed += 1
            print("rotation %d: rotate refused: %s" % (i + 1, r.stderr.strip()))
            time.sleep(1)
            continue
        deadline = t0 + 40
        while time.monotonic() < deadline:
            a, b = agents.quick_status(lab, "a"), agents.quick_status(lab, "b")
            if a and b and a[ch]["last"]["rotation"] != last0 and agents.idle(a[ch]) and agents.idle(b[ch]) \
                    and a[ch]["current_key_id"] == b[ch]["current_key_id"]:
                break
            time.sleep(0.002)
        else:
            failed += 1
            print("rotation %d: not done within 40 s" % (i + 1))
            continue
        wall = (time.monotonic() - t0) * 1000
        time.sleep(0.05)  # the slave's last actions after its confirm
        a, b = agents.quick_status(lab, "a"), agents.quick_status(lab, "b")
        lr = a[ch]["last"]
        raw = agents.status(lab, "a")[0]
        rawc = [c for c in raw["channels"] if c["id"] == ch][0]["last_rotation"]
        if not rawc.get("ok"):
            failed += 1
            print("rotation %d: %s" % (i + 1, rawc.get("result")))
            continue
        def bus(site, field="agent_busy_us"):
            return agents.get([c for c in agents.status(lab, site)[0]["channels"] if c["id"] == ch][0], field)
        rows.append({
            "duration": lr["duration_ms"], "skew": lr["skew_ms"], "confirm skew": lr["confirm_skew_ms"],
            "diverged": lr["diverged_ms"], "kme (enc_keys)": rawc.get("kme_ms"),
            "own stage": rawc.get("stage_ms"), "ack (frames + slave)": rawc.get("ack_ms"),
            "own confirm": rawc.get("confirm_ms"),
            "_a_busy": bus("a"), "_b_busy": bus("b"), "wall (bench)": wall,
            "_a_persist": bus("a", "agent_persist_us"), "_b_persist": bus("b", "agent_persist_us"),
        })
        if i:
            prev = rows[-2] if len(rows) > 1 else None
            if prev:
                rows[-1]["agent A (ms)"] = (rows[-1]["_a_busy"] - prev["_a_busy"]) / 1000.0
                rows[-1]["agent B (ms)"] = (rows[-1]["_b_busy"] - prev["_b_busy"]) / 1000.0
                for x in "ab":
                    p = (rows[-1]["_%s_persist" % x] - prev["_%s_persist" % x]) / 1000.0
                    rows[-1]["..%s state fsyncs" % x.upper()] = p
                    rows[-1]["..%s the rest" % x.upper()] = rows[-1]["agent %s (ms)" % x.upper()] - p
    print("rotations: %d done, %d failed" % (len(rows), failed))
    keys = ["duration", "kme (enc_keys)", "own stage", "ack (frames + slave)", "own confirm", "skew",
            "confirm skew", "diverged", "agent A (ms)", "..A state fsyncs", "..A the rest",
            "agent B (ms)", "..B state fsyncs", "..B the rest", "wall (bench)"]
    print("%-22s %8s %8s %8s %8s" % ("measure (ms)", "p50", "p99", "min", "max"))
    for key in keys:
        v = [r[key] for r in rows if r.get(key) is not None]
        if not v:
            print("%-22s %8s" % (key, "-"))
            continue
        f = (lambda x: "%.2f" % x) if isinstance(v[0], float) else str
        print("%-22s %8s %8s %8s %8s" % (key, f(pct(v, 50)), f(pct(v, 99)), f(min(v)), f(max(v))))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
