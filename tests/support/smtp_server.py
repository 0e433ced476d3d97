#!/usr/bin/env python3
"""Real SMTP server (aiosmtpd 1.4.x) for integration tests.

Prints `READY <port>` on stdout once listening, logs to stderr, serves until
SIGTERM/SIGINT, then exits 0.  Every accepted message is stored verbatim
(DATA bytes as received, CRLF line endings, dot-unstuffed) as
MAILDIR/<nnnnnn>.eml, written atomically, plus one JSON line per message in
MAILDIR/envelopes.jsonl.  A message is stored exactly when it is accepted: if
the server does not reply 250 to DATA (fault, reject), nothing is stored.

Fault injection (for client retry/crash tests); SUBSTR matches RCPT TO:
  --fault SUBSTR=451once      first RCPT of each matching address gets
                              451 4.3.0; later attempts are accepted
  --fault SUBSTR=421once      likewise 421 4.3.2, then the connection is closed
  --fault SUBSTR=550          every RCPT gets 550 5.1.1 (like --reject SUBSTR=550)
  --fault SUBSTR=dropdata-once  first time a message for the address ends DATA,
                              close the connection without reply, store nothing
  --fault SUBSTR=stall-once   likewise, but first stay silent --stall-seconds
                              (default 5) and then close; store nothing
  "First time" is per full address and per kind, in memory for the server's
  lifetime, shared by all connections.  Each fault that fires appends
  {"addr": ..., "kind": ...} to MAILDIR/events.jsonl (flushed at once).
  --refuse-for SECONDS  bind (port is reserved and printed in READY) but do not
                        listen for SECONDS: connects get ECONNREFUSED meanwhile.
  --pipelining          offer PIPELINING (RFC 2920) in the EHLO reply.  With or
                        without it, a MAIL FROM whose RCPT TO arrived with it
                        (the client pipelined) appends {"addr": SENDER,
                        "kind": "pipelined"} to MAILDIR/events.jsonl, and a
                        message whose end of data came with the next MAIL FROM
                        appends {"addr": SENDER, "kind": "next-with-data"}.
  --delay-ms N          slow sink: after storing an accepted message, wait N ms
                        (other connections proceed) before replying 250.  Like
                        a real MTA, the message is committed BEFORE the reply,
                        so a client killed during the delay has a message that
                        was stored but never acknowledged (a resend duplicates).

Examples:
  smtp_server.py --maildir DIR
  smtp_server.py --maildir DIR --tls-cert leaf.pem --tls-key leaf.key \
      --require-tls --auth-user alice --auth-password secret
  smtp_server.py --maildir DIR --tls-cert leaf.pem --tls-key leaf.key --implicit-tls
  smtp_server.py --maildir DIR --tls-cert leaf.pem --tls-key leaf.key --require-tls \
      --auth-user alice --auth-password secret --auth-exclude PLAIN    (AUTH LOGIN only)
  smtp_server.py --maildir DIR --reject bounce=550 --reject later=451
  smtp_server.py --maildir DIR --fault flaky=451once --fault crash=dropdata-once \
      --refuse-for 2 --delay-ms 200
"""
import argparse
import asyncio
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp_server")

REJECT_TEXT = {"4": "4.3.0 try again later", "5": "5.1.1 mailbox unavailable"}
RCPT_FAULTS = {"451once": "451 4.3.0 try again later",
               "421once": "421 4.3.2 service not available, closing",
               "550": "550 5.1.1 mailbox unavailable"}
DATA_FAULTS = ("dropdata-once", "stall-once")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--maildir", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-tls", action="store_true",
                   help="require STARTTLS before MAIL (needs --tls-cert/--tls-key)")
    p.add_argument("--implicit-tls", action="store_true",
                   help="SMTPS: TLS from the first byte instead of STARTTLS")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--auth-exclude", action="append", default=[], metavar="MECHANISM",
                   help="do not offer this AUTH mechanism (PLAIN, LOGIN; repeatable)")
    p.add_argument("--reject", action="append", default=[], metavar="RCPT_SUBSTRING=CODE",
                   help="reply CODE to RCPT TO addresses containing the substring (repeatable)")
    p.add_argument("--fault", action="append", default=[], metavar="RCPT_SUBSTRING=KIND",
                   help="inject a fault, KIND in " + ", ".join([*RCPT_FAULTS, *DATA_FAULTS]))
    p.add_argument("--stall-seconds", type=float, default=5.0,
                   help="silence before closing for stall-once (default 5)")
    p.add_argument("--refuse-for", type=float, default=0.0, metavar="SECONDS",
                   help="after READY, refuse connections for SECONDS")
    p.add_argument("--pipelining", action="store_true",
                   help="offer PIPELINING in the EHLO reply")
    p.add_argument("--delay-ms", type=int, default=0, metavar="N",
                   help="wait N ms after storing a message before replying 250")
    a = p.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key must be given together")
    if (a.require_tls or a.implicit_tls) and not a.tls_cert:
        p.error("--require-tls/--implicit-tls need --tls-cert and --tls-key")
    if (a.auth_user is None) != (a.auth_password is None):
        p.error("--auth-user and --auth-password must be given together")
    rejects = []
    for spec in a.reject:
        sub, sep, code = spec.rpartition("=")
        if not sep or not sub or not re.fullmatch(r"[45]\d\d", code):
            p.error(f"bad --reject {spec!r}, expected SUBSTRING=4xx|5xx")
        rejects.append((sub, code))
    a.rejects = rejects
    faults = []
    for spec in a.fault:
        sub, sep, kind = spec.rpartition("=")
        if not sep or not sub or (kind not in RCPT_FAULTS and kind not in DATA_FAULTS):
            p.error(f"bad --fault {spec!r}, expected SUBSTRING=KIND")
        faults.append((sub, kind))
    a.faults = faults
    if a.refuse_for < 0 or a.delay_ms < 0 or a.stall_seconds < 0:
        p.error("--refuse-for/--delay-ms/--stall-seconds must be >= 0")
    return a


async def hang_up(server, reply=None):
    """Optionally send `reply`, then close the connection.  Never returns
    normally: connection_lost() cancels the session task, so aiosmtpd neither
    replies further nor runs the rest of the calling hook."""
    if reply:
        await server.push(reply)
    server.transport.close()
    await asyncio.Event().wait()  # cancelled by SMTP.connection_lost()


class Handler:
    def __init__(self, maildir, rejects, implicit_tls, auth,
                 faults=(), stall_seconds=5.0, delay_ms=0, pipelining=False):
        self.pipelining = pipelining
        self.faults = faults
        self.stall_seconds = stall_seconds
        self.delay_ms = delay_ms
        self.fired = set()  # (kind, address) of *once faults already used
        self.auth = auth
        self.maildir = maildir
        self.rejects = rejects
        self.implicit_tls = implicit_tls
        os.makedirs(maildir, exist_ok=True)
        existing = [int(f[:-4]) for f in os.listdir(maildir)
                    if f.endswith(".eml") and f[:-4].isdigit()]
        self.counter = max(existing, default=0)

    def fire(self, kind, address):
        """Record a fault; for *once kinds return False if already used."""
        if kind.endswith("once"):
            if (kind, address) in self.fired:
                return False
            self.fired.add((kind, address))
        log.info("fault %s for %s", kind, address)
        with open(os.path.join(self.maildir, "events.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"addr": address, "kind": kind}) + "\n")
            f.flush()
        return True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # required when this hook exists
        if not self.auth:  # don't advertise AUTH when none is configured
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # aiosmtpd reads a command at a time: what the client sent with this one (pipelined)
        # is still in the reader's buffer.
        pending = bytes(getattr(server._reader, "_buffer", b""))
        if b"RCPT TO" in pending.upper():
            self.fire("pipelined", address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for sub, code in self.rejects:
            if sub in address:
                log.info("rejecting RCPT %s with %s", address, code)
                return f"{code} {REJECT_TEXT[code[0]]}"
        for sub, kind in self.faults:
            if kind in RCPT_FAULTS and sub in address and self.fire(kind, address):
                if kind == "421once":
                    await hang_up(server, RCPT_FAULTS[kind])
                return RCPT_FAULTS[kind]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # The next transaction's commands, sent with the end of this message (RFC 2920 lets
        # the message start a group), wait in the reader's buffer.
        pending = bytes(getattr(server._reader, "_buffer", b""))
        if b"MAIL FROM" in pending.upper():
            self.fire("next-with-data", envelope.mail_from)
        # Consume every matching *once fault of every recipient.
        fired = {kind for sub, kind in self.faults if kind in DATA_FAULTS
                 for rcpt in envelope.rcpt_tos
                 if sub in rcpt and self.fire(kind, rcpt)}
        if "stall-once" in fired:
            await asyncio.sleep(self.stall_seconds)
        if fired:
            await hang_up(server)
        self.counter += 1
        name = f"{self.counter:06d}.eml"
        tmp = os.path.join(self.maildir, f".tmp-{self.counter:06d}")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.maildir, name))
        tls = self.implicit_tls or session.ssl is not None
        auth = session.auth_data
        auth_user = None
        if isinstance(auth, LoginPassword):
            auth_user = auth.login.decode("utf-8", "replace")
        rec = {"file": name, "mail_from": envelope.mail_from,
               "rcpt_tos": list(envelope.rcpt_tos), "tls": tls, "auth_user": auth_user}
        with open(os.path.join(self.maildir, "envelopes.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        log.info("stored %s from=%s to=%s tls=%s auth=%s", name, envelope.mail_from,
                 envelope.rcpt_tos, tls, auth_user)
        if self.delay_ms:  # committed above; the 250 comes late (see docstring)
            await asyncio.sleep(self.delay_ms / 1000)
        return "250 2.0.0 OK: queued as " + name


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        log.info("AUTH %s user=%r -> %s", mechanism,
                 getattr(auth_data, "login", None), "ok" if ok else "FAIL")
        # handled=False + success=False -> aiosmtpd replies 535 5.7.8
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticator


async def main():
    a = parse_args()
    ctx = None
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    auth = a.auth_user is not None
    handler = Handler(a.maildir, a.rejects, a.implicit_tls, auth,
                      a.faults, a.stall_seconds, a.delay_ms, a.pipelining)
    kwargs = dict(
        data_size_limit=10 * 1024 * 1024,
        enable_SMTPUTF8=True,
        decode_data=False,
        hostname="localhost",
        # STARTTLS context only; with implicit TLS the socket is already TLS.
        tls_context=None if a.implicit_tls else ctx,
        require_starttls=bool(a.require_tls and not a.implicit_tls),
        auth_required=auth,
        # aiosmtpd only counts STARTTLS as "TLS" for auth_require_tls; under
        # implicit TLS it would refuse AUTH (538), so disable it there.
        auth_require_tls=bool(ctx is not None and not a.implicit_tls),
        authenticator=make_authenticator(a.auth_user, a.auth_password) if auth else None,
        auth_exclude_mechanism=a.auth_exclude or None,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    factory = lambda: SMTP(handler, **kwargs)  # noqa: E731
    server_ssl = ctx if a.implicit_tls else None
    def ready(port):
        sys.stdout.write(f"READY {port}\n")
        sys.stdout.flush()

    if a.refuse_for > 0:
        # Bound but not listening: the port stays ours (nobody can steal it)
        # while the kernel answers connects with RST, i.e. ECONNREFUSED.
        family, _, _, _, addr = socket.getaddrinfo(a.host, a.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        port = sock.getsockname()[1]
        log.info("bound %s:%d, refusing connections for %.3fs", a.host, port, a.refuse_for)
        ready(port)
        try:
            await asyncio.wait_for(stop.wait(), a.refuse_for)
            sock.close()
            return
        except asyncio.TimeoutError:
            pass
        server = await loop.create_server(factory, sock=sock, ssl=server_ssl)  # listen()s
    else:
        server = await loop.create_server(factory, a.host, a.port, ssl=server_ssl)
        port = server.sockets[0].getsockname()[1]
    log.info("listening on %s:%d (starttls=%s require_tls=%s implicit_tls=%s auth=%s)",
             a.host, port, bool(ctx and not a.implicit_tls), kwargs["require_starttls"],
             a.implicit_tls, auth)
    if a.refuse_for <= 0:
        ready(port)
    await stop.wait()
    log.info("shutting down")
    server.close()
    try:  # Python >= 3.12 waits for open client connections here
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS
    asyncio.run(main())
    sys.exit(0)
