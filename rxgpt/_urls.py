"""What makes a URL one a request can be sent to: the rule shared by the Client, the
transport's errors and every command's ``--base-url``."""

from __future__ import annotations

__all__ = ["base_url_problem"]


def base_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an API's base URL, as the end of a sentence about it
    (None: nothing): a space or a control character, not a URL, not ``http://`` or
    ``https://``, no host, a port out of range or 0."""
    from yarl import URL  # (here: a command's start does not pay for it)

    if any(char.isspace() or not char.isprintable() for char in url):
        return "holds a space or a control character"
    try:
        parsed = URL(url)
        host, port = parsed.host, parsed.port
    except ValueError as error:
        reason = str(error)
        return f"is not a URL ({reason[:1].lower() + reason[1:]})"
    if parsed.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not host:
        return "names no host"
    if port == 0:
        return "names port 0"
    return None
