"""Fetching dataset files from their official mirrors, with checksum verification.

Plain urllib, so file:// URLs work too (tests, local mirrors). A file is written under a
temporary name and moved into place only once its checksum matches: an interrupted or
corrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request

__all__ = ["calculate_checksum", "check_integrity", "download_url"]

_CHUNK = 1 << 20


def calculate_checksum(path: str, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_integrity(path: str, md5: str | None = None, sha256: str | None = None) -> bool:
    """Whether `path` exists and matches the given checksums (existence only if none)."""
    if not os.path.isfile(path):
        return False
    if md5 is not None and calculate_checksum(path, "md5") != md5.lower():
        return False
    return sha256 is None or calculate_checksum(path, "sha256") == sha256.lower()


def download_url(
    urls, path: str, md5: str | None = None, sha256: str | None = None, timeout: float = 60.0
) -> str:
    """Downloads the first of `urls` that succeeds and matches the checksums into `path`.

    RuntimeError naming `path` and every URL tried, with each one's failure, if none does.
    """
    if isinstance(urls, str):
        urls = [urls]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".part"
    failures = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, _CHUNK)
            for algorithm, want in (("md5", md5), ("sha256", sha256)):
                if want is not None:
                    got = calculate_checksum(tmp, algorithm)
                    if got != want.lower():
                        raise ValueError(
                            f"{algorithm} checksum mismatch: expected {want.lower()}, got {got}"
                        )
            os.replace(tmp, path)
            return path
        except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise RuntimeError(f"could not download {path}: " + "; ".join(failures))
