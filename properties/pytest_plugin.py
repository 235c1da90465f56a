"""moegate's pytest plugin: the property suite and fixture replays as test items in your own pytest run.

A thin door over `moegate.properties.suite.verify` and `moegate.properties.fixtures` (the logic stays in the
library, importable without pytest), registered through the `pytest11` entry point as Hypothesis registers
its own. It collects nothing unless told what to verify, so an installed moegate changes no other run.

    pytest --moegate-impl my_kernels.routing:route --moegate-device cuda
    pytest --moegate-impl my_kernels.routing:route --moegate-fixtures tests/routing_fixtures

or, in a conftest.py:

    from moegate.properties.pytest_plugin import configure

    def pytest_configure(config):
        configure(config, impl="my_kernels.routing:route", device="cuda")  # or impl=route, a callable

Items: `moegate::<property>[<dtype>]`, one per property of the suite and score dtype, and
`moegate::fixtures[<dir>]::<case>`, one per case of each fixture set. Hypothesis' own options apply:
`--hypothesis-profile=moegate-dev` (or -deep) picks verify's profile, and with it the example database
(the dev profile keeps one, so a failure found once is tried first next time); `--hypothesis-seed=N` seeds
every item. A failing item prints what broke (the oracle rules on the shrunk example, the row beside the
reference's, the experts that differ), where the whole example was saved and one replay command; a failure
with the same root cause as an earlier item says so instead of repeating it; `-vv` adds the whole tensors.
Items on a CUDA device are skipped with the reason when torch sees no GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Light on purpose: pytest imports this module in every run where moegate is installed, so torch and
# the rest of moegate are imported only once an option asks for moegate items.

_SETTINGS = pytest.StashKey["dict[str, Any]"]()
_STATE = pytest.StashKey["_SessionState"]()

OPTIONS = {
    "impl": "implementation to verify: 'module:function' (the module may be a .py path), 'reference' or "
    "'optimized'; adds one item per property and dtype",
    "device": "device the implementation runs on: cpu or cuda (default cpu); cuda items skip without a GPU",
    "fixtures": "a moegate fixture set (folder with manifest.json) to replay through the implementation, one "
    "item per case (repeatable)",
    "dtype": "score dtype of the property items: float32, bfloat16, float16 (repeatable; default all three)",
    "preset": "draw problems from these presets only (repeatable; default: moegate's random configs)",
    "examples": "examples per property item (default: the profile's)",
    "profile": "verify profile: ci, dev or deep (default: $MOEGATE_PROFILE, else a moegate profile loaded "
    "with --hypothesis-profile, else ci)",
    "failures-dir": "where failing items save their shrunk examples (default: the pytest cache, "
    ".pytest_cache/d/moegate-failures)",
}
_REPEATABLE = ("fixtures", "dtype", "preset")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("moegate", "moegate: verify a routing implementation")
    for name, help_text in OPTIONS.items():
        kwargs: dict[str, Any] = {"action": "append" if name in _REPEATABLE else "store", "help": help_text}
        if name == "examples":
            kwargs["type"] = int
        group.addoption(f"--moegate-{name}", dest=f"moegate_{name.replace('-', '_')}", default=None, **kwargs)


def configure(
    config: pytest.Config,
    *,
    impl: str | Callable[..., Any] | None = None,
    device: str | None = None,
    fixtures: Sequence[str | os.PathLike[str]] | None = None,
    dtypes: Sequence[str] | None = None,
    presets: Sequence[str] | None = None,
    examples: int | None = None,
    profile: str | None = None,
    failures_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Set the plugin's options from a conftest.py (call it in `pytest_configure`); the command line's
    `--moegate-*` options win over these.

    impl: a callable `impl(scores [T, E], bias [E] | None, config) -> (ids int32 [T, W], weights float32
        [T, W])` or a spelling `load_impl` accepts ('module:function', 'reference', 'optimized').
    fixtures: fixture-set folders to replay, relative to the rootdir or absolute.
    """
    if impl is not None and not isinstance(impl, str) and not callable(impl):
        raise TypeError(f"impl={impl!r}, but impl must be a callable or a 'module:function' string")
    if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int) or examples < 1):
        raise ValueError(f"examples={examples!r}, but examples must be an int >= 1")
    given = {
        "impl": impl,
        "device": device,
        "fixtures": None if fixtures is None else [str(f) for f in fixtures],
        "dtype": None if dtypes is None else list(dtypes),
        "preset": None if presets is None else list(presets),
        "examples": examples,
        "profile": profile,
        "failures_dir": None if failures_dir is None else str(failures_dir),
    }
    config.stash[_SETTINGS] = {k: v for k, v in given.items() if v is not None}


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"moegate_{name}")
    if value is None:
        value = config.stash.get(_SETTINGS, {}).get(name)
    return value


def _active(config: pytest.Config) -> bool:
    return _option(config, "impl") is not None or bool(_option(config, "fixtures"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "moegate: an item added by moegate's plugin (a property or a fixture)")
    profile = config.getoption("hypothesis_profile", default=None)
    if isinstance(profile, str) and profile.startswith("moegate-"):
        # Register moegate's Hypothesis profiles before Hypothesis' own plugin loads the one named.
        import moegate.properties.suite  # noqa: F401


# ---- the run's settings --------------------------------------------------------------------------------


@dataclass
class _SessionState:
    """What the items of one session share: the loaded impl, where failures go, the root causes seen."""

    impl: Any
    device: str
    gpu_reason: str | None
    dtypes: list[str]
    presets: list[str] | None
    examples: int | None
    profile: str | None
    seed: int | None
    failures_root: Path
    failures_dir: Path | None = None
    causes: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    def session_failures_dir(self) -> Path:
        from .failures import timestamp_dir

        if self.failures_dir is None:
            self.failures_dir = timestamp_dir(self.failures_root)
        return self.failures_dir


def _usage(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (ValueError, TypeError) as exc:
        raise pytest.UsageError(f"moegate: {exc}") from exc


def _state(config: pytest.Config) -> _SessionState:
    if _STATE in config.stash:
        return config.stash[_STATE]
    import torch

    from . import fixtures as fx
    from .impls import Impl, load_impl

    spec = _option(config, "impl")
    if spec is None:
        raise pytest.UsageError(
            "moegate: --moegate-fixtures needs --moegate-impl (the implementation to replay)"
        )
    if isinstance(spec, str):
        impl = _usage(load_impl, spec)
    else:
        qualname = getattr(spec, "__qualname__", type(spec).__name__)
        impl = Impl(name=f"{getattr(spec, '__module__', '?')}:{qualname}", fn=spec, default_device="cpu")
    device = str(_option(config, "device") or "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise pytest.UsageError(
            f"moegate: --moegate-device {device!r} is not a torch device ({exc})"
        ) from exc
    gpu_reason = None
    if dev.type == "cuda" and not torch.cuda.is_available():
        gpu_reason = f"--moegate-device {device}, but no CUDA GPU is visible to torch"
    dtypes = [fx.dtype_name(_usage(fx.parse_dtype, d)) for d in _option(config, "dtype") or []]
    presets = _option(config, "preset")
    if presets:
        presets = _usage(fx.resolve_presets, presets)
    profile = _option(config, "profile")
    if profile is not None:
        from .suite import resolve_profile

        profile = _usage(resolve_profile, profile).name
    seed = config.getoption("hypothesis_seed", default=None)
    try:
        seed = None if seed is None else int(seed)
    except ValueError:
        seed = None
    root = _option(config, "failures_dir")
    if root is not None:
        failures_root = Path(root)
    elif getattr(config, "cache", None) is not None:
        failures_root = Path(config.cache.mkdir("moegate-failures"))
    else:
        failures_root = config.rootpath / "moegate-failures"
    state = _SessionState(
        impl=impl,
        device=device,
        gpu_reason=gpu_reason,
        dtypes=dtypes or list(fx.DTYPES),
        presets=presets or None,
        examples=_option(config, "examples"),
        profile=profile,
        seed=seed,
        failures_root=failures_root,
    )
    config.stash[_STATE] = state
    return state


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _active(config):
        return None
    state = _state(config)
    from .suite import resolve_profile

    profile = resolve_profile(state.profile).name
    presets = ", ".join(state.presets) if state.presets else "random configs"
    return (
        f"moegate: impl {state.impl.name} on {state.device}, profile {profile}, dtypes "
        f"{', '.join(state.dtypes)}, {presets}"
    )


# ---- collection ----------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """Add moegate's items (before -k, -m, --lf and friends filter the list)."""
    if not _active(config):
        return
    suite = MoegateSuite.from_parent(session, name="moegate", nodeid="moegate")
    new: list[pytest.Item] = []
    for node in suite.collect():
        if isinstance(node, pytest.Item):
            new.append(node)
        else:
            new.extend(node.collect())  # type: ignore[attr-defined]
    config.hook.pytest_collectreport(report=pytest.CollectReport("moegate", "passed", None, new))
    items.extend(new)


class MoegateSuite(pytest.Collector):
    """The collector of moegate's items: the property items, then one collector per fixture set."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        state = _state(self.config)
        if _option(self.config, "impl") is not None:
            from .suite import PROPERTIES

            for prop in PROPERTIES:
                for dtype in state.dtypes:
                    yield PropertyItem.from_parent(self, name=f"{prop}[{dtype}]", prop=prop, dtype=dtype)
        for folder in _option(self.config, "fixtures") or []:
            path = Path(folder)
            if not path.is_absolute():
                path = self.config.rootpath / path
            yield FixtureSet.from_parent(self, name=f"fixtures[{folder}]", directory=path)


class FixtureSet(pytest.Collector):
    """One fixture set: an item per case of its manifest."""

    def __init__(self, *, directory: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = directory

    def collect(self) -> Iterator[pytest.Item]:
        from . import fixtures as fx

        manifest = _usage(fx.read_manifest, self.directory)
        for entry in manifest["cases"]:
            yield FixtureCaseItem.from_parent(self, name=entry["name"], entry=entry)


class MoegateFailure(AssertionError):
    """A moegate item's failure: the message is the whole report (no Python traceback)."""


class _MoegateItem(pytest.Item):
    def setup(self) -> None:
        state = _state(self.config)
        if state.gpu_reason is not None:
            pytest.skip(f"gpu: {state.gpu_reason} (run these items on a GPU)")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MoegateFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.config.rootpath, None, self.nodeid


class PropertyItem(_MoegateItem):
    """One property of the suite (`suite.PROPERTIES`) for one score dtype, run with verify()."""

    def __init__(self, *, prop: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prop, self.dtype = prop, dtype
        self.add_marker("moegate")

    def runtest(self) -> None:
        from .failures import root_cause_key, save_failures, summarize
        from .suite import verify

        state = _state(self.config)
        report = verify(
            state.impl.fn,
            configs=state.presets,
            max_examples=state.examples,
            device=state.device,
            profile=state.profile,
            dtypes=[self.dtype],
            properties=[self.prop],
            seed=state.seed,
            impl_name=state.impl.name,
        )
        (result,) = report.results
        if result.ok:
            return
        case = f"{self.prop}-{self.dtype}"
        saved = save_failures(
            [result],
            state.impl.fn,
            state.impl.name,
            state.device,
            state.failures_root,
            context=f"pytest item {self.nodeid} (impl {state.impl.name})",
            case_names={self.prop: case},
            directory=state.session_failures_dir() / case,
        )
        key = root_cause_key(result)
        primary = next((nodeid for k, nodeid in state.causes if key is not None and k == key), None)
        if primary is None and key is not None:
            state.causes.append((key, self.nodeid))
        lines = [
            f"moegate property {self.prop!r} failed for {self.dtype} scores (impl {state.impl.name} on "
            f"{state.device}, profile {report.profile}; {result.failed} of {result.examples} examples "
            "failed)",
            summarize(result, primary=primary, fallback_replay=report.replay_hint(result)),
            *saved.errors,
        ]
        if self.config.getoption("verbose") >= 2:
            lines += [
                "--- full failure ---",
                result.failure or "",
                "--- replay snippet ---",
                result.replay or "",
            ]
        raise MoegateFailure("\n".join(lines))


class FixtureCaseItem(_MoegateItem):
    """One recorded case of a fixture set, replayed through the implementation and compared
    (`fixtures.check_case`: ids exact except in flagged tie rows, weights within tolerance)."""

    def __init__(self, *, entry: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry
        self.add_marker("moegate")

    def runtest(self) -> None:
        from . import fixtures as fx

        state = _state(self.config)
        directory: Path = self.parent.directory  # type: ignore[union-attr]
        case = fx.load_case(directory / self.entry["file"], sha256=self.entry.get("sha256"))
        result = fx.check_case(case, state.impl, state.device)
        if not result.ok:
            raise MoegateFailure(
                f"moegate fixture case {case.name!r} of {directory} failed (impl {state.impl.name} on "
                f"{state.device}):\n{result.format()}"
            )
