"""An htpasswd file with bcrypt entries only, as ``htpasswd -B`` writes them::

    # user:bcrypt-hash
    alice:$2y$10$3sNJn2AGX6.1lVP35Zh88el6iN1IDiGXzqmF6COEOzf1xL6B9Q6Ba

Every other scheme htpasswd knows is refused where it is written (file and line): Apache's MD5
(``$apr1$``), ``{SHA}`` (one unsalted SHA-1), crypt (DES, ``$1$``, ``$5$``, ``$6$``) and plain
text are all fast to brute-force from a leaked file, and bcrypt is what ``htpasswd -B`` (and
every other htpasswd tool) writes today. ``$2y$``, ``$2b$`` and ``$2a$`` are the same hash to
verify.

A user who is not in the file is checked against a dummy hash of the file's own cost, so an
unknown user costs what a known one does and the time of a refusal does not tell which users
exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from gateway.errors import ConfigError
from gateway.security.files import entries, read_text_file

FORMAT = "user:bcrypt-hash"
_BCRYPT = re.compile(r"\$2[aby]\$(?P<cost>\d{2})\$[./A-Za-z0-9]{53}")
_USER = re.compile(r"[^:\x00-\x1f\x7f]+")
_DES_CRYPT = re.compile(r"[./0-9A-Za-z]{13}")
# bcrypt accepts costs 4-31; the dummy of a file without entries costs htpasswd -B's default.
MIN_COST = 4
MAX_COST = 31
DEFAULT_COST = 10
# The fixed-length tail of a bcrypt hash after its salt: the dummy's, which no password gives.
_DUMMY_TAIL = b"." * 31

_SCHEMES = (
    ("$apr1$", "Apache MD5 ($apr1$)"),
    ("{SHA}", "SHA-1 ({SHA})"),
    ("$1$", "MD5-crypt ($1$)"),
    ("$5$", "SHA-256-crypt ($5$)"),
    ("$6$", "SHA-512-crypt ($6$)"),
)


@dataclass(frozen=True, slots=True)
class Htpasswd:
    users: Mapping[str, bytes]  # user -> bcrypt hash
    dummy: bytes  # the hash unknown users are checked against
    source: str = ""

    def hash_of(self, user: str) -> tuple[bytes, bool]:
        """The hash to check ``user``'s password against, and whether the user exists."""
        hashed = self.users.get(user)
        return (self.dummy, False) if hashed is None else (hashed, True)


def _scheme(hashed: str) -> str:
    """What a non-bcrypt entry is, for the error."""
    for prefix, name in _SCHEMES:
        if hashed.startswith(prefix):
            return name
    if hashed.startswith("$2"):
        return f"not a well-formed bcrypt hash ({hashed[:4]}...)"
    if hashed.startswith("$"):
        return f"the {hashed.split('$')[1]!r} scheme"
    if _DES_CRYPT.fullmatch(hashed):
        return "DES crypt"
    return "plain text, or a scheme htpasswd does not name"


def parse_htpasswd(text: str, source: str) -> Htpasswd:
    """``text`` in htpasswd's format; ``source`` names it in errors (``source:line``). Raises
    ConfigError at the first entry that is malformed or not bcrypt."""
    users: dict[str, bytes] = {}
    lines: dict[str, int] = {}
    cost = 0
    for number, where, entry in entries(text, source):
        user, colon, hashed = entry.partition(":")
        if not colon or not user or ":" in hashed:
            raise ConfigError(f"expected {FORMAT}", where)
        if not _USER.fullmatch(user):
            raise ConfigError(f"the user name {user!r} holds a control character", where)
        match = _BCRYPT.fullmatch(hashed)
        if match is None:
            raise ConfigError(
                f"user {user!r}: only bcrypt entries ($2y$, $2b$, $2a$) are accepted, this one "
                f"is {_scheme(hashed)}; write it again with htpasswd -B",
                where,
            )
        rounds = int(match["cost"])
        if not MIN_COST <= rounds <= MAX_COST:
            raise ConfigError(
                f"user {user!r}: bcrypt cost {rounds} is outside {MIN_COST}-{MAX_COST}", where
            )
        if user in users:
            raise ConfigError(f"user {user!r} is already on line {lines[user]}", where)
        users[user] = hashed.encode("ascii")
        lines[user] = number
        cost = max(cost, rounds)
    # A real salt of the file's highest cost: bcrypt does all the work, and no password matches.
    salt = bcrypt.gensalt(rounds=cost or DEFAULT_COST, prefix=b"2b")
    return Htpasswd(users, salt + _DUMMY_TAIL, source)


def read_htpasswd(path: str | Path) -> Htpasswd:
    """An htpasswd file, read now (a route's build reads it, so a reload re-reads it)."""
    return parse_htpasswd(read_text_file(path), str(path))
