"""Only the optional C extension; everything else is declared in pyproject.toml.

(pyproject's own ``[tool.setuptools.ext-modules]`` is still experimental in setuptools.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # the probes' unsampled path in C; optional: without a compiler (or off Linux) the
        # build goes on and aiotel.probes uses its pure-Python functions
        Extension("aiotel._speedups", sources=["src/aiotel/_speedups.c"], optional=True),
    ],
)
