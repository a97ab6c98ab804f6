"""Files stored once under their SHA-256 in the data dir (ab/abcdef…), written atomically."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class FileStore:
    """Content-addressed files: a file's name is its hash, so the same content is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, sha256: str, data: bytes) -> None:
        path = self.path(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unique per writer: two requests in one process may store the same file at the same time.
        tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(8)}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a crash never leaves half a file under its hash

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
