"""CPU checks of the float arguments route.cu's fast paths rest on, in numpy float32 (IEEE, round to nearest).

These test the arithmetic of an argument, written again here from its comment in route.cu; the GPU tests
(tests/test_optimized_gpu.py) test the kernel that uses it, bitwise against the generic kernel.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def _round_down(x: np.ndarray) -> np.ndarray:
    """float64 values (exact products of two float32) rounded down to float32: RD, as __fmul_rd gives."""
    nearest = x.astype(F32)
    return np.where(nearest.astype(np.float64) > x, np.nextafter(nearest, F32(-np.inf)), nearest)


def test_lazy_softmax_floor_keeps_every_numerator_whose_p_reaches_p_tau() -> None:
    """route.cu's kLazySoftmax floor: with p_tau = RN(e_tau / s), b the float below p_tau and e_cut =
    RD(b * s), every float32 numerator e with RN(e / s) >= p_tau has e >= e_cut; e_cut < e_tau; and
    e_tau >= 2^-63 gives e_cut >= 2^-64 (quotient_in_range's range). Over random sums s in [1, 1024] and
    e_tau in [2^-63, 1], each with the 4096 floats below e_tau (and e_tau itself)."""
    rng = np.random.default_rng(13)
    pairs = 3000
    sums = rng.uniform(1.0, 1024.0, pairs).astype(F32)
    sums[:8] = [1.0, 2.0, 3.0, 1024.0, 1.5, 7.0, 511.0, 1.0000001]
    exponents = rng.uniform(-63.0, 0.0, pairs)
    e_tau = np.minimum(np.exp2(exponents) * rng.uniform(1.0, 2.0, pairs), 1.0).astype(F32)
    e_tau[:8] = [1.0, 2.0**-63, 0.5, 1.0, 2.0**-62, 0.75, 1.0, 2.0**-63]
    p_tau = e_tau / sums
    below = np.nextafter(p_tau, F32(0.0))
    e_cut = _round_down(below.astype(np.float64) * sums.astype(np.float64))
    assert np.all(e_cut < e_tau)
    assert np.all(e_cut >= F32(2.0**-64))

    offsets = np.arange(0, 4097, dtype=np.int64)
    bits = e_tau.view(np.int32).astype(np.int64)[:, None] - offsets[None, :]
    e = bits.astype(np.int32).view(F32)  # e_tau and the 4096 floats below it (all positive)
    p = e / sums[:, None]
    reaches = p >= p_tau[:, None]
    kept = e >= e_cut[:, None]
    missed = reaches & ~kept
    assert not missed.any(), f"{int(missed.sum())} numerators reach p_tau below e_cut"
    # The floor is close: some numerator just below e_cut no longer reaches p_tau, and the check above
    # looked past e_cut in most cases (so it is not vacuous).
    assert (e.min(axis=1) < e_cut).mean() > 0.9
    assert (~reaches).any(axis=1).all()


def _named_keys_rounds(
    key: np.ndarray, topk: int, candidate: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """route.cu's select_by_named_keys on rows of exact keys `key` (uint64 holding u32, [rows, E]), written
    again from its comment: each key's low b bits (E <= 2^b) replaced by 2^b - 1 - e (0 where `candidate`
    [rows, E] is False: a dropped group's expert), the K winners and the largest key left by those keys (the
    rounds), and whether the kernel calls the row proved. Returns the winners' ids in round order [rows, K],
    `proved` [rows], and the named keys' order [rows, E]."""
    num_experts = key.shape[1]
    if candidate is None:
        candidate = np.ones(key.shape, dtype=bool)
    bits = next(b for b in (5, 6, 7, 8) if num_experts <= 1 << b)
    mask = (1 << bits) - 1
    experts = np.arange(num_experts, dtype=np.uint64)
    named = np.where(candidate, (key | np.uint64(mask)) - experts, np.uint64(0))
    order = np.argsort(-named.astype(np.int64), axis=1, kind="stable")  # distinct keys: any sort
    won_named = np.take_along_axis(named, order, axis=1)
    won_exact = np.take_along_axis(key, order, axis=1)
    bucket = won_named >> np.uint64(bits)
    # Adjacent winners of one bucket out of SPEC's order (lane q against lane q + 1).
    out_of_order = (
        (bucket[:, : topk - 1] == bucket[:, 1:topk]) & (won_exact[:, : topk - 1] < won_exact[:, 1:topk])
    ).any(axis=1)
    # Where the largest key left shares the last winner's bucket, every lane's own experts of that bucket
    # with a larger index and a larger exact key than the last winner (the kernel checks every expert).
    least_bucket = bucket[:, topk - 1 : topk]
    least_exact = won_exact[:, topk - 1 : topk]
    least_id = order[:, topk - 1 : topk]
    shared = bucket[:, topk] == bucket[:, topk - 1]
    above = ((key >> np.uint64(bits)) == least_bucket) & (experts[None, :] > least_id) & (key > least_exact)
    above &= candidate
    proved = ~out_of_order & ~(shared & above.any(axis=1))
    return order[:, :topk], proved, order


def _spec_selection(key: np.ndarray, topk: int, candidate: np.ndarray) -> np.ndarray:
    """SPEC step 5 on exact keys: the K largest of the candidates, the lower expert index first among equal
    keys."""
    ranked = np.where(candidate, key.astype(np.int64), -1)
    return np.argsort(-ranked, axis=1, kind="stable")[:, :topk]


def test_named_keys_proof_holds_whenever_it_proves() -> None:
    """route.cu's select_by_named_keys argument: wherever the kernel calls a row proved, the experts the
    rounds on named keys select, in round order, are SPEC's selection of the exact keys, slot for slot. Over
    rows whose keys crowd into 4 buckets (half the rows) or spread over 4096 (random low bits, exact ties,
    near ties within a few ulps, runs of -inf's key) for E = 32 to 256 and K = 2 to 16, and with 3 of 8
    groups kept at E = 160 (DeepSeek-V2; the kept groups drawn at random: the named keys take them as given);
    the rows where the named order alone would be wrong must exist (the checks are needed) and every one must
    be unproved."""
    rng = np.random.default_rng(16)
    wrong_named = 0
    proved_rows = 0
    for num_experts, topk, groups in (
        (32, 2, 0),
        (64, 6, 0),
        (128, 8, 0),
        (128, 4, 0),
        (128, 16, 0),
        (256, 8, 0),
        (160, 6, 8),
    ):
        rows = 4000
        base = rng.integers(0x3F000000, 0x3F800000, size=(rows, 1), dtype=np.int64) | 0x80000000
        # Buckets of 2^b keys below the base: 0 to 3 buckets apart in half the rows, 0 to 4095 in the others.
        bits = next(b for b in (5, 6, 7, 8) if num_experts <= 1 << b)
        buckets = np.where(np.arange(rows)[:, None] % 2 == 0, 4, 4096)
        spread = (rng.random((rows, num_experts)) * buckets).astype(np.int64) << bits
        low = rng.integers(0, 1 << bits, size=(rows, num_experts))
        key = base - spread + low
        ties = rng.random((rows, num_experts)) < 0.3  # copy a neighbour's key: exact ties
        key[:, 1:] = np.where(ties[:, 1:], key[:, :-1], key[:, 1:])
        near = rng.random((rows, num_experts)) < 0.2  # within 2 ulps of a random other expert's key
        partner = rng.integers(0, num_experts, size=(rows, num_experts))
        moved = np.take_along_axis(key, partner, axis=1) + rng.integers(-2, 3, size=(rows, num_experts))
        key = np.where(near, moved, key)
        key[: rows // 20, : num_experts // 2] = 0x007FFFFF  # ord(-inf), many of them
        key = key.astype(np.uint64)
        candidate = _kept_groups(rng, rows, num_experts, groups)
        winners, proved, _ = _named_keys_rounds(key, topk, candidate)
        expected = _spec_selection(key, topk, candidate)
        differs = (winners != expected).any(axis=1)
        assert not (differs & proved).any(), (
            f"E={num_experts} K={topk}: proved rows whose named selection is not SPEC's: "
            f"{np.flatnonzero(differs & proved)[:5].tolist()}"
        )
        wrong_named += int(differs.sum())
        proved_rows += int(proved.sum())
    assert wrong_named >= 100, f"only {wrong_named} rows where the named order alone is wrong"
    assert proved_rows >= 5000, f"only {proved_rows} proved rows"


def _kept_groups(rng: np.random.Generator, rows: int, num_experts: int, groups: int) -> np.ndarray:
    """[rows, num_experts] bool: the experts of 3 groups of `groups` kept at random in each row (the named
    keys take the kept groups as given); every expert where groups is 0 (no group step)."""
    if not groups:
        return np.ones((rows, num_experts), dtype=bool)
    kept = np.argsort(rng.random((rows, groups)), axis=1)[:, :3]
    in_kept = np.zeros((rows, groups), dtype=bool)
    np.put_along_axis(in_kept, kept, True, axis=1)
    return np.repeat(in_kept, num_experts // groups, axis=1)


def _key(x: np.ndarray) -> np.ndarray:
    """biased_score_keys without a bias, of non-negative float32 values: their bits with the sign bit set."""
    return (x.view(np.uint32).astype(np.uint64)) | np.uint64(0x80000000)


def _lazy_named_keys_rounds(
    numerator: np.ndarray, row_sum: np.ndarray, topk: int, candidate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """route.cu's select_by_named_keys on lazy softmax keys, written again from its comment: the rounds name
    the numerators' keys (not p's), the winners' p = RN(e / s) are computed, adjacent winners must be in
    SPEC's order by (p, lower index), and the experts left out are checked lane by lane unless the largest of
    them shares no bucket with the last winner and the top of its bucket, divided, is below the last winner's
    p. numerator [rows, E] float32 in [0, 1]; row_sum [rows] float32 >= 1. Returns the winners [rows, K],
    `proved` [rows] and whether the row took the lane check [rows]."""
    num_experts = numerator.shape[1]
    bits = next(b for b in (5, 6, 7, 8) if num_experts <= 1 << b)
    mask = np.uint64((1 << bits) - 1)
    experts = np.arange(num_experts, dtype=np.uint64)
    p = numerator / row_sum[:, None]  # float32 / float32: IEEE RN, div.rn's bits
    named = np.where(candidate, (_key(numerator) | mask) - experts, np.uint64(0))
    order = np.argsort(-named.astype(np.int64), axis=1, kind="stable")
    won_named = np.take_along_axis(named, order, axis=1)
    won_p = np.take_along_axis(p, order, axis=1)
    # Adjacent winners by (p, lower index): across buckets the numerators decrease but their p may be equal.
    a, b = won_p[:, : topk - 1], won_p[:, 1:topk]
    out_of_order = ((a < b) | ((a == b) & (order[:, : topk - 1] > order[:, 1:topk]))).any(axis=1)
    least_p = won_p[:, topk - 1 : topk]
    least_id = order[:, topk - 1 : topk]
    least_bucket = won_named[:, topk - 1] >> np.uint64(bits)
    next_bucket = won_named[:, topk] >> np.uint64(bits)
    top = (((next_bucket << np.uint64(bits)) | mask) & np.uint64(0x7FFFFFFF)).astype(np.uint32).view(F32)
    lane_check = (next_bucket == least_bucket) | ~(top / row_sum < least_p[:, 0])
    left_out = candidate & (named < won_named[:, topk - 1 : topk])
    above = left_out & ((p > least_p) | ((p == least_p) & (experts[None, :].astype(np.int64) < least_id)))
    proved = ~out_of_order & ~(lane_check & above.any(axis=1))
    return order[:, :topk], proved, lane_check


def test_lazy_named_keys_proof_holds_whenever_it_proves() -> None:
    """The lazy softmax's named keys (route.cu: select_by_named_keys with `lazy`): the rounds run on the
    numerators e = expf(x - rowmax), whose order p = RN(e / s) keeps only weakly, so two winners, or a winner
    and an expert left out, may have equal p in the other index order. Wherever the kernel calls a row proved,
    its winners, in round order, are SPEC's selection of the exact p. Over numerators crowded within a few
    ulps of each other (where RN(e / s) merges them), exact ties, zeros, and random ones, sums from 1 to 1024,
    E = 64 to 256 and K = 2 to 16 and 3 of 8 groups kept at E = 160. The rows the named order alone gets
    wrong must exist, and so must rows proved without the lane check (the cheap bound is not vacuous).
    Also: the group step's key from the group's largest numerator, divided, equals the largest p."""
    rng = np.random.default_rng(19)
    wrong_named = 0
    proved_rows = 0
    cheap_rows = 0
    for num_experts, topk, groups in (
        (64, 6, 0),
        (128, 8, 0),
        (128, 4, 0),
        (128, 16, 0),
        (256, 8, 0),
        (160, 6, 8),
    ):
        rows = 4000
        bits = next(b for b in (5, 6, 7, 8) if num_experts <= 1 << b)
        base = rng.uniform(0.02, 1.0, size=(rows, 1)).astype(F32)
        # A third of the rows at a bucket's edge (the named keys' buckets: 2^b ulps; below), so that adjacent
        # floats of two buckets meet; a third within 40 ulps below a base; the others spread over a factor
        # of 50.
        crowded = base.view(np.int32).astype(np.int64) - rng.integers(0, 41, size=(rows, num_experts))
        spread = (base * rng.uniform(0.02, 1.0, size=(rows, num_experts))).astype(F32)
        # In the edge rows K + 2 experts, at random, sit at a bucket's edge: K of them 0 to 2 ulps above it,
        # two 1 or 2 ulps below, in the bucket under it; the others are spread below.
        edge = (base.view(np.int32).astype(np.int64) >> bits) << bits
        rank = np.argsort(np.argsort(rng.random((rows, num_experts)), axis=1), axis=1)
        offset = np.where(
            rank < topk, rng.integers(0, 3, size=rank.shape), -rng.integers(1, 3, size=rank.shape)
        )
        at_edge = (edge + offset).astype(np.int32).view(F32)
        at_edge = np.where(rank < topk + 2, at_edge, spread * F32(0.5))
        kind = np.arange(rows)[:, None] % 3
        numerator = np.where(
            kind == 0, at_edge, np.where(kind == 1, crowded.astype(np.int32).view(F32), spread)
        )
        numerator = numerator.astype(F32)
        ties = rng.random((rows, num_experts)) < 0.2
        numerator[:, 1:] = np.where(ties[:, 1:], numerator[:, :-1], numerator[:, 1:])
        numerator[: rows // 20, : num_experts // 4] = 0.0  # exp(-inf)
        maximum_first = rng.random(rows) < 0.3  # the row maximum's own e = 1 at expert 0
        numerator[:, 0] = np.where(maximum_first, F32(1.0), numerator[:, 0])
        # Sums whose mantissa is near 2 in half the rows: there RN(e / s) merges about half of the pairs of
        # adjacent numerators (the quotients' spacing is an ulp of e over s's mantissa).
        row_sum = rng.uniform(1.0, 1024.0, size=rows).astype(F32)
        near_two = np.exp2(rng.integers(0, 10, size=rows)) * rng.uniform(1.8, 2.0, size=rows)
        row_sum = np.where(np.arange(rows) % 2 == 0, near_two, row_sum).astype(F32)
        candidate = _kept_groups(rng, rows, num_experts, groups)
        if groups:
            per_group = numerator.reshape(rows, groups, -1)
            group_p = (per_group / row_sum[:, None, None]).max(axis=2)
            assert np.array_equal(per_group.max(axis=2) / row_sum[:, None], group_p)
        p = numerator / row_sum[:, None]
        winners, proved, lane_check = _lazy_named_keys_rounds(numerator, row_sum, topk, candidate)
        expected = _spec_selection(_key(p), topk, candidate)
        differs = (winners != expected).any(axis=1)
        assert not (differs & proved).any(), (
            f"E={num_experts} K={topk}: proved rows whose lazy named selection is not SPEC's: "
            f"{np.flatnonzero(differs & proved)[:5].tolist()}"
        )
        wrong_named += int(differs.sum())
        proved_rows += int(proved.sum())
        cheap_rows += int((proved & ~lane_check).sum())
    assert wrong_named >= 100, f"only {wrong_named} rows where the lazy named order alone is wrong"
    assert proved_rows >= 5000, f"only {proved_rows} proved rows"
    assert cheap_rows >= 5000, f"only {cheap_rows} rows proved without the lane check"


def _lane_named_tau(lane_max: np.ndarray, topk: int) -> np.ndarray:
    """route.cu's lane_named_tau on warps of 32 lane maxima (uint64 holding u32, [warps, 32]), written again
    from its comment: each lane's maximum named by its lane ((m & ~31) | (31 - lane)), K rounds of a warp
    maximum in which the lanes holding it drop out (to 0, kNotCandidate), then the last maximum's low 5 bits
    cleared. Returns [warps]."""
    lanes = np.arange(32, dtype=np.uint64)
    named = (lane_max & ~np.uint64(31)) | (np.uint64(31) - lanes)[None, :]
    top = np.zeros(lane_max.shape[0], dtype=np.uint64)
    for _ in range(topk):
        top = named.max(axis=1)
        named = np.where(named == top[:, None], np.uint64(0), named)
    return top & ~np.uint64(31)


def test_lane_named_tau_is_the_kth_lane_maximum_with_its_low_bits_cleared() -> None:
    """route.cu's lane_named_tau: for every K from 1 to 32, K rounds of one maximum over the named lane maxima
    give the K-th largest lane maximum (with multiplicity) with its low 5 bits cleared, so never more than
    it: the floor of the staged candidates. Warps of random keys, of many exact ties, of maxima that differ
    only in their low 5 bits (the names then decide each round), and of maxima below 32 (where a named value
    can be 0, kNotCandidate)."""
    rng = np.random.default_rng(23)
    warps = 4000
    keys = [
        rng.integers(0, 2**32, (warps, 32), dtype=np.uint64),
        rng.integers(0, 4, (warps, 32), dtype=np.uint64) * np.uint64(0x9000_0000),  # exact ties
        np.uint64(0xBF80_0000) + rng.integers(0, 64, (warps, 32), dtype=np.uint64),  # low bits only
        rng.integers(0, 40, (warps, 32), dtype=np.uint64),  # below 32: named values of 0
    ]
    lane_max = np.concatenate(keys)
    kth = -np.sort(-lane_max.astype(np.int64), axis=1)  # descending, with multiplicity
    differ_below_the_names = 0
    for topk in range(1, 33):
        tau = kth[:, topk - 1].astype(np.uint64)
        got = _lane_named_tau(lane_max, topk)
        assert np.array_equal(got, tau & ~np.uint64(31)), f"K={topk}"
        assert np.all(got <= tau)
        differ_below_the_names += int((got != tau).sum())
    # The truncation is not vacuous: the floor is often below tau itself.
    assert differ_below_the_names > 10000
