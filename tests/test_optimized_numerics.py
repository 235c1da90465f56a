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
        candidate = np.ones(key.shape, dtype=bool)
        if groups:  # 3 of the groups kept, at random
            kept = np.argsort(rng.random((rows, groups)), axis=1)[:, :3]
            in_kept = np.zeros((rows, groups), dtype=bool)
            np.put_along_axis(in_kept, kept, True, axis=1)
            candidate = np.repeat(in_kept, num_experts // groups, axis=1)
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
