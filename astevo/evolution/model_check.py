"""A resumed run must use the language model it started with, or it would not end as it would have."""

from __future__ import annotations

from astevo.errors import AstevoError
from astevo.llm.gguf import ModelInfo
from astevo.store.run_store import RunStore


def check_model(store: RunStore, model: ModelInfo | None) -> None:
    """Refuse a model that is missing or whose file differs from the one the run recorded."""
    recorded = store.meta().get("model")
    if recorded and (model is None or not model.path.is_file() or model.sha256 != recorded["sha256"]):
        shown = recorded.get("name") or recorded["path"]
        raise AstevoError(
            f"run {store.folder} was made with the model {shown} (sha256 {recorded['sha256'][:12]}...), and "
            f"{model.path if model else 'no model'} is missing or differs; restore that model to resume"
        )


def model_record(model: ModelInfo) -> dict[str, str]:
    """What a run stores of its model: the name it was asked by, the file, and the hash a resume checks."""
    return {"name": model.name, "path": str(model.path.resolve()), "sha256": model.sha256}
