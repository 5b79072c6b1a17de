"""A resumed run must train on the data it started with: its split and every stored accuracy depend on it."""

from __future__ import annotations

from astevo.data.prepared import folder_identity
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
