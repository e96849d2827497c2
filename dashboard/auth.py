"""Optional HTTP basic auth for every page, asset and callback of the dashboard.

Users come from LAKEHOUSE_DASHBOARD_USERS (`user1:<hash>,user2:<hash>`, hashes made
with werkzeug's generate_password_hash). Without users the dashboard is open and
binds to 127.0.0.1 by default.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.security import check_password_hash, generate_password_hash

REALM = "Lakehouse dashboard"
# compared against for unknown user names, so a wrong name costs as long as a wrong password
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def check(users: dict[str, str], username: str | None, password: str | None) -> bool:
    """Whether the credentials match one of the configured users."""
    hashed = users.get(username or "")
    ok = check_password_hash(hashed or _DUMMY_HASH, password or "")
    return bool(hashed) and ok


def install_basic_auth(server: Flask, users: dict[str, str]) -> None:
    """Require one of `users` on every request (pages, assets, /_dash-* callbacks)."""
    if not users:
        return

    @server.before_request
    def _require_login():
        auth = request.authorization
        if auth is not None and auth.type == "basic" and check(users, auth.username, auth.password):
            return None
        return Response("Login required.\n", 401,
                        {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})


def hash_password(password: str) -> str:
    """A werkzeug hash for LAKEHOUSE_DASHBOARD_USERS (`python -m dashboard.auth PASSWORD`)."""
    return generate_password_hash(password)


if __name__ == "__main__":
    import getpass
    import sys

    pw = sys.argv[1] if len(sys.argv) > 1 else getpass.getpass("password: ")
    print(hash_password(pw))
