#!/usr/bin/python3
"""NETCONF integration scenarios for qkdlink's client (issue 4, section 5).

Usage: scenarios.py BUILD DIR_A DIR_B DIR_FAKE
  DIR_A     netconfd, --target=candidate, base:1.0 and 1.1  (tests/fixtures/netconf/server.sh)
  DIR_B     netconfd, base:1.0 only (a second router, side by side)
  DIR_FAKE  sshd running fake_server.py (mode in DIR_FAKE/run/fake-mode)

Our client is build/qkdlink-netconf (the same library the agent uses). Every
outcome is checked with a second, independent client: ncclient (paramiko) under
/usr/bin/python3. Prints TAP lines; exits 1 if any failed.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

from lxml import etree
from ncclient import manager

BUILD, DIR_A, DIR_B, DIR_F = sys.argv[1:5]
TOOL = os.path.join(BUILD, "qkdlink-netconf")
TMP = tempfile.mkdtemp(prefix="qkdncs.")
CKN = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
CAK = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
CAK2 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

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
    env["DIR"] = d
    return env


A, B, F = load_env(DIR_A), load_env(DIR_B), load_env(DIR_F)


def secret_file(name, content, mode=0o600):
    p = os.path.join(TMP, name)
    with open(p, "w") as f:
        f.write(content + "\n")
    os.chmod(p, mode)
    return p


CAK_FILE = secret_file("cak", CAK)
CAK2_FILE = secret_file("cak2", CAK2)


def tool(env, *args, auth="key", known_hosts=None, timeout=60):
    cmd = [TOOL, "-H", "127.0.0.1", "-p", env["NC_PORT"], "-u", env["NC_USER"],
           "-k", known_hosts or env["NC_KNOWN_HOSTS"], "-t", "20000"]
    if auth == "key":
        cmd += ["-i", env["NC_KEY"]]
    elif auth == "password":
        cmd += ["-P", env["NC_PASSWORD_FILE"]]
    elif auth is not None:
        cmd += auth
    cmd += list(args)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        return -1, "", "timed out after %d s" % timeout


def ncc(env):
    """The second client: ncclient over paramiko, key auth."""
    return manager.connect(host="127.0.0.1", port=int(env["NC_PORT"]), username=env["NC_USER"],
                           key_filename=env["NC_KEY"], hostkey_verify=False, look_for_keys=False,
                           allow_agent=False, timeout=20)


def local(el):
    return etree.QName(el).localname


def find(el, *path):
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if isinstance(c.tag, str) and local(c) == name), None)
    return el


def text(el, name):
    c = find(el, name)
    return c.text.strip() if c is not None and c.text else None


def macsec(m, ds="running"):
    data = m.get_config(source=ds).data_ele
    return find(data, "configuration", "security", "macsec")


def ca_of(m, name, ds="running"):
    """{cipher-suite, security-mode, ckn, cak, pre-shared-key-chain} of CA NAME, or None."""
    ms = macsec(m, ds)
    for c in (ms if ms is not None else []):
        if isinstance(c.tag, str) and local(c) == "connectivity-association" and text(c, "name") == name:
            psk = find(c, "pre-shared-key")
            return {"cipher-suite": text(c, "cipher-suite"), "security-mode": text(c, "security-mode"),
                    "ckn": text(psk, "ckn") if psk is not None else None,
                    "cak": text(psk, "cak") if psk is not None else None,
                    "chain": text(c, "pre-shared-key-chain")}
    return None


def binding_of(m, ifname):
    ms = macsec(m)
    for c in (ms if ms is not None else []):
        if isinstance(c.tag, str) and local(c) == "interfaces" and text(c, "name") == ifname:
            return text(c, "connectivity-association")
    return None


def running_ca(env, name):
    with ncc(env) as m:
        return ca_of(m, name)


def canon(m, ds):
    data = m.get_config(source=ds).data_ele
    return etree.tostring(data, method="c14n")


def clean_state(env):
    """No lock held and no uncommitted candidate edits: (True, "") or (False, why)."""
    try:
        with ncc(env) as m:
            try:
                m.lock("candidate")
            except Exception as e:  # lock-denied (held) or resource-denied (edits)
                return False, "candidate cannot be locked: %s" % e
            try:
                m.lock("running")
                m.unlock("running")
            except Exception as e:
                m.unlock("candidate")
                return False, "running cannot be locked: %s" % e
            same = canon(m, "candidate") == canon(m, "running")
            m.unlock("candidate")
            return same, "" if same else "candidate differs from running"
    except Exception as e:
        return False, "second client failed: %r" % e


def check_clean(env, what):
    ok, why = clean_state(env)
    tap(ok, "%s: afterwards no lock held and no candidate edits (checked by ncclient)" % what, why)


def push(env, ca, cak_file=CAK_FILE, *extra, auth="key"):
    return tool(env, *extra, "push", "--ca", ca, "--cipher", "gcm-aes-xpn-256", "--ckn", CKN,
                "--cak-file", cak_file, auth=auth)


# ---- framings and capabilities ----
rc, out, err = tool(A, "caps")
tap(rc == 0 and "framing base:1.1 chunked" in out and "target candidate" in out
    and "capability urn:ietf:params:netconf:capability:confirmed-commit:1.1" in out,
    "caps on a base:1.1 server: chunked framing negotiated, candidate target, capabilities kept",
    out + err)
rc, out, err = tool(A, "--base10", "caps")
tap(rc == 0 and "framing base:1.0 end-of-message" in out,
    "caps with base:1.1 not offered: end-of-message framing", out + err)
rc, out, err = tool(B, "caps")
tap(rc == 0 and "framing base:1.0 end-of-message" in out,
    "caps on a base:1.0-only server (second instance side by side): end-of-message framing",
    out + err)

# ---- pushes, read back by the second client ----
rc, out, err = tool(A, "push", "--ca", "CA1", "--cipher", "gcm-aes-xpn-256", "--ckn", CKN,
                    "--cak-file", CAK_FILE, "--interface", "et-0/0/1")
got = running_ca(A, "CA1") if rc == 0 else None
with ncc(A) as m:
    bound = binding_of(m, "et-0/0/1")
tap(rc == 0 and got == {"cipher-suite": "gcm-aes-xpn-256", "security-mode": "static-cak",
                        "ckn": CKN, "cak": CAK, "chain": None} and bound == "CA1",
    "push (key auth, chunked, no namespace): ncclient reads CA1 ckn/cak/suite and the et-0/0/1 binding",
    "%r %r %s %s" % (got, bound, out, err))
tap(CAK not in out + err, "push output does not contain the CAK")

rc, out, err = tool(A, "--ns", "yang", "-vv", "push", "--ca", "CA1", "--cipher", "gcm-aes-xpn-256",
                    "--ckn", CKN, "--cak-file", CAK2_FILE, auth="password")
got = running_ca(A, "CA1") if rc == 0 else None
tap(rc == 0 and got is not None and got["cak"] == CAK2,
    "push (password auth, Juniper YANG namespaces): ncclient reads the new CAK", "%r %s" % (got, err))
tap("<cak><redacted></cak>" in err and CAK2 not in err and "nc:configuration" not in err,
    "debug log of the XML exchanged: cak redacted, <configuration> not in the NETCONF namespace",
    err[-2000:])

rc, out, err = tool(A, "--base10", "push", "--ca", "CA10", "--cipher", "gcm-aes-xpn-256", "--ckn",
                    CKN, "--cak-file", CAK_FILE)
tap(rc == 0 and (running_ca(A, "CA10") or {}).get("ckn") == CKN,
    "push over end-of-message framing: ncclient reads it back", out + err)

rc, out, err = tool(B, "push", "--ca", "CA-B", "--cipher", "gcm-aes-xpn-256", "--ckn", CKN,
                    "--cak-file", CAK_FILE)
tap(rc == 0 and (running_ca(B, "CA-B") or {}).get("cak") == CAK and running_ca(A, "CA-B") is None,
    "push to the second router (base:1.0 only) lands there and not on the first", out + err)

rc, out, err = tool(A, "push-keychain", "--ca", "CA-KC", "--cipher", "gcm-aes-256", "--chain", "KC1",
                    "--key-number", "5", "--ckn", "ab01", "--cak-file", CAK_FILE,
                    "--start-time", "2026-11-23.14:05")
ok = False
with ncc(A) as m:
    cfg = find(m.get_config(source="running").data_ele, "configuration", "security")
    kc = find(cfg, "authentication-key-chains", "key-chain")
    key = find(kc, "key")
    ok = (rc == 0 and text(kc, "name") == "KC1" and text(key, "name") == "5"
          and text(key, "key-name") == "ab01" and text(key, "secret") == CAK
          and text(key, "start-time") == "2026-11-23.14:05"
          and (ca_of(m, "CA-KC") or {}).get("chain") == "KC1")
tap(ok, "push-keychain: key-chain KC1 key 5 (key-name, secret, start-time) and the CA's "
    "pre-shared-key-chain read back by ncclient", out + err)

rc, out, err = tool(A, "push", "--ca", "CA-KC", "--cipher", "gcm-aes-256", "--ckn", "ab02",
                    "--cak-file", CAK_FILE)
merged = running_ca(A, "CA-KC") or {}
rc2, out2, err2 = tool(A, "--replace", "push", "--ca", "CA-KC", "--cipher", "gcm-aes-256", "--ckn",
                       "ab03", "--cak-file", CAK_FILE)
with ncc(A) as m:
    replaced = ca_of(m, "CA-KC") or {}
    chain_kept = find(m.get_config(source="running").data_ele, "configuration", "security",
                      "authentication-key-chains", "key-chain") is not None
    others_kept = ca_of(m, "CA1") is not None
tap(rc == 0 and merged.get("chain") == "KC1" and merged.get("ckn") == "ab02" and rc2 == 0
    and replaced.get("chain") is None and replaced.get("ckn") == "ab03" and chain_kept and others_kept,
    "push merges into a CA (its key chain kept); --replace replaces that CA entry only "
    "(chain reference gone, key-chain and other CAs untouched)", "%r %r %s" % (merged, replaced, err + err2))

# ---- what the server holds validates against the fixture YANG (Juniper's namespaces) ----
YANG = [os.path.join("tests/fixtures/netconf/yang", f) for f in
        ("junos-conf-root-subset.yang", "junos-conf-security-subset.yang")]
with ncc(A) as m:
    conf = find(m.get_config(source="running").data_ele, "configuration")
xml = etree.tostring(conf)
good, bad = os.path.join(TMP, "running.xml"), os.path.join(TMP, "running-bad.xml")
open(good, "wb").write(xml)
open(bad, "wb").write(xml.replace(b">gcm-aes-xpn-256<", b">gcm-aes-999<", 1))
y1 = subprocess.run(["yanglint", "-t", "config"] + YANG + [good], capture_output=True, text=True)
y2 = subprocess.run(["yanglint", "-t", "config"] + YANG + [bad], capture_output=True, text=True)
tap(y1.returncode == 0 and y2.returncode != 0,
    "running configuration (namespaced by the server) validates with yanglint against the "
    "fixture modules; a bad enum does not", y1.stderr + y2.stderr)

# ---- client-side validation: nothing sent ----
rc, out, err = tool({"NC_PORT": "1", "NC_USER": "x", "NC_KNOWN_HOSTS": "/nonexistent",
                     "NC_KEY": A["NC_KEY"]}, "push", "--ca", "CA1", "--ckn", "abc", "--cak-file",
                    CAK_FILE)
tap(rc == 1 and "ckn: 3 hex characters" in err,
    "odd-length CKN refused before connecting (no server on port 1 is ever tried)", err)
rc, out, err = tool({"NC_PORT": "1", "NC_USER": "x", "NC_KNOWN_HOSTS": "/nonexistent",
                     "NC_KEY": A["NC_KEY"]}, "push", "--ca", "CA1", "--cipher", "gcm-aes-128",
                    "--ckn", "abcd", "--cak-file", CAK_FILE)
tap(rc == 1 and "gcm-aes-128 needs 32" in err and CAK not in err,
    "CAK length checked against the cipher suite, key not echoed", err)
loose = secret_file("cak-loose", CAK, 0o644)
rc, out, err = tool(A, "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", loose)
tap(rc == 1 and "0600" in err, "CAK file readable by others refused", err)

# ---- lock held by another session (with its own uncommitted edit) ----
with ncc(A) as m:
    m.lock("candidate")
    m.edit_config(target="candidate", config="<config><configuration><security><macsec>"
                  "<connectivity-association><name>THEIRS</name></connectivity-association>"
                  "</macsec></security></configuration></config>")
    rc, out, err = push(A, "CA-LOCK")
    tap(rc == 1 and "lock candidate denied: held by session %s" % m.session_id in err
        and "tag=lock-denied" in err and "session-id=%s" % m.session_id in err,
        "lock held by another session: refused, holder's session-id %s reported" % m.session_id, err)
    tap(ca_of(m, "THEIRS", "candidate") is not None,
        "the other session's uncommitted edit survives (our cleanup touches only our own changes)")
    m.discard_changes()
    m.unlock("candidate")
tap(running_ca(A, "CA-LOCK") is None, "lock denied: nothing committed")
check_clean(A, "lock denied")

# ---- edit while another session holds the lock, via the low-level edit path ----
with ncc(A) as m:
    m.lock("candidate")
    cfgfile = os.path.join(TMP, "edit.xml")
    with open(cfgfile, "w") as f:
        f.write("<configuration><security><macsec><connectivity-association><name>CA-EDIT</name>"
                "</connectivity-association></macsec></security></configuration>")
    rc, out, err = tool(A, "edit", cfgfile)
    tap(rc == 1 and "held by session %s" % m.session_id in err and ca_of(m, "CA-EDIT", "candidate") is None,
        "edit while another session holds the lock: no edit reaches the candidate", err)
    m.unlock("candidate")
check_clean(A, "edit under a foreign lock")

# ---- commit failure (running locked by another session: commit gets in-use) ----
with ncc(A) as m:
    m.lock("running")
    rc, out, err = push(A, "CA-CF")
    tap(rc == 1 and "commit failed" in err and "tag=in-use" in err
        and "cleanup: discarded the candidate changes and released the candidate lock" in err,
        "commit failure: error reported, candidate discarded and lock released (said so)", err)
    m.unlock("running")
tap(running_ca(A, "CA-CF") is None, "commit failure: nothing committed")
check_clean(A, "commit failure")

# ---- invalid value: the error path is reported ----
bad = os.path.join(TMP, "bad.xml")
with open(bad, "w") as f:
    f.write("<configuration><security><macsec><connectivity-association><name>BAD1</name>"
            "<cipher-suite>gcm-aes-999</cipher-suite></connectivity-association></macsec>"
            "</security></configuration>")
rc, out, err = tool(A, "edit", bad)
tap(rc == 1 and "tag=invalid-value" in err and re.search(r"path=\S*connectivity-association\S*cipher-suite", err)
    and "bad-value=gcm-aes-999" in err and "released the candidate lock" in err,
    "invalid value: rpc-error with tag, error-path and bad-value reported; cleanup done", err)
check_clean(A, "invalid value")

# ---- confirmed commits (one pending at a time: a pending one blocks every lock) ----
def wait_absent(env, name, secs):
    deadline = time.time() + secs
    # netconfd runs its confirmed-commit timer only when it has been idle for
    # about a second: poll slower than that or the rollback never comes
    while time.time() < deadline and running_ca(env, name) is not None:
        time.sleep(1.5)
    return running_ca(env, name) is None


rc, _, err = push(A, "CA-CS", CAK_FILE, "--confirm-timeout", "120")          # no persist
tap(rc == 0 and wait_absent(A, "CA-CS", 10),
    "confirmed commit not confirmed, its session closed: rolled back (RFC 6241 8.4)", err)
rc1, _, err1 = push(A, "CA-CX", CAK_FILE, "--confirm-timeout", "120", "--persist", "tok-x")
present = running_ca(A, "CA-CX") is not None
rc3, _, err3 = push(A, "CA-CY")
tap(rc3 == 1 and "outstanding-confirmed-commit" in err3 and running_ca(A, "CA-CY") is None,
    "push while another confirmed commit is pending: lock refused and reported", err3)
rc2, _, err2 = tool(A, "--persist", "tok-x", "cancel")
tap(rc1 == 0 and present and rc2 == 0 and running_ca(A, "CA-CX") is None,
    "cancel-commit with its persist-id from another session: change gone at once", err1 + err2)
t_cp = time.time()
rc1, _, err1 = push(A, "CA-CP", CAK_FILE, "--confirm-timeout", "3", "--persist", "tok-p")
rc2, _, err2 = tool(A, "--persist", "tok-p", "confirm")
rc3, _, err3 = push(A, "CA-CT", CAK_FILE, "--confirm-timeout", "2", "--persist", "tok-t")
tap(rc3 == 0 and running_ca(A, "CA-CT") is not None,
    "confirmed commit with persist: in running before its timeout", err3)
tap(wait_absent(A, "CA-CT", 30), "confirmed commit not confirmed: rolled back after its timeout")
while time.time() < t_cp + 4:  # past CA-CP's own timeout
    time.sleep(0.2)
tap(rc1 == 0 and rc2 == 0 and (running_ca(A, "CA-CP") or {}).get("ckn") == CKN,
    "confirmed commit confirmed with its persist-id from another session: kept past its timeout",
    err1 + err2)
check_clean(A, "confirmed commits")

# ---- host keys ----
empty = os.path.join(TMP, "kh-empty")
open(empty, "w").close()
rc, out, err = tool(A, "caps", known_hosts=empty)
tap(rc == 1 and "host key unknown" in err and "is not in" in err and os.path.getsize(empty) == 0,
    "unknown host key refused by default, known_hosts untouched", err)
changed = os.path.join(TMP, "kh-changed")
with open(B["NC_HOST_PUB"]) as f:
    other = f.read().split()[:2]
with open(changed, "w") as f:
    f.write("[127.0.0.1]:%s %s %s\n" % (A["NC_PORT"], other[0], other[1]))
rc, out, err = tool(A, "caps", known_hosts=changed)
tap(rc == 1 and "host key changed" in err and "CHANGED" in err, "changed host key refused", err)
rc, out, err = tool(A, "--tofu", "caps", known_hosts=changed)
tap(rc == 1 and "CHANGED" in err, "changed host key refused even with trust-on-first-use", err)
tofu = os.path.join(TMP, "kh-tofu")
with open(tofu, "w") as f:
    f.write("# operator's comment, no newline at the end")
rc1, _, err1 = tool(A, "--tofu", "caps", known_hosts=tofu)
with open(A["NC_HOST_PUB"]) as f:
    mine = f.read().split()[1]
recorded = os.path.exists(tofu) and mine in open(tofu).read()
rc2, _, err2 = tool(A, "caps", known_hosts=tofu)
kept = open(tofu).read().startswith("# operator's comment, no newline at the end\n[127.0.0.1]:")
tap(rc1 == 0 and recorded and rc2 == 0 and kept,
    "trust-on-first-use appends the key (the file's other lines kept); the next strict "
    "connection accepts it", err1 + err2 + open(tofu).read())

# ---- authentication ----
wrongpw = secret_file("wrong-pw", "not-the-password")
rc, out, err = tool(A, "caps", auth=["-P", wrongpw])
tap(rc == 1 and "password refused" in err, "wrong password refused", err)
loosepw = secret_file("loose-pw", "x", 0o644)
rc, out, err = tool(A, "caps", auth=["-P", loosepw])
tap(rc == 1 and "chmod 600" in err, "password file readable by others refused", err)
k = os.path.join(TMP, "other_ed25519")
subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
rc, out, err = tool(A, "caps", auth=["-i", k])
tap(rc == 1 and "refused" in err, "unknown ed25519 key refused", err)
os.chmod(k, 0o644)
rc, out, err = tool(A, "caps", auth=["-i", k])
tap(rc == 1 and "chmod 600" in err, "key file readable by others refused", err)
rsa = os.path.join(TMP, "rsa_key")
subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa], check=True)
ak = os.path.join(A["DIR"], "home", ".ssh", "authorized_keys")
with open(ak, "a") as f, open(rsa + ".pub") as p:
    f.write(p.read())
rc, out, err = tool(A, "caps", auth=["-i", rsa])
tap(rc == 1 and "RSA key" in err and "libssh2 1.10" in err,
    "RSA key (authorized, but sshd refuses ssh-rsa SHA-1): the error says why", err)

# ---- misbehaving servers (fake) ----
def fake(mode, *args, timeout=60):
    with open(os.path.join(DIR_F, "run", "fake-mode"), "w") as f:
        f.write(mode + "\n")
    open(os.path.join(DIR_F, "run", "fake.log"), "w").close()
    r = tool(F, *args, timeout=timeout)
    with open(os.path.join(DIR_F, "run", "fake.log")) as f:
        return r + (f.read().split(),)


rc, out, err, ops = fake("commit-fails", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and "configuration check-out failed" in err
    and ops == ["lock", "edit-config", "commit", "discard-changes", "unlock", "close-session"],
    "commit refused by the server: discard-changes and unlock sent, in that order", "%s %s" % (ops, err))
rc, out, err, ops = fake("commit-fails", "--base10", "push", "--ca", "CA1", "--ckn", CKN,
                         "--cak-file", CAK_FILE)
tap(rc == 1 and ops[-3:] == ["discard-changes", "unlock", "close-session"],
    "the same over end-of-message framing", "%s %s" % (ops, err))
rc, out, err, ops = fake("truncate", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and "closed the session in the middle of a message" in err and "session dropped" in err,
    "server closes mid-reply: reported, session dropped (the server then frees lock and edits)", err)
rc, out, err, ops = fake("noop-commit", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and "read-back" in err and "not in the running configuration" in err,
    "commit reported ok but nothing committed: the read-back catches it", err)
rc, out, err, ops = fake("garbage", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and "chunked framing" in err, "malformed chunk header: protocol error, no hang", err)
rc, out, err, ops = fake("wrong-id", "caps")
tap(rc == 0, "a session without RPCs does not trip on a later bad reply", err)
rc, out, err, ops = fake("wrong-id", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and 'message-id "10", expected 1' in err, "reply with the wrong message-id refused", err)
rc, out, err, ops = fake("silent", "-t", "1000", "push", "--ca", "CA1", "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 1 and "timeout" in err, "server that never answers: the RPC deadline fires", err)

# sessions dropped after a timeout are freed: the worker under ASan, LeakSanitizer on
with open(os.path.join(DIR_F, "run", "fake-mode"), "w") as f:
    f.write("silent\n")
san_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23")
r = subprocess.run([os.path.join(BUILD, "san", "nc-worker-check"), "drops", "3", "127.0.0.1",
                    F["NC_PORT"], F["NC_USER"], F["NC_KNOWN_HOSTS"], F["NC_KEY"]],
                   capture_output=True, text=True, timeout=120, env=san_env)
tap(r.returncode == 0 and "ok 1 " in r.stdout and "LeakSanitizer" not in r.stderr,
    "worker under ASan: 3 sessions dropped on RPC timeouts, all freed (no leak at exit)",
    "rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr[-3000:]))

rc, out, err, ops = fake("junos-like", "-v", "push", "--ca", "CA1", "--cipher", "gcm-aes-xpn-256",
                         "--ckn", CKN, "--cak-file", CAK_FILE)
tap(rc == 0 and ops == ["lock", "edit-config", "commit", "unlock", "get-config", "close-session"]
    and "without <ok/>" in err,
    "Junos-like server (notifications between replies, warning next to <ok/>, empty reply, "
    "nc: prefixes, CKN upper-cased, CAK $9$-encrypted): push succeeds", "%s %s" % (ops, err))

# ---- the agent's model: the session on its worker thread ----
r = subprocess.run([os.path.join(BUILD, "nc-worker-check"), "127.0.0.1", A["NC_PORT"], A["NC_USER"],
                    A["NC_KNOWN_HOSTS"], A["NC_KEY"], "CA-W", CAK2], capture_output=True, text=True,
                   timeout=120)
for line in r.stdout.splitlines():
    mm = re.match(r"(ok|not ok) \d+ - (.*)", line)
    if mm:
        tap(mm.group(1) == "ok", mm.group(2), r.stdout + r.stderr)
tap(r.returncode == 0 and (running_ca(A, "CA-W") or {}).get("cak") == CAK2,
    "worker: ncclient reads the CAK the worker pushed", r.stdout + r.stderr)

# ---- final state of both routers ----
check_clean(A, "whole run, router A")
check_clean(B, "whole run, router B")

subprocess.run(["rm", "-rf", TMP])
print("1..%d" % n)
sys.exit(1 if failures else 0)
