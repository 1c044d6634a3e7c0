"""base64url (RFC 4648 §5, unpadded) and canonical JSON: the one copy of each."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_B64URL = re.compile(r"[A-Za-z0-9_-]*")

# JavaScript numbers are IEEE doubles: integers beyond this lose precision there.
MAX_SAFE_INTEGER = 2**53 - 1


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5), as WebAuthn's JSON uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``; ValueError for anything else.

    Strict: no padding, no whitespace, no characters outside the URL-safe
    alphabet (the standard decoder would silently skip them).
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding of ``value``: the bytes that are hashed and signed.

    Format (reproducible with ``JSON.stringify`` in a browser):

    * UTF-8 of the JSON text, with no whitespace at all (``,`` and ``:`` separators).
    * Objects: members sorted by key. Keys must be ASCII strings, so sorting by
      code point (Python) and by UTF-16 code unit (JavaScript's default
      ``Array.prototype.sort``) agree.
    * Strings: ``"`` and ``\\`` escaped with a backslash; U+0000-U+001F as
      ``\\b \\f \\n \\r \\t`` or ``\\u00xx`` (lowercase hex); every other character
      literally, in UTF-8 (non-ASCII, ``/``, U+2028 and U+2029 included). Lone
      surrogates are refused.
    * Numbers: integers only, at most 2**53-1 in magnitude. No floats: their
      textual form differs between languages.
    * ``true``, ``false``, ``null``; arrays keep their order (tuples are arrays).

    In JavaScript::

        function canonicalJson(v) {
          if (Array.isArray(v)) return "[" + v.map(canonicalJson).join(",") + "]";
          if (v !== null && typeof v === "object")
            return "{" + Object.keys(v).sort()
              .map((k) => JSON.stringify(k) + ":" + canonicalJson(v[k])).join(",") + "}";
          return JSON.stringify(v);
        }
        const bytes = new TextEncoder().encode(canonicalJson(value));

    Raises TypeError for a value outside this subset, ValueError for an
    integer out of range or a lone surrogate.
    """
    text = json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("lone surrogate in a string") from exc


def _plain(value: Any) -> Any:
    """``value`` as plain dicts, lists and scalars, checked against the subset above."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError("integer out of the range JavaScript represents exactly")
        return int(value)
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise TypeError("canonical JSON object keys must be ASCII strings")
            plain[key] = _plain(item)
        return plain
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")
