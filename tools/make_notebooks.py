"""Build the notebooks: each `notebooks/NN_name.py` (the source, a plain Python file in the "percent" format
that Jupytext, VS Code and PyCharm open as a notebook) becomes `notebooks/NN_name.ipynb`, executed, with
its outputs and figures kept, so that a code host shows the figures (notebooks/README.md says why).

    python tools/make_notebooks.py            # convert and execute every notebook (no GPU needed)
    python tools/make_notebooks.py 03 05      # only the notebooks whose name starts with these
    python tools/make_notebooks.py --check    # exit 1 when an .ipynb's cells differ from its source

Source format: `# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines start with `# `.
Execution runs in notebooks/ (a notebook's relative paths start there), without timing metadata, so that
re-running unchanged sources on unchanged data rewrites identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TIMEOUT_S = 300


def sources() -> list[Path]:
    """The notebook sources, in order: notebooks/NN_*.py."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def parse(text: str) -> list[tuple[str, str]]:
    """(kind, source) cells of a percent-format file; kind is "code" or "markdown"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
            continue
        if not cells:
            if line.strip():
                raise ValueError(f"text before the first '# %%' cell marker: {line!r}")
            continue
        kind, body = cells[-1]
        if kind == "markdown":
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"a markdown cell's lines must start with '#': {line!r}")
            line = line[2:] if line.startswith("# ") else line.lstrip("#")
        body.append(line)
    out = []
    for kind, body in cells:
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        out.append((kind, "\n".join(body)))
    return out


def build(source: Path) -> Any:
    """An unexecuted nbformat notebook from a source file."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "jupytext": {"formats": "ipynb,py:percent"},
    }
    for index, (kind, text) in enumerate(parse(source.read_text())):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell["id"] = f"cell-{index}"
        nb.cells.append(cell)
    return nb


def execute(nb: Any, timeout: int = TIMEOUT_S) -> Any:
    """Run every cell in a fresh python3 kernel in notebooks/; raises nbclient's CellExecutionError."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
    )
    client.execute()
    nb.metadata["language_info"] = {"name": "python"}  # the kernel's version details: churn in diffs
    return nb


def cells_of(nb: Any) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="name prefixes of the notebooks to build (default: all)")
    parser.add_argument("--check", action="store_true", help="only check that each .ipynb matches its source")
    args = parser.parse_args(argv)
    chosen = [s for s in sources() if not args.only or any(s.name.startswith(o) for o in args.only)]
    stale = []
    for source in chosen:
        target = source.with_suffix(".ipynb")
        nb = build(source)
        if args.check:
            if not target.exists() or cells_of(nbformat.read(target, as_version=4)) != cells_of(nb):
                stale.append(target.name)
            continue
        print(f"executing {source.name} ...", file=sys.stderr)
        nbformat.write(execute(nb), target)
        print(f"wrote {target}", file=sys.stderr)
    if stale:
        print(f"out of date with their sources: {', '.join(stale)} (run python tools/make_notebooks.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
