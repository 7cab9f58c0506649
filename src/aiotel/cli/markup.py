"""HTML text for the report's pages: every string from the telemetry or a marker goes
through ``esc``; what is built here from escaped parts is ``Markup``."""

from __future__ import annotations


def esc(value: object) -> str:
    """``html.escape(str(value), quote=True)``, without its module's import and call: the
    pages escape some ten thousand strings."""
    text = value if type(value) is str else str(value)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#x27;"))


class Markup(str):
    """HTML the report built from escaped parts: put in a page as it is, not escaped again."""
