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

The protocol (`variant="shipped"`), per launch L with tag = the low 32 bits of its %gridid (never 0), on the
slot tag % SLOTS of a table of two 64-bit words per slot in a module global (zero at load):
  * word1 = (tag, joined, left) or EMPTY (all zero); word2 = the next chunk to hand out.
  * Every warp routes its own first chunk (the warp's index) before it asks the pool: no atomic before the
    first row's load, and chunk indices below the grid's warps are never the pool's.
  * Block 0 claims: CAS(word1: EMPTY -> (L, 1, 0)), retried a bounded time while the word is not EMPTY; on
    success it sets word2 = the grid's warps (its own store, after the claim: a block that joins in
    between may read the previous launch's count, and then routes a chunk twice or leaves early, never
    skips one), then takes chunks by atomicAdd(word2, 1). A block 0 that gives up takes the static stride.
  * Every other block joins with one atomicAdd(word1, +1 joined), whoever holds the slot: no compare-and-swap
    loop for 500 blocks to retry at once. The old word says whose it was. If L's, the block is a member and
    pulls chunks. If not (EMPTY before block 0's claim, or another launch), it takes its add back,
    atomicAdd(-1 joined); where that leaves a launch's word with joined = left (that launch's last member
    may have left while this block's bogus join was counted, so its own free failed), it frees the slot
    itself by CAS(that word -> EMPTY); then it retries a bounded number of times and takes the static
    stride (its chunks b, b + B, ...: today's rows).
  * A member leaves after all its warps saw a chunk >= the launch's chunks: atomicAdd(word1, +1 left); the
    one that makes left = joined frees the slot by CAS(that word -> EMPTY) (it fails only if a member or a
    bogus member came since, who then frees it): at that moment every chunk was handed out, after block 0's
    reset, to a member that routed it before leaving.
  * A block that finds the slot held by another launch takes the static stride; rows routed twice (static
    and pool) write the same bytes.
`cas_join` is the same with each join a compare-and-swap that checks the tag (correct too, but 400 to 500
blocks retrying one word at once). The other variants are the mistakes a kernel could make.

The checker (`check`) explores every interleaving of the blocks' steps (two launches on one slot at once,
and a second launch with the same tag after the first: a graph replayed, if %gridid repeated) and asserts:
no block pulls from word2 (or leaves) while word1 holds another launch's tag (it would take that launch's
chunk); when a launch's blocks are all done, each of its chunks was routed; at the end the slot is EMPTY
(no leak); and no state is stuck. It must catch each mistake (tests/test_pool_protocol.py). The model's
blocks are one warp each, and its waits are a bounded number of retries.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator

EMPTY = (0, 0, 0)  # word1 of a free slot (tag 0 is never a launch's: tags here start at 1)
VARIANTS = ("shipped", "cas_join", "join_unchecked", "free_early", "no_reset", "undo_without_free")


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
    waited: int = 0
    next_static: int = 0
    expected: tuple = ()  # the word1 a compare-and-swap step expects


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

    def retry_or_static(block: Block) -> Block:  # a bounded wait, then the static stride
        if block.waited < wait_limit:
            return dataclasses.replace(block, pc="decide", waited=block.waited + 1)
        return dataclasses.replace(block, pc="static")

    if b.pc == "start":  # every warp routes its own first chunk, then decides
        if bi < launch.chunks:
            new_routed = new_routed | {bi}
        nb = dataclasses.replace(b, pc="decide", next_static=bi + launch.blocks)
    elif b.pc == "decide":
        add_join = variant != "cas_join" and variant != "join_unchecked"
        if bi == 0:  # the claimer: CAS(EMPTY -> (L, 1, 0)), or wait, then the static stride
            if word1 == EMPTY:
                new_word1 = (launch.tag, 1, 0)
                nb = dataclasses.replace(b, pc="pull" if variant == "no_reset" else "reset")
            else:
                nb = retry_or_static(b)
        elif add_join:  # one atomicAdd of a member, whoever holds the slot; the old word says whose it was
            new_word1 = (tag, joined + 1, left)
            nb = dataclasses.replace(b, pc="pull" if tag == launch.tag else "undo")
        elif tag == launch.tag:
            if variant == "join_unchecked":  # the mistake: the tag read, then the count added apart
                nb = dataclasses.replace(b, pc="join_count")
            else:  # one CAS: the tag checked with the count
                new_word1 = (tag, joined + 1, left)
                nb = dataclasses.replace(b, pc="pull")
        else:
            nb = retry_or_static(b)
    elif b.pc == "undo":  # atomicAdd(-member) of a join that landed on another launch's (or an EMPTY) word
        new_word1 = (tag, joined - 1, left)
        if tag != 0 and joined - 1 == left and variant != "undo_without_free":
            # that launch's last member may have left while this bogus member was counted: free it here
            nb = dataclasses.replace(b, pc="undo_free", expected=new_word1)
        else:
            nb = retry_or_static(b)
    elif b.pc == "undo_free":  # CAS(expected -> EMPTY): fails if someone joined since, who will free it
        if word1 == b.expected:
            new_word1 = EMPTY
        nb = dataclasses.replace(b, pc="static")
    elif b.pc == "join_count":  # join_unchecked's second step: adds to whoever holds the slot by now
        new_word1 = (tag, joined + 1, left)
        nb = dataclasses.replace(b, pc="pull")
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
    elif b.pc == "leave":  # atomicAdd(+left); the last member then frees the slot by CAS
        if tag != launch.tag:
            raise AssertionError(f"launch {launch.tag}'s block {bi} leaves a slot held by {word1}")
        if variant == "free_early":
            new_word1 = EMPTY
            nb = done(b)
        else:
            new_word1 = (tag, joined, left + 1)
            last = left + 1 == joined
            nb = dataclasses.replace(b, pc="leave_free", expected=new_word1) if last else done(b)
    elif b.pc == "leave_free":  # CAS(expected -> EMPTY): fails if a member (or a bogus one) came since
        if word1 == b.expected:
            new_word1 = EMPTY
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
