#!/usr/bin/python3
"""A misbehaving NETCONF server, run by the test sshd as the netconf subsystem.

Speaks just enough RFC 6241/6242 to get a client through its hello and then
misbehaves the way real routers can (see docs/netconf.md). The mode is the
first argument, or the content of run/fake-mode beside this script when the
argument is "file" (so one sshd serves every mode). Every RPC received is
appended, by operation name, to run/fake.log.

modes:
  commit-fails   commit answers <rpc-error> (operation-failed); the rest <ok/>
  truncate       edit-config gets half a reply, then the server exits
  noop-commit    every RPC <ok/>, but get-config returns empty data (a router
                 that reports success and commits nothing)
  garbage        edit-config gets a malformed chunk header
  wrong-id       lock gets a reply with another message-id
  silent         lock gets no reply at all (the client's timeout must fire)
  junos-like     a <notification> before every reply, a warning <rpc-error> next to
                 <ok/> for edit-config, an empty <rpc-reply/> for unlock, and a
                 get-config answer in Junos' style: nc: prefix, CKN upper-cased,
                 CAK $9$-encrypted (the push must succeed)
"""
import os
import re
import select
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
mode = sys.argv[1] if len(sys.argv) > 1 else "commit-fails"
if mode == "file":
    with open(os.path.join(HERE, "fake-mode")) as f:
        mode = f.read().strip()
LOG = os.path.join(HERE, "fake.log")
inp = sys.stdin.buffer
out = sys.stdout.buffer
NS = "urn:ietf:params:xml:ns:netconf:base:1.0"

HELLO = ('<?xml version="1.0" encoding="UTF-8"?><hello xmlns="%s"><capabilities>'
         '<capability>urn:ietf:params:netconf:base:1.0</capability>'
         '<capability>urn:ietf:params:netconf:base:1.1</capability>'
         '<capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>'
         '<capability>urn:ietf:params:netconf:capability:confirmed-commit:1.1</capability>'
         '<capability>urn:ietf:params:netconf:capability:validate:1.1</capability>'
         '</capabilities><session-id>77</session-id></hello>' % NS)


def linger(secs):
    """Wait for the client to hang up (or SECS), then exit: never outlive the session."""
    deadline = time.time() + secs
    while time.time() < deadline:
        r, _, _ = select.select([0], [], [], max(0.0, deadline - time.time()))
        if r and not os.read(0, 65536):
            break
    sys.exit(0)


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


buf = b""


def read_eom():
    global buf
    while b"]]>]]>" not in buf:
        d = os.read(0, 65536)
        if not d:
            sys.exit(0)
        buf += d
    msg, buf = buf.split(b"]]>]]>", 1)
    return msg


def read_chunked():
    global buf
    msg = b""
    while True:
        while not re.match(rb"\n#(\d+|#)\n", buf):
            d = os.read(0, 65536)
            if not d:
                sys.exit(0)
            buf += d
        m = re.match(rb"\n#(\d+|#)\n", buf)
        buf = buf[m.end():]
        if m.group(1) == b"#":
            return msg
        n = int(m.group(1))
        while len(buf) < n:
            d = os.read(0, 65536)
            if not d:
                sys.exit(0)
            buf += d
        msg += buf[:n]
        buf = buf[n:]


def send(data, chunked):
    if chunked:
        out.write(b"\n#%d\n%s\n##\n" % (len(data), data))
    else:
        out.write(data + b"]]>]]>")
    out.flush()


def reply(mid, body):
    return ('<rpc-reply xmlns="%s" message-id="%s">%s</rpc-reply>' % (NS, mid, body)).encode()


out.write(HELLO.encode() + b"]]>]]>")
out.flush()
client_hello = read_eom().decode()
chunked = "base:1.1" in client_hello
read = read_chunked if chunked else read_eom
while True:
    msg = read().decode()
    mid = re.search(r'message-id="([^"]*)"', msg)
    mid = mid.group(1) if mid else ""
    op = re.search(r"<(?:\w+:)?rpc\b[^>]*>\s*<(?:\w+:)?([\w-]+)", msg)
    op = op.group(1) if op else "?"
    log(op)
    if op == "close-session":
        send(reply(mid, "<ok/>"), chunked)
        sys.exit(0)
    if mode == "commit-fails" and op == "commit":
        send(reply(mid, "<rpc-error><error-type>application</error-type>"
                        "<error-tag>operation-failed</error-tag>"
                        "<error-severity>error</error-severity>"
                        "<error-message>configuration check-out failed</error-message>"
                        "</rpc-error>"), chunked)
    elif mode == "truncate" and op == "edit-config":
        r = reply(mid, "<ok/>")
        if chunked:
            out.write(b"\n#%d\n%s" % (len(r), r[:len(r) // 2]))
        else:
            out.write(r[:len(r) // 2])
        out.flush()
        sys.exit(0)
    elif mode == "garbage" and op == "edit-config":
        out.write(b"\n#0x10\n<rpc-reply/>")
        out.flush()
        linger(10)
    elif mode == "wrong-id" and op == "lock":
        send(reply(mid + "0", "<ok/>"), chunked)
    elif mode == "silent" and op == "lock":
        linger(30)
    elif mode == "junos-like":
        out_ns = ('<nc:rpc-reply xmlns:nc="%s" message-id="%s">%%s</nc:rpc-reply>' % (NS, mid))
        send(('<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
              '<eventTime>2026-11-23T00:00:00Z</eventTime></notification>').encode(), chunked)
        if op == "edit-config":
            body = ("<nc:rpc-error><nc:error-type>protocol</nc:error-type><nc:error-tag>"
                    "operation-failed</nc:error-tag><nc:error-severity>warning"
                    "</nc:error-severity><nc:error-message>statement has no contents; "
                    "ignored</nc:error-message></nc:rpc-error><nc:ok/>")
        elif op == "unlock":
            body = ""
        elif op == "get-config":
            ca = re.search(r"<name>([^<]*)</name>", msg).group(1)
            body = ("<nc:data><configuration><security><macsec><connectivity-association>"
                    "<name>%s</name><cipher-suite>gcm-aes-xpn-256</cipher-suite>"
                    "<security-mode>static-cak</security-mode><pre-shared-key><ckn>%s</ckn>"
                    "<cak>$9$Zqj.5F/tOBEQFcr</cak></pre-shared-key></connectivity-association>"
                    "</macsec></security></configuration></nc:data>"
                    % (ca, ("0123456789abcdef" * 4).upper()))
        else:
            body = "<nc:ok/>"
        send((out_ns % body).encode(), chunked)
    elif op == "get-config":
        send(reply(mid, "<data/>"), chunked)
    else:
        send(reply(mid, "<ok/>"), chunked)
