"""The bundled seed model imported as a module, for tests that build and train it in-process."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from astevo.paths import default_seed_path


def load_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exquisitenetv2_seed", default_seed_path())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
