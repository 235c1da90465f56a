"""`verify_parallel`: the property suite spread over several worker processes, one merged Report.

The engine is the standard library's `concurrent.futures.ProcessPoolExecutor` with the 'spawn' start
method (a fresh interpreter per worker: no CUDA state or threads inherited from the parent), not a
scheduler of our own. The work is split deterministically:

- one task per property, in the suite's order; when there are fewer properties than workers (and more
  than one dtype), one task per (property, dtype), each with ceil(examples / dtypes) examples, so a
  property still gets about its budget; the parts' counts are summed in the merged result;
- each worker loads the implementation by name (`impls.load_impl(impl_spec)`: functions do not cross
  process boundaries) and runs `suite.verify(impl.fn, properties=[...], dtypes=[...], ...)` with the
  profile resolved once in the parent;
- devices: with `device="cuda"` (no index) and several GPUs visible, worker i runs on cuda:(i % count)
  (set in the worker before anything touches CUDA); with one GPU every worker shares cuda:0; a device
  with an index, or the CPU, is used by every worker;
- CPU threads: each worker calls torch.set_num_threads(max(1, cores // workers));
- each worker imports the moegate modules the parent has loaded: Hypothesis biases its draws towards
  the literal constants of the local modules loaded (moegate's own, installed from a checkout), so the
  same set is needed for the same examples.

Results come back as plain data: a failing property's shrunk counterexample travels as safetensors
bytes (`fixture_files.safetensors_bytes`), not as pickled tensors. The merged Report lists the
properties in the order a one-worker run does; its `seconds` is the wall time. A worker that raises
outside a property (an import that fails in the worker, a misconfiguration) or dies (a crash, a kill)
raises `WorkerError` in the parent at once; the remaining workers are stopped, nothing hangs.

With the derandomized ci profile (or a `seed`), each property draws the same examples in a worker as
in a one-worker run, so verdicts and example counts match (tests/test_parallel.py checks it), as long
as the implementation's module is the only other local code loaded (a user's own local modules that
the parent imported by other means can shift the draws).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import torch

from moegate.reference import SCORE_DTYPES, RoutingConfig

from .fixture_files import safetensors_bytes
from .impls import load_impl
from .problem import RoutingProblem, format_config
from .strategies import parse_dtypes
from .suite import PROPERTIES, PropertyResult, Report, resolve_profile

ProgressFn = Callable[[str, int, "int | None"], None]


class WorkerError(RuntimeError):
    """A verify worker raised outside a property, or its process died; the message says which task."""


@dataclass(frozen=True)
class Task:
    """One unit of work: these properties with these score dtypes and this example budget."""

    properties: tuple[str, ...]
    dtypes: tuple[torch.dtype, ...]
    max_examples: int | None

    def describe(self) -> str:
        dtypes = ", ".join(str(d).replace("torch.", "") for d in self.dtypes)
        return f"properties {list(self.properties)} with dtypes [{dtypes}]"


def plan_tasks(
    properties: Sequence[str], dtypes: Sequence[torch.dtype], workers: int, examples: int
) -> list[Task]:
    """The tasks, deterministically: one per property; one per (property, dtype), each with
    ceil(examples / len(dtypes)) examples, when there are fewer properties than workers."""
    if len(properties) >= workers or len(dtypes) == 1:
        return [Task((name,), tuple(dtypes), examples) for name in properties]
    part = math.ceil(examples / len(dtypes))
    return [Task((name,), (dtype,), part) for name in properties for dtype in dtypes]


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_device(device: str, index: int, gpu_count: int) -> str:
    """The device of worker `index`: cuda:(index % count) for a bare "cuda" with several GPUs, else
    `device` unchanged."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and gpu_count > 1:
        return f"cuda:{index % gpu_count}"
    return str(dev)


# ---- in the worker -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def moegate_modules() -> list[str]:
    """The moegate modules loaded in this process (but a `__main__`, which would run a command)."""
    return sorted(
        name
        for name in list(sys.modules)
        if (name == "moegate" or name.startswith("moegate.")) and not name.endswith("__main__")
    )


def _init_worker(index_queue: Any, device: str, gpu_count: int, threads: int, modules: list[str]) -> None:
    """Runs first in each worker process: its index, its device, its CPU threads, and the parent's
    moegate modules.

    Why the modules: Hypothesis draws with a bias towards the literal constants of the local
    (non-site-packages) modules loaded at the time, moegate's own included when it is installed from a
    checkout; a worker that had loaded fewer of them would draw other examples than the parent."""
    index = index_queue.get(timeout=120)
    torch.set_num_threads(threads)
    dev = worker_device(device, index, gpu_count)
    if torch.device(dev).type == "cuda" and torch.device(dev).index is not None:
        torch.cuda.set_device(torch.device(dev))
    for name in modules:
        with contextlib.suppress(Exception):  # a module that fails here only changes the examples drawn
            importlib.import_module(name)
    _WORKER.update(index=index, device=dev)


def _problem_to_wire(problem: RoutingProblem) -> dict[str, Any]:
    tensors = {"scores": problem.scores}
    if problem.bias is not None:
        tensors["bias"] = problem.bias
    stride = problem.scores.stride(0) if problem.num_rows > 1 else problem.config.num_experts
    return {
        "config": problem.config.to_dict(),
        "tensors": safetensors_bytes(tensors, {}),
        "row_stride": int(stride),
        "seed": problem.seed,
        "note": problem.note,
    }


def _problem_from_wire(wire: dict[str, Any]) -> RoutingProblem:
    from safetensors.torch import load

    tensors = load(wire["tensors"])
    config = RoutingConfig(**wire["config"])
    scores, (num_rows, num_experts) = tensors["scores"], tensors["scores"].shape
    if num_rows > 1 and wire["row_stride"] > num_experts:  # the row-strided layout, NaN between rows
        wide = torch.full((num_rows, wire["row_stride"]), float("nan"), dtype=scores.dtype)
        wide[:, :num_experts] = scores
        scores = wide[:, :num_experts]
    return RoutingProblem(config, scores, tensors.get("bias"), seed=wire["seed"], note=wire["note"])


def _run_task(impl_spec: str, task: Task, options: dict[str, Any]) -> dict[str, Any]:
    """Runs in a worker: verify `task`'s properties; results as plain data."""
    from .suite import verify

    impl = load_impl(impl_spec)
    report = verify(
        impl.fn,
        contract=impl.contract,
        properties=list(task.properties),
        dtypes=list(task.dtypes),
        max_examples=task.max_examples,
        device=_WORKER["device"],
        **options,
    )
    results = []
    for r in report.results:
        fields = {k: getattr(r, k) for k in ("name", "examples", "passed", "failed", "seconds", "failure",
                                             "replay")}  # fmt: skip
        fields["counterexample"] = None if r.counterexample is None else _problem_to_wire(r.counterexample)
        results.append(fields)
    return {"device": _WORKER["device"], "worker": _WORKER["index"], "results": results}


# ---- in the parent -------------------------------------------------------------------------------------


def _merge(name: str, parts: list[tuple[Task, dict[str, Any]]]) -> PropertyResult:
    """One PropertyResult from a property's parts (in dtype order): counts and seconds summed, the first
    failing part's failure, counterexample and replay."""
    merged = PropertyResult(name=name, examples=0, passed=0, failed=0, seconds=0.0)
    for task, fields in parts:
        merged.examples += fields["examples"]
        merged.passed += fields["passed"]
        merged.failed += fields["failed"]
        merged.seconds += fields["seconds"]
        if fields["failure"] is not None and merged.failure is None:
            merged.failure = fields["failure"]
            wire = fields["counterexample"]
            merged.counterexample = None if wire is None else _problem_from_wire(wire)
            merged.replay = fields["replay"]
            if len(parts) > 1 and merged.replay:
                merged.replay += f"\n# (a worker ran this property with dtypes={list(task.dtypes)!r} only)"
    return merged


def _stop(executor: ProcessPoolExecutor) -> None:
    """Stop the pool's workers now (the running tasks are not waited for)."""
    for process in list(getattr(executor, "_processes", {}).values()):
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=True, cancel_futures=True)


def verify_parallel(
    impl_spec: str,
    *,
    workers: int,
    device: str = "cpu",
    configs: Sequence[RoutingConfig | str] | None = None,
    max_examples: int | None = None,
    profile: str | None = None,
    dtypes: Sequence[torch.dtype | str] | torch.dtype | str | None = None,
    properties: Sequence[str] | None = None,
    seed: int | None = None,
    shrink: bool = True,
    impl_name: str | None = None,
    progress: ProgressFn | None = None,
    row_kinds: Sequence[str] | None = None,
    bias_kinds: Sequence[str] | None = None,
    limits: Sequence[str] = (),
    row_stride: str | None = None,
) -> Report:
    """Run the property suite against the implementation named `impl_spec` in `workers` processes.

    Args:
        impl_spec: "reference", "optimized" or "module:function" (see `impls.load_impl`); each worker
            loads it by this name.
        workers: worker processes, >= 1 (at most one per task is started).
        device: where the implementation runs: "cpu", "cuda" (one GPU per worker when several are
            visible) or "cuda:N" (every worker on GPU N).
        configs, max_examples, profile, dtypes, properties, seed, shrink, row_kinds, bias_kinds, limits,
            row_stride: as `suite.verify`; each worker judges the implementation on its own contract
            (`Impl.contract`, as loaded by name).
        impl_name: the name reports show (default: the loaded implementation's name).
        progress: called as progress(property, examples, examples) once per finished property.

    Returns:
        One Report, properties in the suite's order (or `properties`' order), `seconds` = wall time;
        `extra["workers"]` says how many workers ran on which devices.

    Raises:
        TypeError, ValueError: bad arguments (checked in the parent, before any worker starts).
        WorkerError: a worker raised outside a property or died.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r}, but workers must be an int >= 1")
    impl = load_impl(impl_spec)  # a bad spec fails here, once, not in every worker
    prof = resolve_profile(profile)
    names = list(PROPERTIES) if properties is None else list(properties)
    for n in names:
        if n not in PROPERTIES:
            raise ValueError(f"properties contains {n!r}, but each must be one of {tuple(PROPERTIES)}")
    if not names:
        raise ValueError("properties=[], but at least one property must run")
    score_dtypes = parse_dtypes("dtypes", dtypes, SCORE_DTYPES)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r}, but device must name a torch device ({e})") from None
    examples = prof.examples if max_examples is None else max_examples
    tasks = plan_tasks(names, score_dtypes, workers, examples)
    count = min(workers, len(tasks))
    gpu_count = torch.cuda.device_count() if dev.type == "cuda" else 0
    threads = max(1, available_cores() // count)
    options: dict[str, Any] = {
        "configs": configs,
        "profile": prof.name,
        "seed": seed,
        "shrink": shrink,
        "impl_name": impl_name or impl.name,
        "row_kinds": row_kinds,
        "bias_kinds": bias_kinds,
        "limits": tuple(limits),
        "row_stride": row_stride,
    }

    context = multiprocessing.get_context("spawn")
    index_queue = context.Queue()
    for i in range(count):
        index_queue.put(i)
    done: dict[Task, dict[str, Any]] = {}
    devices: set[str] = set()
    start = time.perf_counter()
    executor = ProcessPoolExecutor(
        max_workers=count, mp_context=context, initializer=_init_worker,
        initargs=(index_queue, str(dev), gpu_count, threads, moegate_modules()),
    )  # fmt: skip
    try:
        futures: dict[Future[dict[str, Any]], Task] = {
            executor.submit(_run_task, impl_spec, task, options): task for task in tasks
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = futures[future]
                try:
                    out = future.result()
                except BrokenProcessPool as exc:
                    raise WorkerError(
                        f"a verify worker process died while running {task.describe()} on {dev} "
                        f"(killed, out of memory, or crashed outside Python): {exc}"
                    ) from exc
                except Exception as exc:
                    raise WorkerError(
                        f"a verify worker raised outside a property while running {task.describe()} on "
                        f"{dev}: {type(exc).__name__}: {exc}"
                    ) from exc
                done[task] = out
                devices.add(out["device"])
                name = task.properties[0]
                parts = [t for t in tasks if t.properties[0] == name]
                if progress is not None and all(t in done for t in parts):
                    total = sum(r["examples"] for t in parts for r in done[t]["results"])
                    progress(name, total, total)
    except BaseException:
        _stop(executor)
        raise
    executor.shutdown(wait=True)
    index_queue.close()

    info = {"count": count, "devices": sorted(devices), "tasks": len(tasks), "threads_per_worker": threads}
    results = []
    for name in names:
        parts = [(t, r) for t in tasks for r in done[t]["results"] if r["name"] == name]
        results.append(_merge(name, parts))
    return Report(
        results=results,
        impl_name=impl_name or impl.name,
        device=str(dev),
        profile=prof.name,
        dtypes=[str(d).replace("torch.", "") for d in score_dtypes],
        seed=seed,
        configs=None if configs is None else [c if isinstance(c, str) else format_config(c) for c in configs],
        seconds=time.perf_counter() - start,
        extra={"workers": info},
    )
