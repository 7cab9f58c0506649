"""Runtime answers about AI-generated functions, for developers and their coding agents
(``aiotel mcp``, ``aiotel report --prometheus``).

A source (the embedded store, or Prometheus for a fleet) answers the same questions in the
same records; the MCP server only names the tools and renders each answer as structured
data plus readable text. Data flows one way: files or PromQL -> records -> renderings.
A question a source cannot answer raises ``SourceCannotAnswer`` naming the source that can.
"""

from __future__ import annotations


class SourceCannotAnswer(Exception):
    """This source holds no data for that question; the message names the one that does."""


class BadArgument(ValueError):
    """An argument a tool cannot use; the message says which and why."""
