"""What plans and errors may show of a URL or DSN: never a password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """`url` without its password (redis://:pw@host/0 -> redis://***@host/0)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def safe_dsn(dsn: str) -> str:
    """A libpq DSN (URL or key=value form) with any password replaced."""
    if "://" in dsn:
        return safe_url(dsn)
    words = [("password=***" if w.startswith("password=") else w) for w in dsn.split()]
    return " ".join(words)


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
