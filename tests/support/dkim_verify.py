#!/usr/bin/env python3
"""Verify a message's DKIM signature with dkimpy (independent of the sender's code).

Usage: dkim_verify.py MESSAGE.eml DNS_TXT_RECORD
The public key is served from the given TXT record instead of DNS. Prints "ok" or the
reason, exits 0 only when the signature verifies.
"""
import logging
import sys

import dkim


def main():
    msg = open(sys.argv[1], "rb").read()
    record = sys.argv[2].encode()
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    ok = dkim.verify(msg, logger=logging.getLogger("dkim"), dnsfunc=lambda name, timeout=5: record)
    print("ok" if ok else "fail")
    sys.exit(0 if ok else 1)


main()
