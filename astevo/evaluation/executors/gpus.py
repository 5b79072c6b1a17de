"""The GPUs this machine shows CUDA, found without importing torch (the command line starts without it)."""

from __future__ import annotations

import os
from pathlib import Path

_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def visible_gpus() -> list[str]:
    """CUDA_VISIBLE_DEVICES' entries when it is set, else one index per GPU the NVIDIA driver lists."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [entry.strip() for entry in listed.split(",") if entry.strip() and entry.strip() != "-1"]
    try:
        return [str(index) for index in range(len(list(_NVIDIA_GPUS.iterdir())))]
    except OSError:
        return []


def slot_devices(workers: int, gpus: list[str]) -> list[str | None]:
    """Each evaluation slot's CUDA_VISIBLE_DEVICES: the GPUs in turn (slots may share one); None without GPUs."""
    return [gpus[slot % len(gpus)] if gpus else None for slot in range(workers)]
