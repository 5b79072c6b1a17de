"""A resumed run must train on the data it started with: its split and every stored accuracy depend on it."""

from __future__ import annotations

from pathlib import Path

from astevo.data.prepared import folder_identity, prepare_data
from astevo.errors import AstevoError
from astevo.store.run_store import RunStore


def check_data(store: RunStore) -> None:
    """Refuse an image folder whose files changed since the run recorded them (a built-in set records none)."""
    recorded = store.meta().get("data")
    if not recorded or recorded.get("identity") is None:
        return
    if folder_identity(store.config().fitness) != recorded["identity"]:
        raise AstevoError(
            f"run {store.folder} was made on {recorded['folder']} with other files than it holds now "
            "(images added, removed or changed), which would change its split and scores; restore the folder to "
            "resume, or start a new run"
        )


class DataChanged(AstevoError):
    """The data's files changed while the run was going: trainings fail for a reason no candidate is to blame for."""


class DataGuard:
    """The data's files as the run found them. A failed training is weighed against them before it is stored: if
    they were deleted, truncated or replaced, the run stops instead of recording the failure as the candidate's."""

    def __init__(self, store: RunStore) -> None:
        self.location = prepare_data(store.config().fitness).location
        self._found = _files(self.location)

    def check(self) -> None:
        now = _files(self.location)
        if now == self._found:
            return
        changed = sorted(name for name in self._found.keys() | now.keys() if self._found.get(name) != now.get(name))
        what = ", ".join(f"{name} ({'gone' if name not in now else 'changed'})" for name in changed[:3])
        raise DataChanged(f"the data in {self.location} changed while the run was going: {what}; restore it")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's size and modification time: what deleting, truncating or replacing it changes."""
    try:
        return {entry.name: (entry.stat().st_size, entry.stat().st_mtime_ns) for entry in folder.iterdir()}
    except OSError:
        return {}
