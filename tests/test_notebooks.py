"""The notebooks: each executed copy matches its source (notebooks/NN_*.py), every notebook runs in a Jupyter
kernel without error on a machine without a GPU, and the two that read data a GPU run writes (pinned peer
findings, the benchmark's JSON) say so and skip their figures when it is missing, and draw it when present
(checked on a tiny synthetic example built here, never committed)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import make_notebooks  # noqa: E402

SOURCES = make_notebooks.sources()
NEEDED = ("nbformat", "nbclient", "ipykernel", "matplotlib")


def _require_notebook_tools() -> None:
    missing = [m for m in NEEDED if not _importable(m)]
    if missing:
        message = f"{', '.join(missing)} not installed: pip install -e '.[notebooks]' (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _run(source: Path):
    _require_notebook_tools()
    return make_notebooks.execute(make_notebooks.build(source), timeout=240)


def _outputs(nb) -> tuple[int, str]:
    images, text = 0, []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            images += "image/png" in out.get("data", {})
            text.append("".join(out.get("text", "")))
    return images, "\n".join(text)


def test_five_notebooks_each_with_its_executed_copy() -> None:
    _require_notebook_tools()
    assert len(SOURCES) == 5, [s.name for s in SOURCES]
    assert sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb")) == [s.stem for s in SOURCES]
    assert make_notebooks.main(["--check"]) == 0, "run python tools/make_notebooks.py"


def test_the_source_format_is_parsed_into_cells() -> None:
    cells = make_notebooks.parse("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\nprint(x)\n")
    assert cells == [("markdown", "# Title\n\ntext"), ("code", "x = 1\n\n\nprint(x)")]
    with pytest.raises(ValueError, match="before the first"):
        make_notebooks.parse("x = 1\n# %%\n")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(source: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The data notebooks read their files from the repository; point them at empty places so that the
    # "no data yet" path runs here whatever the checkout holds (the data path runs in the tests below).
    monkeypatch.setenv("MOEGATE_PEER_FINDINGS", str(tmp_path / "none"))
    monkeypatch.setenv("MOEGATE_BENCH_JSON", str(tmp_path / "none.json"))
    nb = _run(source)  # raises CellExecutionError when a cell raises
    images, text = _outputs(nb)
    if source.stem.startswith(("03", "05")):
        assert images == 0 and "skipped" in text
    else:
        assert images >= 3, f"{source.name} drew {images} figures"


# ---- synthetic data for notebooks 3 and 5 (tests only) -------------------------------------------------


def _peer_findings(root: Path) -> None:
    """One fake peer whose recorded output numbers the shared slot E + 1 (rule id_range)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from moegate.properties import fixtures as fx
    from moegate.properties.impls import load_impl

    reference = load_impl("reference")
    out = root / "fakepeer"
    name, preset, problem = fx.preset_cases_problems(["deepseek-v3"], [torch.float32], num_rows=6, seed=1)[0]
    meta = {"peer": "fakepeer", "finding": "numbers the shared slot from E + 1", "rule": "id_range"}
    case = fx.record_case(name, problem, reference, preset=preset, extra_meta=meta)
    fx.write_fixture_set(out, [case])
    path = out / case.file_name
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    peer_ids = tensors["ids"].clone()
    peer_ids[:, problem.config.topk :] += 1
    save_file(
        {**tensors, "peer_ids": peer_ids, "peer_weights": tensors["weights"].clone()}, str(path), metadata
    )
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["cases"][0]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))


def _bench(path: Path) -> None:
    rows = []
    for impl, launch, per_byte in (("optimized", 4.0, 1 / 0.6e6), ("otherkernel", 6.0, 1 / 0.3e6)):
        for t in (1, 64, 4096, 65536):
            nbytes = t * 256 * 2 + t * 9 * 8
            rows.append({"impl": impl, "preset": "deepseek-v3", "dtype": "bfloat16", "T": t,
                         "us": launch + nbytes * per_byte, "bytes": nbytes, "status": "ok"})  # fmt: skip
    rows.append({"impl": "otherkernel", "preset": "kimi-k2", "dtype": "bfloat16", "T": 1, "us": 0.0,
                 "bytes": 0, "status": "rejects"})  # fmt: skip
    doc = {"card": "SYNTHETIC TEST CARD", "driver": "0", "versions": {"torch": "test"},
           "copy_floor_tbps": 4.3, "launch_floor_us": 2.5, "rows": rows}  # fmt: skip
    path.write_text(json.dumps(doc))


def test_peer_findings_notebook_draws_the_pinned_findings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _peer_findings(tmp_path)
    monkeypatch.setenv("MOEGATE_PEER_FINDINGS", str(tmp_path))
    nb = _run(next(s for s in SOURCES if s.stem.startswith("03")))
    images, text = _outputs(nb)
    assert images == 2
    assert "fakepeer / " in text
    assert ": numbers the shared slot from E + 1 (rule id_range; the oracle finds id_range" in text
    assert "6 of 6 rows depart" in text


def test_speed_notebook_draws_the_benchmark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _bench(tmp_path / "bench.json")
    monkeypatch.setenv("MOEGATE_BENCH_JSON", str(tmp_path / "bench.json"))
    nb = _run(next(s for s in SOURCES if s.stem.startswith("05")))
    images, text = _outputs(nb)
    assert images == 2
    assert "SYNTHETIC TEST CARD" in text and "otherkernel rejects kimi-k2 bfloat16" in text
    # the closest approach to the floor, recomputed here from the synthetic rows and floors of _bench
    doc = json.loads((tmp_path / "bench.json").read_text())
    mine = [r for r in doc["rows"] if r["impl"] == "optimized"]
    over = [r["us"] / max(doc["launch_floor_us"], r["bytes"] / (doc["copy_floor_tbps"] * 1e6)) for r in mine]
    ratio = min(over)
    best = mine[over.index(ratio)]
    assert f"optimized  deepseek-v3, bfloat16: closest to the floor at T = {best['T']} ({ratio:.2f}x)" in text
    assert "otherkernel rejects kimi-k2 bfloat16 at T = 1" in text
