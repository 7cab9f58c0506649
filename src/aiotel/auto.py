"""``import aiotel.auto``: start aiotel from code, for hosts that ignore sitecustomize.

Import it before the modules it should instrument; modules with markers that were
imported earlier are named in one warning each.
"""

from .start import instrument as _instrument

_instrument()
