"""Where things go: the journal's key for an input, the sharded output path, and the check
that the output can never overwrite an input. No I/O but ``check_directories``."""

from __future__ import annotations

import hashlib
import os
import posixpath

__all__ = ["DirectoryError", "check_directories", "journal_key", "output_path"]

#: Longest original stem kept in an output name, in UTF-8 bytes: with the 16-character
#: hash, its dash, a suffix of at most 5 and ``.partial`` the name stays far below the
#: 255 bytes a file name may have.
_STEM_BYTES = 120


class DirectoryError(Exception):
    """SRC or DST cannot be used as given."""


def journal_key(rel: str) -> str:
    """The input's path relative to SRC as stored in the journal: the path itself, with a
    backslash written as two and each byte that is not UTF-8 (kept by the OS as a
    surrogate) as ``\\xNN``. Every name has a key, the same name always the same key, and
    two names never the same key (the escaping reads back one way only)."""
    raw = rel.encode("utf-8", "surrogateescape").replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


def output_path(rel: str) -> str:
    """The output's path relative to DST: ``ab/cd/<hash>-<stem><suffix>``. Two levels of
    256 directories named by a hash of the input's relative path spread 100 million images
    over 65,536 directories (about 1,500 files each); the hash also keeps two inputs with
    the same name in different folders apart."""
    digest = hashlib.sha256(journal_key(rel).encode()).hexdigest()
    stem, suffix = posixpath.splitext(posixpath.basename(journal_key(rel)))
    safe_stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)
    # Cut by bytes, not characters (a character is up to 4 bytes), at a character boundary.
    safe_stem = safe_stem.encode()[:_STEM_BYTES].decode("utf-8", "ignore")
    return f"{digest[:2]}/{digest[2:4]}/{digest[:16]}-{safe_stem}{suffix.lower()}"


def check_directories(src: str, dst: str) -> tuple[str, str | None]:
    """Absolute SRC and the directory to leave out of its walk (DST, when inside SRC).
    Refuses a SRC that is not a directory, and a DST that is SRC or holds it: outputs are
    only ever written under DST, so they never land on an input."""
    real_src = os.path.realpath(src)
    real_dst = os.path.realpath(dst)
    if not os.path.isdir(real_src):
        raise DirectoryError(f"SRC {src!r} is not a directory")
    if os.path.exists(real_dst) and not os.path.isdir(real_dst):
        raise DirectoryError(f"DST {dst!r} exists and is not a directory")
    if real_dst == real_src:
        raise DirectoryError("DST must not be SRC: outputs would sit among the inputs")
    if real_src.startswith(real_dst + os.sep):
        raise DirectoryError("SRC must not be inside DST: outputs could land on inputs")
    inside = real_dst.startswith(real_src + os.sep)
    return real_src, real_dst if inside else None
