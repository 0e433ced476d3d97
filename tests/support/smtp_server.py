#!/usr/bin/env python3
"""Real SMTP server (aiosmtpd 1.4.x) for integration tests.

Prints `READY <port>` on stdout once listening, logs to stderr, serves until
SIGTERM/SIGINT, then exits 0.  Every accepted message is stored verbatim
(DATA bytes as received, CRLF line endings, dot-unstuffed) as
MAILDIR/<nnnnnn>.eml, written atomically, plus one JSON line per message in
MAILDIR/envelopes.jsonl.

Examples:
  smtp_server.py --maildir /tmp/m
  smtp_server.py --maildir /tmp/m --tls-cert leaf.pem --tls-key leaf.key \
      --require-tls --auth-user alice --auth-password secret
  smtp_server.py --maildir /tmp/m --tls-cert leaf.pem --tls-key leaf.key --implicit-tls
  smtp_server.py --maildir /tmp/m --reject bounce=550 --reject later=451
"""
import argparse
import asyncio
import json
import logging
import os
import re
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp_server")

REJECT_TEXT = {"4": "4.3.0 try again later", "5": "5.1.1 mailbox unavailable"}


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
    p.add_argument("--reject", action="append", default=[], metavar="RCPT_SUBSTRING=CODE",
                   help="reply CODE to RCPT TO addresses containing the substring (repeatable)")
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
    return a


class Handler:
    def __init__(self, maildir, rejects, implicit_tls, auth):
        self.auth = auth
        self.maildir = maildir
        self.rejects = rejects
        self.implicit_tls = implicit_tls
        os.makedirs(maildir, exist_ok=True)
        existing = [int(f[:-4]) for f in os.listdir(maildir)
                    if f.endswith(".eml") and f[:-4].isdigit()]
        self.counter = max(existing, default=0)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # required when this hook exists
        if not self.auth:  # don't advertise AUTH when none is configured
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for sub, code in self.rejects:
            if sub in address:
                log.info("rejecting RCPT %s with %s", address, code)
                return f"{code} {REJECT_TEXT[code[0]]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
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
    handler = Handler(a.maildir, a.rejects, a.implicit_tls, auth)
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
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), a.host, a.port,
                                      ssl=ctx if a.implicit_tls else None)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening on %s:%d (starttls=%s require_tls=%s implicit_tls=%s auth=%s)",
             a.host, port, bool(ctx and not a.implicit_tls), kwargs["require_starttls"],
             a.implicit_tls, auth)
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
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
