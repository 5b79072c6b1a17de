"""A resumed run must use the language model it started with, or it would not end as it would have."""

from __future__ import annotations

from astevo.errors import AstevoError
from astevo.llm.identity import ModelIdentity
from astevo.store.run_store import RunStore


def check_model(store: RunStore, model: ModelIdentity | None) -> None:
    """Refuse a model that is missing or differs from the one the run recorded."""
    recorded = store.meta().get("model")
    if recorded and (model is None or not model.matches(recorded)):
        made_with = ModelIdentity.from_record(recorded).describe()
        found = f"{model.describe()} differs" if model else "no model is given"
        raise AstevoError(
            f"run {store.folder} was made with the model {made_with}, and {found}; restore that model to resume"
        )
