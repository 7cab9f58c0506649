"""Start aiotel in this process: the SDK pipeline first (its parts built when first
needed, see ``pipeline.providers``), then the import hook. Once only.

Called by the sitecustomize that ``aiotel-run`` puts on ``PYTHONPATH``, by
``import aiotel.auto`` and by ``aiotel.instrument()``. It never raises: when anything
fails the program runs uninstrumented, after one line on stderr that says why.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from . import cachedir, log

if TYPE_CHECKING:
    import ast

    from .config import Settings

_lock = threading.Lock()
_started: Optional[bool] = None


def instrument(environ: Optional[Mapping[str, str]] = None, main_script: Optional[str] = None) -> bool:
    """Set up telemetry from the environment and install the import hook; True when active.

    ``main_script``: the script ``aiotel-run python app.py`` runs (names the service).
    """
    global _started
    with _lock:
        if _started is not None:
            return _started
        _started = False
        try:
            from .config import load_settings

            settings = load_settings(os.environ if environ is None else environ)
            log.set_level(log.LEVELS[settings.log_level])  # logging loads when aiotel first speaks
            for problem in settings.problems:
                log.warn(problem)
            from .pipeline import providers as setup

            pipeline = setup.start(settings, main_script=main_script)
            if pipeline is None:
                return False  # OTEL_SDK_DISABLED=true: the program runs as if aiotel were absent
            refused = cachedir.refusal(settings.cache_dir)  # it decides what gets imported
            if refused:
                log.warn(refused)
                settings = settings._replace(cache_dir=None)
            from .rewriting import importhook

            hook = importhook.install(settings)
            pipeline.when_started(hook.allow_background)
            pipeline.wait_at_exit(hook.wait_for_background)
            _started = True
            from .pipeline.libraries import instrument_libraries, when_imported
            from .rewriting import by_location, runpath

            by_location.install(hook)

            when_imported("runpy", runpath.install)  # spawn children run the main script through it
            if settings.instrument_libraries:
                instrument_libraries(settings.disabled_instrumentations, settings.cache_dir,
                                     lambda distribution: _instrument_options(settings, distribution))
        except Exception as exc:
            log.warn(f"not instrumenting this process: {type(exc).__name__}: {exc}")
        return _started


def _instrument_options(settings: "Settings", distribution: Optional[str]) -> Dict[str, Any]:
    """The content policy for an instrumentor, through its own configuration object;
    loaded only when an instrumentor is activated (its library was just imported)."""
    from .pipeline.scrubbing import ContentPolicy, instrument_options

    policy = ContentPolicy(settings.llm_content, settings.llm_content_switches, lambda text: text)
    return instrument_options(distribution, policy)


def started() -> bool:
    return bool(_started)


def instrument_main(tree: "ast.Module", source: bytes, path: str) -> "ast.Module":
    """The main script's tree with its marked functions instrumented, once aiotel has
    started (the bootstrap's ``_aiotel_main`` asks); ``tree`` itself otherwise."""
    if not _started:
        return tree
    from .rewriting.mainscript import instrument_main as instrument

    return instrument(tree, source, path)
