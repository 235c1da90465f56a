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
