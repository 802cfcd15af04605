#!/usr/bin/python3
"""Re-verifies a Ferry audit export (JSON lines on stdin) without Ferry's code.

The same recipe is printed in docs/audit.md. An unfiltered export is one
contiguous stretch of the chain: each line's prev_hash must be the previous
line's hash (the first line's prev_hash is trusted; it is 64 zeros when the
export starts at sequence 1), and each hash must be
SHA-256(bytes.fromhex(prev_hash) || canonical JSON of the line without
prev_hash and hash).
"""
import hashlib
import json
import sys

prev, count = None, 0
for line in sys.stdin:
    if not line.strip():
        continue
    event = json.loads(line)
    stored_hash, prev_hash = event.pop("hash"), event.pop("prev_hash")
    seq = event["sequence"]
    if prev is not None and prev_hash != prev:
        sys.exit("sequence %s: prev_hash mismatch" % seq)
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest() != stored_hash:
        sys.exit("sequence %s: hash mismatch" % seq)
    prev, count = stored_hash, count + 1
print("ok: %d events, head %s" % (count, prev))
