"""moegate.properties: judge any MoE routing implementation against SPEC.md.

- `check_routing(problem, ids, weights) -> list[Violation]` (oracle: SPEC alone, tie-aware) and
  `tie_rows(problem)`.
- `compare(problem, expected, actual) -> DiffReport` and `assert_routing_close` (differential).
- `verify(impl, ...) -> Report` (`from moegate.properties import verify`): the Hypothesis property
  suite against `impl(scores, bias, config)`; it lives in the submodule `suite` with `Report`,
  `PROPERTIES` and the profiles.
- `MUTANTS`, `run_mutant_panel()`: planted bugs the suite must kill.
- `routing_configs()`, `routing_problems()`: the strategies; `RoutingProblem`: one call's inputs.

Every name loads on first use (importing this package imports neither torch nor Hypothesis), so that
the pytest plugin, `moegate.properties.pytest_plugin`, costs nothing in a run that does not use it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "tolerances": ("tolerances", None),
    "DiffReport": ("differential", "DiffReport"),
    "assert_routing_close": ("differential", "assert_routing_close"),
    "compare": ("differential", "compare"),
    "Violation": ("oracle", "Violation"),
    "check_routing": ("oracle", "check_routing"),
    "tie_rows": ("oracle", "tie_rows"),
    "RoutingProblem": ("problem", "RoutingProblem"),
    "format_config": ("problem", "format_config"),
    "verify": ("suite", "verify"),
    "Report": ("suite", "Report"),
    "PropertyResult": ("suite", "PropertyResult"),
    "PROPERTIES": ("suite", "PROPERTIES"),
    "PROFILES": ("suite", "PROFILES"),
    "MUTANTS": ("mutants", "MUTANTS"),
    "Mutant": ("mutants", "Mutant"),
    "MutantResult": ("mutants", "MutantResult"),
    "run_mutant_panel": ("mutants", "run_mutant_panel"),
    "routing_configs": ("strategies", "routing_configs"),
    "routing_problems": ("strategies", "routing_problems"),
    "RELATIONS": ("metamorphic", "RELATIONS"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        loaded = import_module(f"{__name__}.{module}")
        return loaded if attr is None else getattr(loaded, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MUTANTS",
    "PROFILES",
    "PROPERTIES",
    "RELATIONS",
    "DiffReport",
    "Mutant",
    "MutantResult",
    "PropertyResult",
    "Report",
    "RoutingProblem",
    "Violation",
    "assert_routing_close",
    "check_routing",
    "compare",
    "format_config",
    "routing_configs",
    "routing_problems",
    "run_mutant_panel",
    "tie_rows",
    "tolerances",
    "verify",
]
