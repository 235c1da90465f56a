"""The benchmark's report as text: the table's cells, the host path's cells, the lines above the table
(card, versions, floors) and the notes below it (unavailable implementations, rejections, errors).
`moegate bench` prints them; the JSON document is `BenchResult.to_json()`."""

from __future__ import annotations

from .benchmark import BenchResult, HostRow
from .benchmark_targets import TargetCheck


def fmt_us(us: float | None) -> str:
    """µs with three or four significant digits ("3.84", "266.0", "1068"); "-" for None."""
    if us is None:
        return "-"
    return f"{us:.2f}" if us < 100 else f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def fmt_ratio(ratio: float | None) -> str:
    """A ratio with three significant digits ("0.73", "7.53", "43.4", "520"); "-" for None."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}" if ratio < 100 else f"{ratio:.0f}"


TABLE_HEADERS = ("impl", "preset", "dtype", "T", "µs/call", "vs peer", "vs floor", "floor µs", "method")
TABLE_RIGHT = (False, False, False, True, True, True, True, True, False)


def table_rows(result: BenchResult, before: BenchResult | None = None) -> list[tuple[str, ...]]:
    """The table's cells (TABLE_HEADERS): "rejects" or "error" in the µs column where not timed;
    unavailable implementations have no rows here (`notes` lists them). With `before` (an earlier run),
    one cell more ("vs before"): the time over the same (impl, preset, dtype, T)'s time there, "-" where
    either was not timed."""
    earlier = {} if before is None else {(r.impl, r.preset, r.dtype, r.T): r.us for r in before.rows}
    cells = []
    for r in result.rows:
        if r.status == "unavailable":
            continue
        time_cell = fmt_us(r.us) if r.status == "ok" else r.status
        ratios = (fmt_ratio(r.vs_peer), fmt_ratio(r.vs_floor), fmt_us(r.floor_us))
        row = (r.impl, r.preset, r.dtype, str(r.T), time_cell, *ratios, r.method or "-")
        if before is not None:
            then = earlier.get((r.impl, r.preset, r.dtype, r.T))
            row = (*row, f"{r.us / then:.3f}" if r.us is not None and then else "-")
        cells.append(row)
    return cells


HOST_HEADERS = (
    "impl",
    "preset",
    "dtype",
    "T",
    "median µs",
    "min µs",
    "p90 µs",
    "calls",
    "CPUs",
    "median of CPUs µs",
    "slowest CPU µs",
)
HOST_RIGHT = (False, False, False, True, True, True, True, True, True, True, True)


def host_table_rows(result: BenchResult) -> list[tuple[str, ...]]:
    """The host path's cells (HOST_HEADERS); status in the median column where not timed."""
    cells = []
    for h in result.host:
        if h.status == "unavailable":
            continue
        median = fmt_us(h.us) if h.status == "ok" else h.status
        cells.append(
            (
                h.impl,
                h.preset,
                h.dtype,
                str(h.T),
                median,
                fmt_us(h.min_us),
                fmt_us(h.p90_us),
                str(h.calls),
                str(len(h.cpu_us)),
                fmt_us(h.cpu_median_us),
                fmt_us(h.cpu_worst_us),
            )
        )
    return cells


def header_lines(result: BenchResult) -> list[str]:
    """The card, the versions and the floors, for the top of the report."""
    v = result.versions
    versions = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    f = result.floors
    return [
        f"card: {result.card} (driver {result.driver}); {versions}",
        f"copy floor: {f.copy_tbps:.3g} TB/s read + write ({f.copy_method}, {f.copy_bytes / 2**20:.0f} MiB); "
        f"launch floor: {f.launch_us:.3g} µs ({f.launch_method})",
        f"peers for 'vs peer': {', '.join(i.name for i in result.impls if i.peer) or 'none asked for'}; "
        f"'vs floor': time over max(bytes / copy floor, launch floor)",
    ]


def notes(result: BenchResult) -> list[str]:
    """One line per unavailable implementation, per rejected (impl, preset, dtype), per failed row."""
    lines = [f"not available: {i.name}: {i.reason}" for i in result.impls if not i.available]
    seen = set()
    for r in result.rows:
        key = (r.impl, r.preset, r.dtype)
        if r.status == "rejects" and key not in seen:
            seen.add(key)
            lines.append(f"rejects: {r.impl} on {r.preset} {r.dtype}: {r.reason}")
    fallbacks: dict[str, set[str]] = {}
    for r in result.rows:
        if r.status == "ok" and r.reason:
            fallbacks.setdefault(r.impl, set()).add(r.reason)
    for impl, reasons in fallbacks.items():
        lines.extend(f"timed with events: {impl}: {why}" for why in sorted(reasons))
    # errors: one line per (impl, message), naming the rows it happened at
    failed: dict[tuple[str, str], dict[tuple[str, str], list[str]]] = {}
    for e in result.errors:
        where = "host path" if isinstance(e, HostRow) else ""
        message = (e.reason.splitlines() or [""])[0][:300]
        cells = failed.setdefault((e.impl, message), {})
        cells.setdefault((e.preset, e.dtype), []).append(f"{where} T={e.T}" if where else f"T={e.T}")
    for (impl, message), cells in failed.items():
        at = "; ".join(f"{preset} {dtype} {', '.join(ts)}" for (preset, dtype), ts in cells.items())
        lines.append(f"error: {impl} at {at}: {message}")
    return lines


def target_lines(checks: list[TargetCheck], impl: str, shown: int = 6) -> list[str]:
    """The targets section (benchmark_targets): one line per target (met / MISSED / not judged, what the run
    measured, the rule), then up to `shown` of what misses it."""
    if not checks:
        return []
    lines = [f"targets of {impl} (docs/perf.md; each judged on this run's rows):"]
    for c in checks:
        verdict = "not judged" if c.met is None else "met" if c.met else "MISSED"
        lines.append(f"  {c.target}: {verdict}: {c.measured} [{c.rule}]")
        if c.over:
            more = f"; and {len(c.over) - shown} more" if len(c.over) > shown else ""
            lines.append(f"    over: {'; '.join(c.over[:shown])}{more}")
    return lines
