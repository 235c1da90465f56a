"""Loading a routing implementation by name: `reference`, `eager`, `optimized`, a peer, or `module:function`.

Every implementation has `route`'s signature: `impl(scores, bias, config) -> (topk_ids, topk_weights)`
with scores [T, E] float32/float16/bfloat16, bias [E] or None, and outputs int32 [T, W] and float32
[T, W] (SPEC.md). The command line (`moegate verify --impl ...`, `moegate fixtures ... --impl ...`) and the
fixture code resolve names here, so every command accepts the same spellings:

- `reference`: `moegate.reference.route` (CPU or CUDA tensors).
- `eager`: the same `moegate.reference.route`, defaulting to CUDA: the eager PyTorch baseline that
  `moegate bench` times on the GPU.
- `optimized`: `moegate.optimized.route` (the fused kernel; CUDA tensors only).
- `flashinfer-default`, `flashinfer-cake`, `vllm`, `compile`: the peers (`moegate.properties.peers`),
  the kernels engines ship, built from their sources, each with its declared `Contract` (CUDA tensors; a
  peer that cannot run here raises ValueError naming what is missing).
- `module:function`: any importable function, e.g. `my_kernels.routing:route`; the module part may also
  be a path to a `.py` file (`./my_route.py:route`). The current directory is importable, as under
  `python -m`, also when the `moegate` console script runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RouteFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]

BUILTIN_IMPLS = ("reference", "eager", "optimized")


@dataclass(frozen=True)
class Impl:
    """A loaded implementation.

    name: the spelling it was loaded from ("reference", "optimized", "pkg.mod:fn"); it is what reports
        print and what a replay command passes back to `--impl`.
    fn: the callable, `fn(scores, bias, config) -> (ids int32 [T, W], weights float32 [T, W])`.
    default_device: "cuda" for `optimized`, `eager` and the peers, else "cpu".
    contract: what it declares it supports (`peers.Contract`), or None for the whole SPEC.
    prepare: builds or compiles it ahead of the first call, or None.
    """

    name: str
    fn: RouteFn
    default_device: str
    contract: Any = None
    prepare: Callable[..., Any] | None = None

    def __call__(
        self, scores: torch.Tensor, bias: torch.Tensor | None, config: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fn(scores, bias, config)


def gpu_unavailable_reason() -> str | None:
    """Why the fused kernel cannot run here (no CUDA GPU visible to torch, or no CuPy), or None."""
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'moegate[gpu]')"
    return None


def default_impl_name() -> str:
    """`optimized` when a CUDA GPU and CuPy are usable, else `reference`."""
    return "optimized" if gpu_unavailable_reason() is None else "reference"


def _import_module(module: str, spec: str) -> object:
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise ValueError(f"impl={spec!r}, but the file {str(path)!r} does not exist")
        mod_name = f"_moegate_user_impl_{path.stem}"
        file_spec = importlib.util.spec_from_file_location(mod_name, path)
        if file_spec is None or file_spec.loader is None:
            raise ValueError(f"impl={spec!r}, but {str(path)!r} cannot be loaded as a Python module")
        mod = importlib.util.module_from_spec(file_spec)
        sys.modules[mod_name] = mod
        try:
            file_spec.loader.exec_module(mod)
        except Exception as exc:
            del sys.modules[mod_name]
            raise ValueError(
                f"impl={spec!r}, but importing {str(path)!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return mod
    # A console script's sys.path[0] is its bin/ folder; users expect `--impl my_mod:fn` to find
    # ./my_mod.py as `python -m` would.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, but also anything the module raises while importing
        raise ValueError(
            f"impl={spec!r}, but module {module!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc


def load_impl(spec: str) -> Impl:
    """Resolve `spec` ("reference", "eager", "optimized" or "module:function") to an `Impl`.

    Raises:
        TypeError: `spec` is not a str.
        ValueError: empty or malformed spec, a module that cannot be imported, a missing attribute, or
            an attribute that is not callable; the message names the spec and the rule.
    """
    if not isinstance(spec, str):
        raise TypeError(f"impl={spec!r} ({type(spec).__name__}), but impl must be a str")
    name = spec.strip()
    if name == "reference":
        from moegate.reference import route

        return Impl(name="reference", fn=route, default_device="cpu")
    if name == "eager":
        from moegate.reference import route

        return Impl(name="eager", fn=route, default_device="cuda")
    if name == "optimized":
        try:
            from moegate.optimized import route as optimized_route
        except Exception as exc:
            raise ValueError(
                "impl='optimized', but moegate.optimized.route cannot be imported: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return Impl(name="optimized", fn=optimized_route, default_device="cuda")
    from .peers import PEER_NAMES, get_peer

    if name in PEER_NAMES:
        peer = get_peer(name)
        if peer.unavailable is not None:
            raise ValueError(f"impl={name!r} cannot run here: {peer.unavailable}")
        return Impl(
            name=name, fn=peer.fn, default_device="cuda", contract=peer.contract, prepare=peer.prepare
        )
    module, sep, attr = name.rpartition(":")
    if not sep or not module or not attr:
        raise ValueError(
            f"impl={spec!r}, but impl must be 'reference', 'eager', 'optimized', a peer "
            f"({', '.join(PEER_NAMES)}) or 'module:function' (e.g. 'my_kernels.routing:route')"
        )
    obj: object = _import_module(module, spec)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"impl={spec!r}, but module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"impl={spec!r}, but {attr!r} is a {type(obj).__name__}, not a callable")
    # A user's kernel declares what it supports the way the peers do: a `contract` attribute holding a
    # moegate.properties.peers.Contract (`my_route.contract = Contract(...)`).
    contract = getattr(obj, "contract", None)
    if contract is not None:
        from .peers.contract import Contract

        if not isinstance(contract, Contract):
            raise ValueError(
                f"impl={spec!r} has a `contract` attribute of type {type(contract).__name__}, but it must "
                "be a moegate.properties.peers.Contract"
            )
    return Impl(name=name, fn=obj, default_device="cpu", contract=contract)
