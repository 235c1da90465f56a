"""The fused kernel on real GPUs: several threads, several streams, several devices, and at scale.

- concurrent first calls from several threads compile once and all succeed; concurrent calls on several
  streams give bitwise the results of serial calls (one GPU);
- on two GPUs (skipped with a reason on one): the same batch on cuda:0 and cuda:1, in both orders and from
  two threads at once, bitwise the same, each computed where its inputs are; `moegate verify --workers 2
  --device cuda` puts one worker on each GPU;
- the scale property at full size per dtype (past 2^32 / E rows for DeepSeek-V3), and the planted 32-bit
  row offset (MOEGATE_PLANT_ROW_OFFSET_32) killed by it.

Every check uses fresh random inputs and poisoned output buffers, and checks ids in range.
"""

from __future__ import annotations

import importlib
import threading
import time

import pytest
import torch

from moegate import reference
from moegate.optimized import build, build_route, native, route
from moegate.properties.problem import RoutingProblem
from moegate.properties.scale import scale_rows_for
from moegate.properties.suite import verify

pytestmark = pytest.mark.gpu

TWO_GPUS = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="needs two GPUs in one process (a machine of kind nvidia-h200-x2)",
)
CONFIG = reference.get_preset("deepseek-v3")


def inputs(num_rows: int, seed: int, device: str = "cuda") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scores = (torch.randn(num_rows, 256, generator=g) * 2).to(torch.bfloat16)
    bias = torch.randn(256, generator=g) * 0.05
    return scores.to(device), bias.to(device)


def poisoned(num_rows: int, device: str = "cuda") -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.full((num_rows, CONFIG.output_width), -7, dtype=torch.int32, device=device),
        torch.full((num_rows, CONFIG.output_width), float("nan"), device=device),
    )


def checked(ids: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    routed = ids[:, : CONFIG.topk]
    assert bool(((routed >= 0) & (routed < CONFIG.num_experts)).all()) and not bool(weights.isnan().any())
    return ids.cpu(), weights.cpu()


def same_bits(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1].view(torch.int32), b[1].view(torch.int32))


def test_concurrent_first_calls_from_threads_compile_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for cache in ("_binaries", "_modules", "_kernels", "compile_counts"):  # as in a fresh process
        monkeypatch.setattr(build, cache, {})
    # and no kernels registered with the compiled launcher yet (its calls never reach the compile)
    route_module = importlib.import_module("moegate.optimized.route")
    monkeypatch.setattr(route_module, "_records", native.Records())
    cases = [inputs(64, seed) for seed in range(8)]
    results: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    errors: list[BaseException] = []

    def first_call(i: int) -> None:
        try:
            with torch.cuda.stream(torch.cuda.Stream()):
                out = route(*cases[i], CONFIG, out=poisoned(64))
                torch.cuda.current_stream().synchronize()
            results[i] = checked(*out)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert list(build.compile_counts.values()) == [1]  # one compile for eight concurrent first calls
    for i, case in enumerate(cases):
        assert same_bits(results[i], checked(*route(*case, CONFIG, out=poisoned(64))))


def test_concurrent_streams_give_the_serial_results() -> None:
    cases = [inputs(4096 + 37 * i, 100 + i) for i in range(6)]
    serial = [checked(*route(*case, CONFIG, out=poisoned(case[0].shape[0]))) for case in cases]
    streams = [torch.cuda.Stream() for _ in cases]
    outs = []
    for stream, case in zip(streams, cases, strict=True):
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            outs.append(route(*case, CONFIG, out=poisoned(case[0].shape[0])))
    torch.cuda.synchronize()
    for got, want in zip(outs, serial, strict=True):
        assert same_bits(checked(*got), want)


@TWO_GPUS
def test_two_gpus_in_both_orders_and_from_two_threads() -> None:
    scores, bias = inputs(3000, 7, "cpu")
    expected = reference.route(scores.float().to(torch.bfloat16), bias, CONFIG)

    def on(device: str) -> tuple[torch.Tensor, torch.Tensor]:
        s, b = scores.to(device), bias.to(device)
        ids, weights = route(s, b, CONFIG, out=poisoned(3000, device))
        assert ids.device == s.device and weights.device == s.device  # computed where the inputs are
        torch.cuda.synchronize(device)
        return checked(ids, weights)

    first = [on("cuda:0"), on("cuda:1")]
    second = [on("cuda:1"), on("cuda:0")][::-1]
    threaded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    threads = [
        threading.Thread(target=lambda d=d: threaded.__setitem__(d, on(d))) for d in ("cuda:0", "cuda:1")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [*first, *second, threaded["cuda:0"], threaded["cuda:1"]]
    assert all(same_bits(run, runs[0]) for run in runs)
    assert torch.equal(
        runs[0][0], expected[0]
    )  # the reference's ids (weights: within ulps, tested elsewhere)


@TWO_GPUS
def test_verify_with_two_workers_puts_one_on_each_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    from moegate.properties.cli import main

    start = time.perf_counter()
    code = main(["verify", "--impl", "optimized", "--device", "cuda", "--workers", "2", "--examples", "30",
                 "--seed", "1", "--json"])  # fmt: skip
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cuda:0" in out and "cuda:1" in out, out
    print(f"verify --workers 2 on two GPUs: {seconds:.1f}s")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_scale_property_at_full_size(dtype: str) -> None:
    torch_dtype = getattr(torch, dtype)
    rows = scale_rows_for(256, CONFIG.output_width, torch_dtype, torch.device("cuda"))
    assert rows * 256 > 2**31  # past every 32-bit signed element offset of DeepSeek-V3
    start = time.perf_counter()
    report = verify(route, properties=["scale"], configs=["deepseek-v3"], dtypes=[dtype], device="cuda",
                    max_examples=2, seed=3)  # fmt: skip
    assert report.ok, report.format()
    print(f"scale {dtype}: T = {rows} rows ({rows * 256 / 2**32:.2f} x 2^32 elements), "
          f"{report.results[0].examples} examples, {time.perf_counter() - start:.1f}s")  # fmt: skip


def test_the_planted_32_bit_row_offset_is_killed_by_the_scale_property() -> None:
    planted = build_route(("MOEGATE_PLANT_ROW_OFFSET_32",))
    small = RoutingProblem(CONFIG, *inputs(4096, 5))
    assert same_bits(  # right on a batch of every size a test usually routes
        checked(*planted(small.scores, small.bias, CONFIG)), checked(*route(small.scores, small.bias, CONFIG))
    )
    report = verify(planted, properties=["scale"], configs=["deepseek-v3"], dtypes=["bfloat16"],
                    device="cuda", max_examples=2, seed=3)  # fmt: skip
    assert not report.ok
    failure = report.results[0].failure or ""
    rows = [int(w) for w in failure.replace(",", " ").replace(":", " ").split() if w.isdigit()]
    assert any(r >= 2**32 // 256 for r in rows), failure  # a row past the 32-bit wrap is named
