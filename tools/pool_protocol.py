"""A model of a row pool that launches could share safely, checked over every interleaving (CPU; docs/perf.md,
session 26).

    python tools/pool_protocol.py [--variant shipped] [--blocks 3] [--chunks 4]

Why: a one-wave grid's blocks end by their rank on the SM (docs/perf.md, session 26), and rows handed out by
need would keep every warp busy until they run out. tools/pool_probe_source.py measures that with one
global counter, which two launches at once would share. A pool to ship must be right when launches overlap
(two streams, a graph's branches), without a workspace argument, in one launch, and never leave a row out
(a row routed twice writes the same bytes; a row left out is a wrong output). This module is the protocol
such a kernel would follow, as steps that are each one atomic operation on the GPU, and an exhaustive
search over their interleavings for small grids, so that the argument is checked, not only written.

The protocol (`variant="shipped"`), per launch L with tag = the low 32 bits of its %gridid, on the slot
tag % SLOTS of a table of two 64-bit words per slot in a module global (zero at load):
  * word1 = (tag, joined, left) or EMPTY; word2 = the next chunk to hand out.
  * Every warp routes its own first chunk (the warp's index) before it asks the pool: no atomic before the
    first row's load, and chunk indices below the grid's warps are never the pool's.
  * Block 0 claims: CAS(word1: EMPTY -> (L, 1, 0)); on success it sets word2 = the grid's warps (its own
    store, after the claim: a block that joins in between may read the previous launch's count, and routes
    a chunk twice or leaves early, never skips one), then takes chunks by atomicAdd(word2, 1).
  * Every other block joins while word1 holds L's tag: CAS((L, j, l) -> (L, j + 1, l)), the tag checked in
    the same CAS as the count. A block that sees another tag or EMPTY waits a bounded time (block 0 may
    not have claimed yet), then takes the static stride (its chunks b, b + B, ...: today's rows).
  * A block in the pool leaves after all its warps saw a chunk >= the launch's chunks: CAS((L, j, l) ->
    (L, j, l + 1)), or to EMPTY where l + 1 = j (the last member: every chunk was handed out, after block
    0's reset, to a member that routed it before leaving).
  * A block that finds the slot held by another launch never touches it (static stride), and one that
    finds EMPTY after L has finished takes the static stride too: only block 0 claims.

The checker (`check`) explores every interleaving of the blocks' steps (two launches on one slot at once,
and a second launch with the same tag after the first: a graph replayed, if %gridid repeated) and asserts:
no block pulls from word2 while word1 holds another launch's tag (it would take that launch's chunk); when
a launch's blocks are all done, each of its chunks was routed; at the end every slot is EMPTY; and no
state is stuck. The other variants are the mistakes a kernel could make, which the checker must catch
(tests/test_pool_protocol.py).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator

EMPTY = (0, 0, 0)  # word1 of a free slot (tag 0 is never a launch's: tags here start at 1)
VARIANTS = ("shipped", "join_unchecked", "free_early", "no_reset")


@dataclasses.dataclass(frozen=True)
class Launch:
    tag: int
    blocks: int
    chunks: int
    after: int | None = None  # the index of a launch that must be complete before this one starts


@dataclasses.dataclass(frozen=True)
class Block:
    """One block (one warp: the model's blocks have a single warp) of a launch: pc and locals."""

    pc: str = "start"
    mode: str = ""  # "pool" or "static"
    waited: int = 0
    next_static: int = 0


State = tuple  # (word1, word2, blocks: tuple[tuple[Block, ...], ...], routed: tuple[frozenset, ...])


def _step(variant: str, launches: list[Launch], state: State, li: int, bi: int, wait_limit: int) -> State:
    """The state after block bi of launch li takes its next step (one atomic operation)."""
    word1, word2, blocks, routed = state
    launch = launches[li]
    b = blocks[li][bi]
    tag, joined, left = word1
    new_word1, new_word2 = word1, word2
    new_routed = routed[li]

    def done(block: Block) -> Block:
        return dataclasses.replace(block, pc="done")

    if b.pc == "start":  # every warp routes its own first chunk, then decides
        if bi < launch.chunks:
            new_routed = new_routed | {bi}
        nb = dataclasses.replace(b, pc="decide", next_static=bi + launch.blocks)
    elif b.pc == "decide":
        if bi == 0 and word1 == EMPTY:
            new_word1 = (launch.tag, 1, 0)
            nb = dataclasses.replace(b, pc="pull" if variant == "no_reset" else "reset", mode="pool")
        elif tag == launch.tag:
            if variant == "join_unchecked":  # the mistake: the tag read, then the count added apart
                nb = dataclasses.replace(b, pc="join_count")
            else:  # one CAS: the tag checked with the count
                new_word1 = (tag, joined + 1, left)
                nb = dataclasses.replace(b, pc="pull", mode="pool")
        elif b.waited < wait_limit:
            nb = dataclasses.replace(b, waited=b.waited + 1)
        else:
            nb = dataclasses.replace(b, pc="static", mode="static")
    elif b.pc == "join_count":  # join_unchecked's second step: adds to whoever holds the slot by now
        new_word1 = (tag, joined + 1, left)
        nb = dataclasses.replace(b, pc="pull", mode="pool")
    elif b.pc == "reset":
        new_word2 = launch.blocks  # the grid's warps (a block is one warp here): the pool's first chunk
        nb = dataclasses.replace(b, pc="pull")
    elif b.pc == "pull":
        if tag != launch.tag:
            raise AssertionError(f"launch {launch.tag}'s block {bi} pulls from a slot held by {word1}")
        chunk = word2
        new_word2 = word2 + 1
        if chunk < launch.chunks:
            new_routed = new_routed | {chunk}
            nb = b
        else:
            nb = dataclasses.replace(b, pc="leave")
    elif b.pc == "leave":
        if tag != launch.tag:
            raise AssertionError(f"launch {launch.tag}'s block {bi} leaves a slot held by {word1}")
        last = left + 1 == joined or variant == "free_early"
        new_word1 = EMPTY if last else (tag, joined, left + 1)
        nb = done(b)
    elif b.pc == "static":
        if b.next_static < launch.chunks:
            new_routed = new_routed | {b.next_static}
            nb = dataclasses.replace(b, next_static=b.next_static + launch.blocks)
        else:
            nb = done(b)
    else:
        raise AssertionError(f"no step from {b.pc}")
    new_blocks = list(blocks)
    row = list(blocks[li])
    row[bi] = nb
    new_blocks[li] = tuple(row)
    all_routed = list(routed)
    all_routed[li] = new_routed
    return (new_word1, new_word2, tuple(new_blocks), tuple(all_routed))


def _enabled(launches: list[Launch], state: State) -> Iterator[tuple[int, int]]:
    _, _, blocks, _ = state
    for li, launch in enumerate(launches):
        if launch.after is not None and any(b.pc != "done" for b in blocks[launch.after]):
            continue
        for bi, b in enumerate(blocks[li]):
            if b.pc != "done":
                yield li, bi


@dataclasses.dataclass(frozen=True)
class Report:
    states: int
    violation: str | None


def check(variant: str, launches: list[Launch], wait_limit: int = 1, max_states: int = 2_000_000) -> Report:
    """Every interleaving of `launches`' blocks (one slot, every launch's tag mapping to it) under the
    protocol `variant`; the first violation found, or None."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}, need one of {VARIANTS}")
    start: State = (
        EMPTY,
        0,
        tuple(tuple(Block() for _ in range(x.blocks)) for x in launches),
        tuple(frozenset() for _ in launches),
    )
    seen = {start}
    stack = [start]
    while stack:
        state = stack.pop()
        _, _, blocks, routed = state
        for li, launch in enumerate(launches):
            if all(b.pc == "done" for b in blocks[li]):
                missing = set(range(launch.chunks)) - routed[li]
                if missing:
                    return Report(
                        len(seen), f"launch {launch.tag} done with chunks {sorted(missing)} unrouted"
                    )
        moves = list(_enabled(launches, state))
        if not moves:
            if state[0] != EMPTY:
                return Report(len(seen), f"all launches done, slot left {state[0]}")
            continue
        for li, bi in moves:
            try:
                nxt = _step(variant, launches, state, li, bi, wait_limit)
            except AssertionError as exc:
                return Report(len(seen), str(exc))
            if nxt not in seen:
                if len(seen) >= max_states:
                    raise RuntimeError(f"more than {max_states} states: make the model smaller")
                seen.add(nxt)
                stack.append(nxt)
    return Report(len(seen), None)


def scenarios(blocks: int, chunks: int) -> dict[str, list[Launch]]:
    """The launch patterns the checker runs: two launches at once on one slot; a second launch with the same
    tag after the first (a replay, if %gridid repeated); one launch alone with more chunks than blocks."""
    return {
        "two at once": [Launch(1, blocks, chunks), Launch(2, blocks, chunks)],
        "same tag after": [Launch(1, blocks, chunks), Launch(1, blocks, chunks, after=0)],
        "alone": [Launch(1, blocks, chunks + blocks)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="shipped", choices=VARIANTS)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=3)
    args = parser.parse_args()
    for name, launches in scenarios(args.blocks, args.chunks).items():
        report = check(args.variant, launches)
        print(f"{args.variant} / {name}: {report.states} states, {report.violation or 'no violation'}")


if __name__ == "__main__":
    main()
