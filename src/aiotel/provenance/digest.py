"""SHA-256 hex digests for cache keys, without loading ``hashlib`` where possible.

``hashlib`` loads OpenSSL: 2.5 to 4 ms, which the first import of a marked module would
pay on every start. The interpreter's own SHA-256 module (the one ``hashlib`` falls back
to) gives the same digest and loads in 0.2 ms. Where it is missing, ``hashlib``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

_sha256: Optional[Callable[[bytes], Any]] = None


def _load() -> Callable[[bytes], Any]:
    global _sha256
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef]  # 3.9-3.11
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment]
    _sha256 = sha256
    return sha256


def sha256_hex(data: bytes) -> str:
    return (_sha256 or _load())(data).hexdigest()
