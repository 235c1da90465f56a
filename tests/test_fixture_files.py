"""Fixture files: nothing lost (atomic writes, --force, interrupted records), nothing trusted (every
damaged set gives a FixtureError naming the file, and the CLI one line and exit 2), and no pickle.

The fuzz test writes a small valid set, damages it in drawn ways (truncation, flipped bytes, deleted and
renamed files, JSON edits of the manifest, metadata edits and dtype/shape changes through safetensors'
own writer, optionally re-sealing the manifest's sha256 so that the deeper checks are reached) and
asserts that loading either gives a valid set or raises FixtureError, never another exception. It costs
about two seconds (100 derandomized examples under the moegate-ci profile).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from moegate.properties import fixture_files
from moegate.properties import fixtures as fx
from moegate.properties.cli import main
from moegate.properties.impls import load_impl
from moegate.properties.problem import RoutingProblem
from moegate.reference import RoutingConfig

REFERENCE = load_impl("reference")
GOLDEN = Path(__file__).resolve().parent / "fixtures"
PACKAGE_DIRS = [Path(fx.__file__).resolve().parents[1] / d for d in ("reference", "properties", "optimized")]

GROUPED = RoutingConfig(num_experts=8, topk=2, num_expert_group=2, topk_group=1, num_fused_shared_experts=1)
PLAIN = RoutingConfig(num_experts=8, topk=2, scoring_func="softmax")


def _cases(seed: int = 0) -> list[fx.FixtureCase]:
    g = torch.Generator().manual_seed(seed)
    a = RoutingProblem(GROUPED, torch.randn(3, 8, generator=g).bfloat16(), 0.1 * torch.randn(8, generator=g))
    b = RoutingProblem(PLAIN, torch.randn(4, 8, generator=g), None, seed=seed)
    return [fx.record_case("a", a, REFERENCE), fx.record_case("b", b, REFERENCE)]


@functools.cache
def _base_set() -> dict[str, bytes]:
    """The bytes of a small valid set: manifest.json, a.safetensors, b.safetensors."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "set"
        fx.write_fixture_set(d, _cases())
        return {p.name: p.read_bytes() for p in d.iterdir()}


def _write_base(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in _base_set().items():
        (d / name).write_bytes(data)
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _reseal(d: Path) -> None:
    """Recompute the manifest's sha256 of every case file that exists, so the deeper checks are reached."""
    path = d / fx.MANIFEST_NAME
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        return
    for entry in manifest["cases"]:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str) and "/" not in entry["file"]:
            f = d / entry["file"]
            if entry["file"] and f.is_file():
                entry["sha256"] = fixture_files.sha256_hex(f.read_bytes())
    path.write_text(json.dumps(manifest))


def _rewrite(path: Path, edit) -> None:
    """Read a case file with safetensors, let `edit(tensors, meta)` change them, write it back with
    safetensors' own writer."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(tensors, meta)
    save_file({k: t.contiguous() for k, t in tensors.items()}, str(path), metadata=meta)


# ---- nothing lost --------------------------------------------------------------------------------------


def test_write_refuses_an_existing_set_without_force_and_replaces_it_with(tmp_path: Path) -> None:
    d = tmp_path / "set"
    fx.write_fixture_set(d, _cases(0))
    before = _snapshot(d)
    with pytest.raises(fx.FixtureSetExistsError, match=re.escape(f"{d} already holds a fixture set")):
        fx.write_fixture_set(d, _cases(1))
    assert _snapshot(d) == before
    (d / "README.md").write_text("kept")
    (d / "old-case.safetensors").write_bytes(b"part of the old set")
    fx.write_fixture_set(d, _cases(1)[1:], force=True)
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "b.safetensors", "manifest.json"]
    assert (d / "README.md").read_text() == "kept"
    assert [c.problem.seed for c in fx.load_fixture_set(d)] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no temporary directory left behind


def test_write_into_a_new_or_empty_directory_needs_no_force(tmp_path: Path) -> None:
    fx.write_fixture_set(tmp_path / "new" / "nested", _cases())
    (tmp_path / "empty").mkdir()
    fx.write_fixture_set(tmp_path / "empty", _cases())
    for d in (tmp_path / "new" / "nested", tmp_path / "empty"):
        assert [c.name for c in fx.load_fixture_set(d)] == ["a", "b"]


def test_an_empty_directory_is_filled_in_place_and_left_empty_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    inode = d.stat().st_ino
    real_replace = os.replace

    def interrupted_at_the_manifest(src, dst):
        if Path(dst).name == fx.MANIFEST_NAME and Path(dst).parent == d:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(fixture_files.os, "replace", interrupted_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        fx.write_fixture_set(d, _cases())
    monkeypatch.undo()
    assert list(d.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    fx.write_fixture_set(d, _cases())
    assert d.stat().st_ino == inode  # the same directory (it may be a shell's current directory)
    assert [c.name for c in fx.load_fixture_set(d)] == ["a", "b"]


def test_a_set_is_not_replaced_from_inside_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "set"
    fx.write_fixture_set(d, _cases())
    monkeypatch.chdir(d)
    with pytest.raises(fx.FixtureSetExistsError, match="holds the current directory"):
        fx.write_fixture_set(".", _cases(1), force=True)
    monkeypatch.chdir(tmp_path)
    assert fx.write_fixture_set("set", _cases(1), force=True) == d / fx.MANIFEST_NAME


def test_a_directory_that_is_not_a_fixture_set_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(fx.FixtureSetExistsError, match="holds no fixture set"):
            fx.write_fixture_set(tmp_path, _cases(), force=force)
    assert _snapshot(tmp_path) == {"notes.txt": b"mine"}


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("when", ["second file", "manifest", "swap"])
def test_an_interrupted_write_leaves_the_previous_set_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, when: str
) -> None:
    d = tmp_path / "set"
    fx.write_fixture_set(d, _cases(0))
    (d / "README.md").write_text("kept")
    before = _snapshot(d)
    calls = {"write": 0}
    real_write, real_replace = fixture_files.atomic_write_bytes, os.replace

    def failing_write(path, data):
        calls["write"] += 1
        if (when == "second file" and calls["write"] == 2) or (
            when == "manifest" and Path(path).name == fx.MANIFEST_NAME
        ):
            real_write(path, data[: len(data) // 2])  # half a file on disk, then the failure
            raise error
        real_write(path, data)

    def failing_replace(src, dst):
        if when == "swap" and Path(dst) == d and ".new-" in Path(src).name:  # new set to the old's place
            raise error
        real_replace(src, dst)

    monkeypatch.setattr(fixture_files, "atomic_write_bytes", failing_write)
    monkeypatch.setattr(fixture_files.os, "replace", failing_replace)
    with pytest.raises(type(error)):
        fx.write_fixture_set(d, _cases(1), force=True)
    monkeypatch.undo()
    assert _snapshot(d) == before
    assert [p.name for p in tmp_path.iterdir()] == ["set"], list(tmp_path.iterdir())
    assert [c.problem.seed for c in fx.load_fixture_set(d)][1] == 0


def test_atomic_write_keeps_the_old_content_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "file.bin"
    fixture_files.atomic_write_bytes(f, b"old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fixture_files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fixture_files.atomic_write_bytes(f, b"new content")
    assert f.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_cli_record_refuses_an_existing_set_without_force(tmp_path: Path) -> None:
    d = tmp_path / "set"
    record = ["fixtures", "record", "--out", str(d), "--preset", "mixtral-8x7b", "--rows", "4", "-q"]
    assert _cli(*record, "--dtypes", "fp32")[0] == 0
    before = _snapshot(d)
    code, out, err = _cli(*record, "--dtypes", "bf16")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert str(d) in err and "--force" in err and "Traceback" not in err
    assert _snapshot(d) == before
    code, out, err = _cli(*record, "--dtypes", "bf16", "--force")
    assert code == 0, err
    assert [c.name for c in fx.load_fixture_set(d)] == ["mixtral-8x7b-bfloat16"]
    assert not (d / "mixtral-8x7b-float32.safetensors").exists()
    code, _, err = _cli("fixtures", "record", "--out", str(tmp_path), "--preset", "mixtral-8x7b", "--force")
    assert code == 2 and err.count("\n") == 1 and "holds no fixture set" in err, err


def test_cli_record_interrupted_half_way_leaves_the_previous_set(tmp_path: Path) -> None:
    d = tmp_path / "set"
    record = ["fixtures", "record", "--out", str(d), "--preset", "mixtral-8x7b", "--rows", "4", "-q"]
    assert _cli(*record)[0] == 0
    before = _snapshot(d)
    impl = tmp_path / "interrupts.py"
    impl.write_text(
        "from moegate.reference import route\ncalls = []\n"
        "def route_then_ctrl_c(scores, bias, config):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2:\n"
        "        raise KeyboardInterrupt\n"
        "    return route(scores, bias, config)\n"
    )
    code, _, err = _cli(*record, "--force", "--seed", "5", "--impl", f"{impl}:route_then_ctrl_c")
    assert code == 130 and "interrupted" in err
    assert _snapshot(d) == before and sorted(p.name for p in tmp_path.iterdir()) == ["interrupts.py", "set"]


# ---- nothing trusted: each damage, one clear error ---------------------------------------------------------


def _set_manifest(d: Path, change) -> None:
    manifest = json.loads((d / fx.MANIFEST_NAME).read_text())
    change(manifest)
    (d / fx.MANIFEST_NAME).write_text(json.dumps(manifest))


def _tensor_edit(name: str, fn):
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        tensors[name] = fn(tensors[name])

    return edit


def _meta_edit(key: str, value: str | None):
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        if value is None:
            del meta[key]
        else:
            meta[key] = value

    return edit


def _config_edit(**changes: Any):
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        meta["config"] = json.dumps({**json.loads(meta["config"]), **changes})

    return edit


def _drop(name: str):
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        del tensors[name]

    return edit


def _edit(file: str, edit):
    """A damage: rewrite `file` with `edit`, then re-seal the manifest's sha256 (so the sha256 passes)."""
    return lambda d: (_rewrite(d / file, edit), _reseal(d))


def _truncate(file: str, size: int, reseal: bool):
    return lambda d: ((d / file).write_bytes(_base_set()[file][:size]), reseal and _reseal(d))


A, B, M = "a.safetensors", "b.safetensors", fx.MANIFEST_NAME
# (label, damage(d), file at fault, words of the message). Case a: bf16 [3, 8] with a bias, W = 3;
# case b: float32 [4, 8] without one, W = 2.
DAMAGES = [
    ("truncated", _truncate(A, 100, reseal=False), A, ["sha256"]),
    ("truncated, resealed", _truncate(A, -7, reseal=True), A, ["not a readable safetensors file"]),
    ("manifest not JSON", lambda d: (d / M).write_text('{"format": "moegate-fixtures",'), M,
     ["not valid JSON"]),
    ("manifest without cases", lambda d: _set_manifest(d, lambda m: m.pop("cases")), M, ["'cases' list"]),
    ("manifest entry without sha256", lambda d: _set_manifest(d, lambda m: m["cases"][1].pop("sha256")), M,
     ["cases[1].sha256=None", "must be a string"]),
    ("manifest naming a path", lambda d: _set_manifest(d, lambda m: m["cases"][0].update(file="../" + A)), M,
     ["cases[0].file='../a.safetensors'", "plain file name"]),
    ("manifest naming a missing file", lambda d: (d / B).unlink(), B, ["does not exist"]),
    ("case renamed", lambda d: (d / A).rename(d / "c.safetensors"), A, ["does not exist"]),
    ("ids int64", _edit(A, _tensor_edit("ids", lambda t: t.long())), A,
     ["ids.dtype=torch.int64", "int32 [T, W] = [3, 3]"]),
    ("weights float64", _edit(B, _tensor_edit("weights", lambda t: t.double())), B,
     ["weights.dtype=torch.float64", "float32"]),
    ("scores float64", _edit(B, _tensor_edit("scores", lambda t: t.double())), B,
     ["scores is torch.float64", "float32, float16 or bfloat16"]),
    ("scores of another E", _edit(B, _tensor_edit("scores", lambda t: t[:, :7])), B, ["(4, 7)", "E = 8"]),
    ("ids of another W", _edit(A, _tensor_edit("ids", lambda t: t[:, :2])), A,
     ["ids.shape=(3, 2)", "[T, W] = [3, 3]"]),
    ("bias of another E", _edit(A, _tensor_edit("bias", lambda t: t[:4])), A,
     ["bias.shape=(4,)", "[E] = [8]"]),
    ("tie_rows uint8", _edit(A, _tensor_edit("tie_rows", lambda t: t.to(torch.uint8))), A,
     ["tie_rows.dtype=torch.uint8", "bool [T] = [3]"]),
    ("tie_rows too long", _edit(A, _tensor_edit("tie_rows", lambda t: torch.cat([t, t]))), A,
     ["tie_rows.shape=(6,)"]),
    ("a tensor missing", _edit(A, _drop("weights")), A, ["holds tensors", "weights"]),
    ("config not JSON", _edit(A, _meta_edit("config", "{num_experts: 8")), A,
     ["metadata 'config' is not valid JSON"]),
    ("config missing", _edit(A, _meta_edit("config", None)), A, ["metadata lacks 'config'"]),
    ("config rejected", _edit(A, _config_edit(topk=9)), A, ["rejected by RoutingConfig", "topk=9"]),
    ("config with an unknown field", _edit(A, _config_edit(experts=8)), A,
     ["rejected by RoutingConfig", "experts"]),
    ("config of another E", _edit(B, _config_edit(num_experts=16)), B, ["E = 16"]),
    ("seed not a number", _edit(B, _meta_edit("seed", "zero")), B, ["seed='zero'", "integer"]),
    ("dtype contradicting", _edit(A, _meta_edit("dtype", "float16")), A, ["dtype='float16'", "'bfloat16'"]),
    ("row stride absurd", _edit(A, _meta_edit("row_stride", "10000000000")), A, ["row_stride='10000000000'"]),
    ("not a moegate file", _edit(A, _meta_edit("format", "other")), A, ["format='other'"]),
    ("another case's name", _edit(A, _meta_edit("name", "b")), A, ["holds case 'b'", "names it 'a'"]),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "file", "words"), [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_set_gives_one_clear_error_naming_the_file(
    tmp_path: Path, damage, file: str, words: list[str]
) -> None:
    d = _write_base(tmp_path / "set")
    damage(d)
    with pytest.raises(fx.FixtureError) as info:
        fx.load_fixture_set(d)
    message = str(info.value)
    assert info.value.path == str(d / file) and message.startswith(f"{d / file}: "), message
    for word in words:
        assert word in message, (word, message)
    with pytest.raises(fx.FixtureError):
        fx.check_fixture_set(d, REFERENCE)
    code, out, err = _cli("fixtures", "check", str(d), "--impl", "reference")
    assert code == 2 and out == "", (out, err)
    assert err.count("\n") == 1 and str(d / file) in err and "Traceback" not in err, err


def test_the_golden_and_kernel_sets_still_load() -> None:
    assert len(fx.load_fixture_set(GOLDEN)) == len(list(GOLDEN.glob("*.safetensors")))
    kernel = GOLDEN.parent / "kernel_fixtures" / "h200"
    assert len(fx.load_fixture_set(kernel)) == len(list(kernel.glob("*.safetensors")))


# ---- nothing trusted: fuzzed ---------------------------------------------------------------------------

FILES = ("manifest.json", "a.safetensors", "b.safetensors")
TENSORS = ("scores", "bias", "ids", "weights", "tie_rows", "extra")
META_KEYS = ("format", "format_version", "config", "seed", "name", "dtype", "bias_dtype", "num_rows",
             "row_stride", "note", "new")  # fmt: skip
CONFIG_FIELDS = (*RoutingConfig.__dataclass_fields__, "unknown")
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=6,
)
SHAPE_EDITS = ("drop_row", "add_row", "drop_col", "add_col", "flatten", "unsqueeze", "empty")

_CASE_FILE = st.sampled_from(FILES[1:])
DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.integers(0, 4000)),
    st.tuples(st.just("flip"), st.sampled_from(FILES),
              st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 255)), min_size=1, max_size=4)),
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(st.just("rename"), st.sampled_from(FILES), st.sampled_from((*FILES, "c.safetensors", "x"))),
    st.tuples(st.just("manifest"), st.sampled_from(("format", "format_version", "cases", "new")),
              st.none() | JSON),
    st.tuples(st.just("manifest_case"), st.integers(0, 2),
              st.sampled_from(("name", "file", "sha256", "config", "num_rows", "new")), st.none() | JSON),
    st.tuples(st.just("manifest_raw"), JSON.map(json.dumps) | st.binary(max_size=40).map(repr)),
    st.tuples(st.just("meta"), _CASE_FILE, st.sampled_from(META_KEYS),
              st.none() | st.text(max_size=12) | JSON.map(json.dumps)),
    st.tuples(st.just("config"), _CASE_FILE, st.sampled_from(CONFIG_FIELDS), JSON),
    st.tuples(st.just("dtype"), _CASE_FILE, st.sampled_from(TENSORS), st.sampled_from(DTYPES)),
    st.tuples(st.just("shape"), _CASE_FILE, st.sampled_from(TENSORS), st.sampled_from(SHAPE_EDITS)),
    st.tuples(st.just("drop"), _CASE_FILE, st.sampled_from(TENSORS)),
)  # fmt: skip


def _reshape(t: torch.Tensor, how: str) -> torch.Tensor:
    if how == "drop_row":
        return t[:-1]
    if how == "add_row":
        return torch.cat([t, t[:1]])
    if how == "drop_col" and t.dim() == 2:
        return t[:, :-1]
    if how == "add_col" and t.dim() == 2:
        return torch.cat([t, t[:, :1]], dim=1)
    if how == "flatten":
        return t.reshape(-1)
    if how == "unsqueeze":
        return t.unsqueeze(0)
    return t[:0]


def _apply(d: Path, damage: tuple) -> None:
    kind, *args = damage
    if kind in ("truncate", "flip", "delete", "rename"):
        path = d / args[0]
        if not path.is_file():
            return
        data = path.read_bytes()
        if kind == "truncate":
            path.write_bytes(data[: args[1] % (len(data) + 1)])
        elif kind == "flip":
            buf = bytearray(data)
            for pos, xor in args[1]:
                if buf:
                    buf[pos % len(buf)] ^= xor
            path.write_bytes(bytes(buf))
        elif kind == "delete":
            path.unlink()
        else:
            path.rename(d / args[1])
        return
    if kind.startswith("manifest"):
        path = d / fx.MANIFEST_NAME
        if kind == "manifest_raw":
            path.write_text(args[0])
            return
        try:
            manifest = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return
        if not isinstance(manifest, dict):
            return
        target, key, value = manifest, args[-2], args[-1]
        if kind == "manifest_case":
            cases = manifest.get("cases")
            if not isinstance(cases, list) or not cases or not isinstance(cases[args[0] % len(cases)], dict):
                return
            target = cases[args[0] % len(cases)]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
        path.write_text(json.dumps(manifest))
        return
    path = d / args[0]
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # already damaged past reading: this edit does not apply
        return
    if kind == "meta":
        if args[2] is None:
            meta.pop(args[1], None)
        else:
            meta[args[1]] = args[2]
    elif kind == "config":
        try:
            config = json.loads(meta.get("config", ""))
        except ValueError:
            return
        if not isinstance(config, dict):
            return
        config[args[1]] = args[2]
        meta["config"] = json.dumps(config)
    else:
        name = args[1]
        if name not in tensors and name != "extra":
            return
        t = tensors.get(name, torch.zeros(2))
        if kind == "dtype":
            tensors[name] = t.to(args[2])
        elif kind == "shape":
            tensors[name] = _reshape(t, args[2]).contiguous()
        else:
            tensors.pop(name, None)
    save_file(tensors, str(path), metadata=meta)


def _assert_valid(case: fx.FixtureCase) -> None:
    p, config = case.problem, case.problem.config
    T, W = p.num_rows, config.output_width
    assert p.scores.shape == (T, config.num_experts) and case.ids.shape == (T, W) == case.weights.shape
    assert case.ids.dtype == torch.int32 and case.weights.dtype == torch.float32
    assert case.tie_rows.dtype == torch.bool and case.tie_rows.shape == (T,)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damages=st.lists(DAMAGE, min_size=1, max_size=3), reseal=st.booleans())
def test_fuzzed_damage_loads_a_valid_set_or_raises_fixture_error(damages: list, reseal: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = _write_base(Path(tmp) / "set")
        for damage in damages:
            _apply(d, damage)
        if reseal:
            _reseal(d)
        try:
            cases = fx.load_fixture_set(d)
        except fx.FixtureError as exc:
            assert exc.path.startswith(str(d)) and "\n" not in str(exc), str(exc)
            code, out, err = _cli("fixtures", "check", str(d), "--impl", "reference", "-q")
            assert code == 2 and out == "" and err.count("\n") == 1 and str(d) in err, (code, out, err)
            return
        for case in cases:
            _assert_valid(case)
        fx.check_fixture_set(d, REFERENCE)  # a loaded set replays (pass or fail) without raising
        code, _, err = _cli("fixtures", "check", str(d), "--impl", "reference", "-q")
        assert code in (0, 1), err


# ---- no pickle ------------------------------------------------------------------------------------------

PICKLE_USE = re.compile(
    r"\btorch\.load\s*\(|\bfrom\s+torch\s+import\s+load\b|^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle|joblib)\b"
    r"|allow_pickle\s*=\s*True|weights_only\s*=\s*False",
    re.MULTILINE,
)


def test_no_code_in_the_package_loads_through_pickle() -> None:
    offenders = [
        f"{path}: {m.group(0).strip()}"
        for folder in PACKAGE_DIRS
        for path in sorted(folder.rglob("*.py"))
        for m in PICKLE_USE.finditer(path.read_text())
    ]
    assert PACKAGE_DIRS[1].name == "properties" and (PACKAGE_DIRS[1] / "fixtures.py").is_file()
    assert not offenders, offenders
    # The pattern does catch what it is for.
    assert PICKLE_USE.search("x = torch.load(path)") and PICKLE_USE.search("import pickle\n")


def test_fixture_sets_load_and_replay_with_pickle_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a fixture went through pickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load"),
                         (torch.serialization, "load")):  # fmt: skip
        monkeypatch.setattr(module, name, refuse)
    cases = fx.load_fixture_set(GOLDEN)
    assert cases and fx.check_case(cases[0], REFERENCE, "cpu").ok
