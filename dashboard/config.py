"""Where the dashboard finds its lake: set once by create_app, read by dashboard.data.lake."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DashboardConfig:
    """Process-wide settings of the running dashboard."""

    lake: Path | str | None = None  # a local folder, or an s3:// / s3a:// URI (read with the AWS_* variables)
    # users allowed to log in (name -> werkzeug password hash); empty = open dashboard
    users: dict[str, str] = field(default_factory=dict)

    def require_lake(self) -> Path | str:
        """The lake directory (or object-store URI), or an error when the app was not configured."""
        if self.lake is None:
            raise RuntimeError("dashboard lake is not configured: call dashboard.app.create_app(lake_dir)")
        return self.lake


CONFIG = DashboardConfig()


def parse_users(spec: str | None) -> dict[str, str]:
    """Parse LAKEHOUSE_DASHBOARD_USERS (`user1:<hash>,user2:<hash>`) into a dict.

    Hashes are werkzeug `generate_password_hash` strings, which contain ':' themselves
    (e.g. `scrypt:32768:8:1$salt$hex`), so only the first ':' splits name from hash.
    """
    users: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, hashed = part.partition(":")
        if not sep or not name.strip() or not hashed.strip():
            raise ValueError(f"bad LAKEHOUSE_DASHBOARD_USERS entry for {name!r}: expected user:<werkzeug hash>")
        users[name.strip()] = hashed.strip()
    return users


def configure(lake: str | Path, users: dict[str, str] | None = None) -> DashboardConfig:
    """Point the dashboard at a lake (a folder, or an `s3://`/`s3a://` URI); users default to
    LAKEHOUSE_DASHBOARD_USERS."""
    text = str(lake)
    is_uri = text.lower().startswith(("s3://", "s3a://"))
    CONFIG.lake = text.rstrip("/") if is_uri else Path(lake).expanduser().resolve()
    CONFIG.users = parse_users(os.environ.get("LAKEHOUSE_DASHBOARD_USERS")) if users is None else dict(users)
    return CONFIG
