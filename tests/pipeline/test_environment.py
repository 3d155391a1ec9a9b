"""An environment that also holds the Hugging Face ``kernels`` distribution is refused with one clear error."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def _import_pipeline(extra_path: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", "import pipeline, kernels; print(kernels.__file__)"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_a_second_kernels_distribution_is_named_and_refused(tmp_path):
    clean = _import_pipeline(None)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert clean.stdout.strip() == str(ROOT / "kernels" / "__init__.py")

    info = tmp_path / "kernels-0.19.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kernels\nVersion: 0.19.1\n")
    clash = _import_pipeline(str(tmp_path))
    assert clash.returncode != 0
    last = clash.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and str(tmp_path) in last and "'kernels' package 0.19.1" in last
    assert "transformers<5.25" in last
