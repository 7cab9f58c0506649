"""The ``aiotel`` command."""
