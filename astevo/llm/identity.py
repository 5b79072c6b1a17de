"""What a run records of its language model, and what a resume checks: proposals depend on the model, so a
run continued with another one would not end as it would have."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from astevo.llm.gguf import ModelInfo


@dataclass(frozen=True)
class ModelIdentity:
    """A model as a record: a file by its name and sha256, a served model by its server's report of it.

    `fingerprint` is what must match on resume; `where` (a path or a URL) may change, so a file moved to another
    disk or a server moved to another port still resumes the run.
    """

    name: str
    where: str
    fingerprint: str
    served: bool

    def record(self) -> dict[str, str]:
        if self.served:
            return {"name": self.name, "server": self.where, "report": self.fingerprint}
        return {"name": self.name, "path": self.where, "sha256": self.fingerprint}

    def matches(self, recorded: dict[str, Any]) -> bool:
        key = "report" if self.served else "sha256"
        return recorded.get(key) == self.fingerprint

    @classmethod
    def from_record(cls, recorded: dict[str, Any]) -> ModelIdentity:
        """The identity a run recorded (runs before served models recorded files only, some without a name)."""
        if "server" in recorded:
            return cls(recorded["name"], recorded["server"], recorded["report"], served=True)
        return cls(recorded.get("name") or recorded["path"], recorded["path"], recorded["sha256"], served=False)

    def describe(self) -> str:
        """One phrase for messages: which model, and where it was found."""
        if self.served:
            return f"{self.name} served at {self.where}"
        return f"{self.name} (sha256 {self.fingerprint[:12]}...)"


def file_identity(model: ModelInfo) -> ModelIdentity:
    return ModelIdentity(model.name, str(model.path.resolve()), model.sha256, served=False)


def served_identity(url: str, name: str, report: dict[str, Any]) -> ModelIdentity:
    """`report`: what the server says of the model it serves, kept in a canonical form so a resume compares it."""
    return ModelIdentity(name, url, json.dumps(report, sort_keys=True), served=True)
