"""The environment of every process that may run candidate code: only what it needs.

No proxies, tokens or other secrets of the caller reach a sandbox child or a warm worker.
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def child_environment(home: str, threads: int) -> dict[str, str]:
    """Python finds astevo as this process does; HOME and TMPDIR are `home`; math libraries use `threads`."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(os.path.abspath(entry or os.curdir) for entry in sys.path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    environment.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    return environment
