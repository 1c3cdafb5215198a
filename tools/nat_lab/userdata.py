"""A launch template's or an instance's user data, as the instance's cloud-init reads it: base64,
then gunzipped when it is gzip (the nat-instance module gzips it to stay under EC2's 16 KiB)."""

from __future__ import annotations

import base64
import gzip

GZIP_MAGIC = b"\x1f\x8b"


def decode(encoded: str | bytes | None) -> str:
    raw = base64.b64decode(encoded or b"")
    if raw.startswith(GZIP_MAGIC):
        raw = gzip.decompress(raw)
    return raw.decode()
