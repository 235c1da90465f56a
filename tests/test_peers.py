"""The peer adapters on the CPU: contracts as data, what verify draws for them, how they are found and
built, how their arguments map onto the engines' launchers, and the `moegate peers` command. The real
builds and runs are GPU tests (tests/test_peer_findings.py); nothing here needs the engines' sources."""

from __future__ import annotations

import ctypes
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from moegate.properties import fixtures as fx
from moegate.properties.cli import main
from moegate.properties.impls import load_impl
from moegate.properties.peers import PEER_NAMES, Contract, contract_configs, get_peer
from moegate.properties.peers import build as peer_build
from moegate.properties.peers.flashinfer import CAKE_CONTRACT, DEFAULT_CONTRACT, FlashInferPeer
from moegate.properties.peers.vllm import CONTRACT as VLLM_CONTRACT
from moegate.properties.peers.vllm import VllmPeer
from moegate.properties.suite import verify
from moegate.reference import get_preset, route

HERE = Path(__file__).resolve().parent
FAKES = HERE / "bench_fake_impls.py"


# ---- contracts ------------------------------------------------------------------------------------------


def test_a_contract_says_why_it_rejects_a_call() -> None:
    v3 = get_preset("deepseek-v3")
    assert DEFAULT_CONTRACT.rejects(DEFAULT_CONTRACT.project(v3), torch.bfloat16, torch.bfloat16) == []
    reasons = DEFAULT_CONTRACT.rejects(v3, torch.bfloat16, torch.float32, num_rows=4, dense_rows=False)
    text = "; ".join(reasons)
    assert "apply_routed_scaling_factor_on_output=False" in text and "num_fused_shared_experts=1" in text
    assert "bias dtype float32 with bfloat16 scores" in text and "row stride" in text
    assert DEFAULT_CONTRACT.rejects(
        DEFAULT_CONTRACT.project(get_preset("qwen3-moe")), torch.float32, None
    ) == [
        "scoring_func='softmax' (supports ['sigmoid'])",
        "no bias (a bias is required)",
    ]
    limits = [
        r for r in DEFAULT_CONTRACT.rejects(get_preset("qwen3-next-80b-a3b")) if r.startswith("the limit")
    ]
    assert limits == [
        "the limit K <= 8 (E=512, G=1, Kg=1, K=10)",
        "the limit G > 1 or E <= 384 (E=512, G=1, Kg=1, K=10)",
    ]
    assert CAKE_CONTRACT.rejects(DEFAULT_CONTRACT.project(v3), num_rows=0) == ["T=0 rows (supports T >= 1)"]


def test_projection_keeps_the_shape_and_sets_the_peers_fixed_flags() -> None:
    projected = DEFAULT_CONTRACT.project(get_preset("deepseek-v3"))
    assert (projected.num_experts, projected.num_expert_group, projected.topk_group, projected.topk) == (
        256,
        8,
        4,
        8,
    )
    assert projected.apply_routed_scaling_factor_on_output and projected.num_fused_shared_experts == 0
    assert projected.renormalize and projected.scoring_func == "sigmoid"
    presets = [name for name, _ in VLLM_CONTRACT.presets()]
    assert "deepseek-v3" in presets and "kimi-k2" in presets
    assert "llama-4-maverick" not in presets  # no correction bias: a kernel that requires one cannot route it
    assert "qwen3-moe" not in presets  # softmax


def test_a_contract_lists_the_spec_features_it_lacks_and_round_trips_as_json() -> None:
    missing = DEFAULT_CONTRACT.unsupported_features()
    assert "scoring_func='softmax'" in missing and "fused shared experts (S > 0)" in missing
    assert any("float32 weights" in m for m in missing) and any("row stride" in m for m in missing)
    doc = json.loads(json.dumps(DEFAULT_CONTRACT.to_dict()))
    assert doc["weights"] == "scores" and doc["bias_dtypes"] == "scores" and "K <= 8" in doc["limits"]
    assert get_peer("compile").contract.unsupported_features() == []
    text = DEFAULT_CONTRACT.describe()
    assert "limits: G <= 32" in text and "declared in: flashinfer 0.7.2.post1" in text


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("scoring_funcs", ("tanh",), "scoring_funcs contains 'tanh'"),
        ("bias", "sometimes", "bias='sometimes'"),
        ("weights", "float64", "weights='float64'"),
        ("row_stride", "any-ish", "row_stride='any-ish'"),
        ("limits", ("E <= bad_name",), "may only use"),
    ],
)
def test_a_malformed_contract_is_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Contract(name="x", source="test", **{field: value})


@pytest.mark.parametrize("contract", [DEFAULT_CONTRACT, CAKE_CONTRACT, VLLM_CONTRACT], ids=lambda c: c.name)
def test_only_accepted_configs_are_drawn(contract: Contract) -> None:
    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(config=contract_configs(contract))
    def drawn(config) -> None:
        assert contract.rejects(config) == []

    drawn()


def test_verify_judges_bfloat16_weights_on_their_rounding() -> None:
    # The reference, weights written in bfloat16 (a FlashInfer-like kernel doing it right): passes.
    def rounded(scores, bias, config):
        ids, weights = route(scores, bias, config)
        return ids, weights.to(scores.dtype).float()

    def truncated(scores, bias, config):
        ids, weights = route(scores, bias, config)
        return ids, (weights.view(torch.int32) & ~0xFFFF).view(torch.float32)

    ok = verify(
        rounded, contract=DEFAULT_CONTRACT, dtypes=["bfloat16"], max_examples=40, properties=["oracle"]
    )
    assert ok.ok, ok.format()
    bad = verify(
        truncated, contract=DEFAULT_CONTRACT, dtypes=["bfloat16"], max_examples=60, properties=["oracle"]
    )
    assert not bad.ok and "[routed_weights]" in (bad.results[0].failure or "")
    assert "allowed [" in (bad.results[0].failure or "") and "in bfloat16" in (bad.results[0].failure or "")


def test_verify_draws_only_what_the_contract_accepts_and_says_what_it_left_out() -> None:
    seen = []

    def strict(scores, bias, config):
        dense = scores.shape[0] < 2 or scores.stride(0) == config.num_experts
        reasons = DEFAULT_CONTRACT.rejects(config, scores.dtype, None if bias is None else bias.dtype,
                                           num_rows=scores.shape[0], dense_rows=dense)  # fmt: skip
        assert not reasons, reasons
        seen.append(config)
        ids, weights = route(scores, bias, config)
        return ids, weights.to(scores.dtype).float()

    report = verify(strict, contract=DEFAULT_CONTRACT, max_examples=30)
    assert report.ok, report.format()
    assert seen and all(c.scoring_func == "sigmoid" and c.num_fused_shared_experts == 0 for c in seen)
    text = report.format()
    assert "judged on the contract flashinfer-default declares" in text
    assert "scoring_func='softmax'" in text  # the SPEC features it does not support, beside the verdict


def test_a_launcher_that_refuses_a_declared_config_is_a_finding() -> None:
    def refuses_single_group(scores, bias, config):
        if config.num_expert_group == 1 and config.topk > 1:
            raise RuntimeError("unsupported configuration (n_group=1)")
        ids, weights = route(scores, bias, config)
        return ids, weights.to(scores.dtype).float()

    report = verify(refuses_single_group, contract=DEFAULT_CONTRACT, max_examples=60, properties=["oracle"])
    assert not report.ok and "unsupported configuration" in (report.results[0].failure or "")


# ---- sources and builds -------------------------------------------------------------------------------


def _fake_flashinfer_tree(root: Path) -> None:
    """Every file of FlashInfer's layout, the kernel file holding just the markers the build trims at and a
    launcher with FlashInfer's signature, so that the real shim compiles against it."""
    from moegate.properties.peers.flashinfer import LAYOUT

    for rel in LAYOUT.files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / LAYOUT.files[0]).write_text(
        "#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n#include <cstdint>\n"
        '#include "tvm_ffi_utils.h"\nusing tvm::ffi::Optional;\n'
        "namespace tensorrt_llm::kernels {\n"
        "template <typename InputT, typename BiasT, typename OutputT, typename IdxT>\n"
        "void invokeNoAuxTc(InputT*, BiasT*, OutputT*, IdxT*, int64_t, int64_t, int64_t, int64_t, int64_t,\n"
        "                   double, bool, cudaStream_t, int16_t*) {}\n"
        "}\n"
        "namespace flashinfer::trtllm_dsv3_fused_routing {\nvoid NoAuxTc() { tvm::ffi::nothing(); }\n}\n"
    )
    (root / "flashinfer/_build_meta.py").write_text('__version__ = "9.9.9"\n')


def test_sources_are_found_in_a_directory_a_wheel_or_the_default_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moegate.properties.peers.flashinfer import LAYOUT

    monkeypatch.setenv("MOEGATE_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    _fake_flashinfer_tree(tree)
    monkeypatch.setenv("MOEGATE_PEER_SOURCES", str(tree))
    found = peer_build.find_sources(LAYOUT)
    assert found.root == tree and found.version == "9.9.9"
    wheel = tmp_path / "flashinfer_python-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for rel in LAYOUT.files:
            z.write(tree / rel, rel)
        z.writestr("flashinfer/data/unrelated/huge.bin", b"x" * 1000)
    monkeypatch.setenv("MOEGATE_PEER_SOURCES", str(wheel))
    extracted = peer_build.find_sources(LAYOUT)
    assert extracted.version == "9.9.9" and extracted.digest() == found.digest()
    assert not (extracted.root / "flashinfer/data/unrelated").exists()  # only the files a build needs
    monkeypatch.delenv("MOEGATE_PEER_SOURCES")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".peers").mkdir()
    tree.rename(tmp_path / ".peers" / "tree")
    assert peer_build.find_sources(LAYOUT).root == tmp_path / ".peers" / "tree"


def test_missing_sources_name_every_place_looked_and_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moegate.properties.peers.vllm import LAYOUT

    monkeypatch.setenv("MOEGATE_PEER_SOURCES", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(peer_build.PeerUnavailable) as err:
        peer_build.find_sources(LAYOUT)
    text = str(err.value)
    assert "vLLM sources not found" in text and "nowhere" in text and ".peers" in text
    assert "vllm-0.33.0.tar.gz" in text and "MOEGATE_PEER_SOURCES" in text


def test_an_sdist_yields_its_top_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moegate.properties.peers.vllm import LAYOUT

    monkeypatch.setenv("MOEGATE_CACHE_DIR", str(tmp_path / "cache"))
    sdist = tmp_path / "vllm-9.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        for rel, text in (*((r, "// kernel\n") for r in LAYOUT.files[:2]), ("PKG-INFO", "Version: 9.1.0\n")):
            data = text.encode()
            info = tarfile.TarInfo(f"vllm-9.1.0/{rel}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    monkeypatch.setenv("MOEGATE_PEER_SOURCES", str(sdist))
    assert peer_build.find_sources(LAYOUT).version == "9.1.0"


def test_no_nvcc_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setattr(peer_build.Path, "is_file", lambda self: False)
    with pytest.raises(peer_build.PeerUnavailable, match="nvcc"):
        peer_build.find_nvcc()


def test_trimming_needs_the_markers_of_the_version_it_knows() -> None:
    text = '#include "a.h"\nint kernel;\nnamespace binding {\nvoid f();\n}\n'
    out = peer_build.trim_source(text, "f.cu", ['#include "a.h"'], "namespace binding {")
    assert "int kernel;" in out and "void f" not in out and "removed by moegate" in out
    with pytest.raises(peer_build.PeerUnavailable, match="no longer contains"):
        peer_build.trim_source(text, "f.cu", ['#include "b.h"'], "namespace binding {")
    with pytest.raises(peer_build.PeerUnavailable, match="no longer contains"):
        peer_build.trim_source(text, "f.cu", [], "namespace other {")


@pytest.mark.skipif(not any(Path(p).is_file() for p in ("/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc"))
                    and peer_build.shutil.which("nvcc") is None, reason="nvcc is not installed")  # fmt: skip
def test_the_shim_builds_against_a_fake_tree_once_per_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOEGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".peers" / "cuda-include").mkdir(parents=True)
    for header in ("cublas_v2.h", "cublasLt.h", "curand_kernel.h"):
        (tmp_path / ".peers" / "cuda-include" / header).write_text("")
    tree = tmp_path / ".peers" / "flashinfer"
    _fake_flashinfer_tree(tree)
    peer = FlashInferPeer(cake=False)
    sources = peer_build.find_sources(peer.layout())
    plan = peer.plan(sources, "80")
    plan = type(plan)(
        **{**plan.__dict__, "units": plan.units[:1]}
    )  # the shim alone (the fake .cpp are empty)
    first = peer_build.build_library(plan, log=lambda _: None)
    lib = ctypes.CDLL(str(first))
    assert lib.moegate_peer_route and lib.moegate_peer_error
    assert peer_build.build_library(plan, log=pytest.fail) == first  # cached: no second build
    other = type(plan)(**{**plan.__dict__, "options": (*plan.options, "-DMOEGATE_TEST=1")})
    assert peer_build.build_key(other, peer_build.find_nvcc()) != peer_build.build_key(
        plan, peer_build.find_nvcc()
    )


# ---- argument mapping ----------------------------------------------------------------------------------


class _RecordingLib:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def moegate_peer_route(self, *args: object) -> int:
        self.calls.append(args)
        return 0


def test_flashinfer_gets_the_configs_groups_topk_and_scaling() -> None:
    lib = _RecordingLib()
    config = DEFAULT_CONTRACT.project(get_preset("deepseek-v3"))
    scores, bias = torch.zeros(5, 256, dtype=torch.bfloat16), torch.zeros(256, dtype=torch.bfloat16)
    values, ids = torch.empty(5, 8, dtype=torch.bfloat16), torch.empty(5, 8, dtype=torch.int32)
    FlashInferPeer(cake=True).launch(lib, scores, bias, config, values, ids, stream=1234)
    (args,) = lib.calls
    assert args[:2] == (1, 1)  # bfloat16 scores, bfloat16 bias (moegate's dtype codes)
    assert args[2:6] == (scores.data_ptr(), bias.data_ptr(), values.data_ptr(), ids.data_ptr())
    assert args[6:12] == (5, 256, 8, 4, 8, 2.5) and args[12:] == (1, 1234)  # T, E, G, Kg, K, r; PDL, stream


def test_vllm_gets_renormalize_and_a_float32_bias() -> None:
    lib = _RecordingLib()
    config = VLLM_CONTRACT.project(get_preset("kimi-k2")).replace(renormalize=False)
    scores, bias = torch.zeros(3, 384, dtype=torch.float16), torch.zeros(384)
    values, ids = torch.empty(3, 8), torch.empty(3, 8, dtype=torch.int32)
    VllmPeer().launch(lib, scores, bias, config, values, ids, stream=7)
    (args,) = lib.calls
    assert args[:2] == (2, 0) and args[6:] == (3, 384, 1, 1, 8, 0, config.routed_scaling_factor, 7)


def test_a_peer_refuses_what_its_contract_does_not_accept_before_any_gpu_work() -> None:
    peer = FlashInferPeer(cake=False)
    with pytest.raises(TypeError, match="CUDA tensors only"):
        peer(torch.zeros(2, 256), torch.zeros(256), DEFAULT_CONTRACT.project(get_preset("deepseek-v3")))


# ---- by name, on the command line ----------------------------------------------------------------------


def test_peers_load_by_name_with_their_contract_or_say_why_not() -> None:
    compiled = load_impl("compile")
    assert compiled.contract is not None and compiled.default_device == "cuda"
    for name in PEER_NAMES[:3]:
        reason = get_peer(name).unavailable
        if reason is not None:  # no GPU here, or no sources
            with pytest.raises(ValueError, match=f"impl='{name}' cannot run here"):
                load_impl(name)
    fake = load_impl(f"{FAKES}:fake_peer")
    assert fake.contract is not None and fake.contract.name == "fake-peer"


def test_moegate_peers_lists_every_peer_and_its_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["peers", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["peers"]] == list(PEER_NAMES)
    by_name = {p["name"]: p for p in doc["peers"]}
    assert by_name["flashinfer-default"]["contract"]["limits"][0] == "G <= 32"
    assert main(["peers"]) == 0
    text = capsys.readouterr().out
    assert "flashinfer-cake:" in text and "SPEC features it does not support" in text and "nvcc:" in text


def test_moegate_peers_extract_copies_only_what_the_builds_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moegate.properties.peers.flashinfer import LAYOUT

    monkeypatch.setenv("MOEGATE_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    _fake_flashinfer_tree(tree)
    wheel = tmp_path / "flashinfer_python-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for rel in LAYOUT.files:
            z.write(tree / rel, rel)
    out = tmp_path / "src"
    assert main(["peers", "extract", str(wheel), "--out", str(out)]) == 0
    extracted = out / "flashinfer_python-9.9.9-py3-none-any"
    assert sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*") if p.is_file()) == sorted(
        LAYOUT.files
    )
    assert main(["peers", "extract", str(wheel), "--out", str(out)]) == 2  # never over an existing tree...
    assert "--force" in capsys.readouterr().err
    assert main(["peers", "extract", str(wheel), "--out", str(out), "--force"]) == 0  # ...unless told
    assert main(["peers", "extract", str(tmp_path / "other.zip"), "--out", str(out)]) == 2


def test_verify_with_a_peer_that_cannot_run_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if get_peer("flashinfer-default").unavailable is None:
        pytest.skip("flashinfer-default can run here")
    assert main(["verify", "--impl", "flashinfer-default"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run here" in err[0]


def test_fixtures_record_with_a_contract_records_what_the_peer_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "before"
    impl = f"{FAKES}:fake_peer"
    argv = ["fixtures", "record", "--impl", impl, "--preset", "deepseek-v3", "--preset", "kimi-k2",
            "--dtypes", "bfloat16", "--rows", "8", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "skipped kimi-k2-bfloat16: fake-peer does not accept it" in text
    (case,) = fx.load_fixture_set(out)
    config = case.problem.config
    assert config.num_experts == 256 and config.num_fused_shared_experts == 0
    assert config.apply_routed_scaling_factor_on_output and case.problem.bias.dtype == torch.float32
    assert case.weight_dtype == torch.bfloat16  # the peer writes bfloat16 weights: a replay allows its ulp
    assert main(["fixtures", "check", str(out), "--impl", impl]) == 0
