"""The password file of `lakehouse serve-sql`: one user a line, `name:pbkdf2_sha256:ITERATIONS:SALT:HASH`.

SALT and HASH are base64; HASH is PBKDF2-HMAC-SHA256 of the password (32 bytes). No password is kept
in the clear: the file is written by `lakehouse serve-sql-user` and read by the server's
`lakehouse.serve.PasswordFileAuthenticator` (lakehouse/java/), which checks a login against it at
each connection. Keep the file outside the repository (e.g. /etc/lakehouse/sql-users), readable by
the server's account only (it is written with mode 600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

ITERATIONS = 210_000
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class PasswordFileError(ValueError):
    """A password file or entry the server cannot use; the message says what to fix."""


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256:ITERATIONS:SALT:HASH` for `password` (a fresh 16-byte salt unless given)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, 32)
    return f"pbkdf2_sha256:{iterations}:{base64.b64encode(salt).decode()}:{base64.b64encode(digest).decode()}"


def verify(password: str, entry: str) -> bool:
    """True when `password` matches a `pbkdf2_sha256:...` entry (the same check the server makes)."""
    scheme, iterations, salt, digest = entry.split(":")
    if scheme != "pbkdf2_sha256":
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), int(iterations), 32)
    return hmac.compare_digest(got, base64.b64decode(digest))


def read_users(path: str) -> dict[str, str]:
    """`{user: entry}` of a password file; PasswordFileError when it is missing, unreadable or malformed."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError as exc:
        raise PasswordFileError(f"users file not found: {path} (create it with `lakehouse serve-sql-user`)") from exc
    except OSError as exc:
        raise PasswordFileError(f"users file {path} is not readable: {exc.strerror}") from exc
    users = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 5 or parts[1] != "pbkdf2_sha256" or not parts[2].isdigit():
            raise PasswordFileError(f"users file {path} line {number}: expected name:pbkdf2_sha256:ITERATIONS:SALT:HASH "
                                    "(write it with `lakehouse serve-sql-user`)")
        users[parts[0]] = ":".join(parts[1:])
    if not users:
        raise PasswordFileError(f"users file {path} has no users (add one with `lakehouse serve-sql-user`)")
    return users


def _write(path: str, users: dict[str, str]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name}:{entry}\n" for name, entry in sorted(users.items()))
    os.replace(tmp, path)


def set_user(path: str, user: str, password: str) -> None:
    """Add `user` with `password` to the file (created with mode 600), or change its password."""
    if not NAME.match(user):
        raise PasswordFileError(f"user name {user!r}: use 1-64 letters, digits, or _ . @ -")
    if len(password) < 8:
        raise PasswordFileError("password: use at least 8 characters")
    users = read_users(path) if os.path.exists(path) and os.path.getsize(path) else {}
    users[user] = hash_password(password)
    _write(path, users)


def remove_user(path: str, user: str) -> None:
    """Remove `user` from the file; PasswordFileError when it is not there."""
    users = read_users(path)
    if user not in users:
        raise PasswordFileError(f"no user {user!r} in {path}")
    del users[user]
    _write(path, users)
