"""Basic auth against the bcrypt hashes of ``basic_auth_users``.

A correct user and password is remembered after its first check, as a keyed digest, in a
bounded cache; wrong ones always cost a bcrypt check, one at a time. An unknown user name is
checked against a fixed decoy hash, so the answer time does not tell a wrong name from a wrong
password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

WWW_AUTHENTICATE = 'Basic realm="convocore-crawler-exporter", charset="UTF-8"'

# The bcrypt hash (cost 10, as the exporter-toolkit's decoy) of a random password that was
# thrown away: an unknown user costs one bcrypt check of the usual cost and can never match.
DECOY_HASH = b"$2b$10$JDVH3Py/tsAOcLbbzg7F/.b2ezSrddi9Uom6x3Qh1Y3LINX9VguWy"

BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt only ever uses this many; Go and htpasswd truncate too
STANDARD_BCRYPT = re.compile(rb"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
CACHE_SIZE = 256


class BasicAuth:
    """Checks ``Authorization`` headers against user names and bcrypt hashes.

    Safe to share between threads.
    """

    def __init__(self, users: Mapping[bytes, bytes]) -> None:
        self._users = tuple(users.items())
        self._cache_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        # One bcrypt at a time, as the Go exporters do: a flood of wrong passwords costs one
        # core, and a correct password is cached after its first check.
        self._bcrypt_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._users)

    def cached(self) -> tuple[bytes, ...]:
        """What the cache of good credentials holds, oldest first: keyed digests (HMAC-SHA256
        with a key made at start), never a user name or a password."""
        with self._cache_lock:
            return tuple(self._cache)

    def authenticate(self, authorization_header: str | None) -> bool:
        """Whether a request with this ``Authorization`` header may be served.

        True when no users are configured.
        """
        if not self._users:
            return True
        credentials = parse_basic_credentials(authorization_header)
        if credentials is None:
            return False
        user, password = credentials
        cache_key = hmac.new(
            self._cache_key, len(user).to_bytes(8, "big") + user + password, hashlib.sha256
        ).digest()
        with self._cache_lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return True
        hashed: bytes | None = None
        for name, candidate in self._users:
            # Every configured name is compared, in constant time, whatever matches.
            if hmac.compare_digest(name, user):
                hashed = candidate
        with self._bcrypt_lock:
            matches = bcrypt_matches(password, DECOY_HASH if hashed is None else hashed)
        if hashed is None or not matches:
            return False
        with self._cache_lock:
            self._cache[cache_key] = None
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return True


def parse_basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password


def bcrypt_matches(password: bytes, hashed: bytes) -> bool:
    if not STANDARD_BCRYPT.fullmatch(hashed):
        return False  # a hash Go accepts but whose meaning is not standard
    try:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD_BYTES], hashed)
    except ValueError:  # bcrypt refuses some salts the pattern above lets through
        return False


def go_bcrypt_problem(hashed: bytes) -> str | None:
    """Why Go's bcrypt (which promtool uses) would refuse this hash, or None if it accepts it."""
    if len(hashed) < 59:
        return "it is too short to be a bcrypt hash"
    if hashed[0:1] != b"$":
        return "a bcrypt hash starts with '$'"
    if hashed[1:2] > b"2":
        return "its bcrypt version is newer than 2"
    start = 3 if hashed[2:3] == b"$" else 4
    cost_text = hashed[start : start + 2]
    if not re.fullmatch(rb"[+-]?[0-9]+", cost_text):
        return "its cost is not a number"
    cost = int(cost_text)
    if not 4 <= cost <= 31:
        return f"its cost {cost} is outside 4..31"
    return None
