"""The one place that knows which backends exist: everything else asks for a model by its settings."""

from __future__ import annotations

from astevo.llm.backend import Generator
from astevo.llm.gguf import Announce, ModelInfo, resolve_model
from astevo.llm.identity import ModelIdentity, file_identity
from astevo.settings import SERVER, MutationSettings


class ModelChoice:
    """The model the settings name, found but not yet loaded: a resume checks its identity before paying for a
    load, and `generator` then loads it (a file) or keeps the server's connection (a served model)."""

    def __init__(self, settings: MutationSettings, announce: Announce | None = None) -> None:
        self.settings = settings
        self._file: ModelInfo | None = None
        self._generator: Generator | None = None  # a served model's connection, or the file once loaded
        if settings.backend == SERVER:
            from astevo.llm.served import ServedGenerator

            self._generator = ServedGenerator(settings.server, settings.model)
        else:
            self._file = resolve_model(settings.model, announce)

    @property
    def identity(self) -> ModelIdentity:
        if self._file is not None:
            return file_identity(self._file)
        assert self._generator is not None
        return self._generator.identity

    @property
    def recorded_name(self) -> str:
        """What `mutation.model` stores so that a resume finds the model again: a name, else the resolved path."""
        if self._file is None:
            return self.identity.name
        return self._file.name if self._file.named else str(self._file.path.resolve())

    @property
    def shown(self) -> str:
        """The model and where it came from, for the line a command prints before it proposes."""
        if self._file is None:
            return self.identity.describe()
        return f"{self._file.name} ({self._file.source})"

    def generator(self) -> Generator:
        """The model ready to complete; a file is loaded on the first call only."""
        if self._generator is None:
            from astevo.llm.llama_cpp_backend import LlamaCppGenerator  # loads llama.cpp only when a file is used

            self._generator = LlamaCppGenerator.from_settings(self.settings, self._file)
        return self._generator


def make_generator(settings: MutationSettings, announce: Announce | None = None) -> Generator:
    """The generator the settings describe (`mutation.backend`), ready to complete."""
    return ModelChoice(settings, announce).generator()
