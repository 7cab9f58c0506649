"""Stage 2: which modules and functions get instrumented, and how.

``selection`` decides (one place, with a reason for every "no"); ``importhook`` finds
marked modules as they are imported and ``mainscript`` does the same for the script of
``aiotel-run python app.py``; ``rewrite`` puts the probe calls into each marked
function's own frame; ``pyc`` caches the rewritten bytecode; ``attribution`` adds each
function's commit to its spans once git has answered.
"""
