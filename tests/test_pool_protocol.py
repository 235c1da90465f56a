"""CPU tests of tools/pool_protocol.py: the shared row pool's protocol holds over every interleaving of small
grids, and each of the mistakes a kernel could make is caught by the same search (so the search can fail)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import pool_protocol as pp  # noqa: E402


@pytest.mark.parametrize(("blocks", "chunks", "wait_limit"), [(2, 3, 2), (2, 5, 1)])
def test_the_protocol_routes_every_chunk_and_frees_its_slot(
    blocks: int, chunks: int, wait_limit: int
) -> None:
    # wait_limit: the reads of the slot a block makes before it gives up on block 0's claim
    for name, launches in pp.scenarios(blocks, chunks).items():
        report = pp.check("shipped", launches, wait_limit=wait_limit)
        assert report.violation is None, (name, report.violation)
        assert report.states > 10 * blocks, name  # the search did explore


def test_three_blocks_of_two_launches_after_one_another() -> None:
    # (two launches of three blocks at once: about 10^6 states, `python tools/pool_protocol.py --blocks 3`)
    launches = [pp.Launch(1, 3, 4), pp.Launch(1, 3, 4, after=0)]
    assert pp.check("shipped", launches, wait_limit=0).violation is None


def test_joins_by_compare_and_swap_are_right_too() -> None:
    for name, launches in pp.scenarios(2, 3).items():
        assert pp.check("cas_join", launches, wait_limit=2).violation is None, name


@pytest.mark.parametrize(
    ("variant", "finding"),
    [
        ("join_unchecked", "pulls from a slot held by"),  # tag read apart from the count: joins a freed slot
        ("free_early", "pulls from a slot held by"),  # freed while members still pull
        ("no_reset", "unrouted"),  # the claimer left the last launch's count: its chunks skipped
        ("undo_without_free", "slot left"),  # a bogus join undone; the slot its owner could not free leaks
    ],
)
def test_each_mistake_is_caught(variant: str, finding: str) -> None:
    found = [pp.check(variant, launches).violation for launches in pp.scenarios(2, 3).values()]
    assert any(v is not None and finding in v for v in found), found


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant='racy'"):
        pp.check("racy", [pp.Launch(1, 1, 1)])
