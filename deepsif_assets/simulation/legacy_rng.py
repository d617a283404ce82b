"""Bit-exact replay of ``numpy.random.RandomState`` (MT19937 + legacy polar Gaussian) inside numba loops.

tvb-library draws one ``normal(size=(6, n, 1))`` per step from a legacy ``RandomState`` but only uses row 4 (the
y4 equation). Calling NumPy per step costs ≈ 0.18 ms (5,988 Gaussians); here the Mersenne Twister stream is advanced
in compiled code and ``log``/``sqrt`` are evaluated only for the Gaussians that are used, which gives the very same
numbers (verified against NumPy in the tests) at a fraction of the cost.

State layout (all NumPy arrays so numba functions can mutate them in place):
``key`` uint32[1248] (raw + tempered words), ``pos`` int64[1], ``gauss`` float64[2] = (has_gauss, cached value).

Why 32-bit words: AVX2 has no 64-bit integer multiply and no 64-bit integer → double conversion, so int64 words
kept the twist and the 53-bit doubles scalar; as uint32 both vectorise (8 words, 4 conversions per instruction)
and the replay of one step's 5,964 draws takes ≈ 18 µs instead of ≈ 33 µs (same numbers, tests).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_N = 624
_M = 397
_MATRIX_A = 0x9908B0DF
_UPPER = 0x80000000
_LOWER = 0x7FFFFFFF


def state_from_random_state(rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy the MT19937 state of ``rs`` into (key, pos, gauss) arrays for the numba functions.

    ``key`` is uint32[1248]: the 624 raw state words followed by the same words tempered (the outputs of the
    current block), so the hot loop reads outputs without re-tempering.
    """
    name, key, pos, has_gauss, cached = rs.get_state(legacy=True)
    if name != "MT19937":
        raise ValueError(f"unsupported bit generator {name!r}")
    state = np.zeros(2 * _N, dtype=np.uint32)
    state[:_N] = np.asarray(key, dtype=np.uint32)
    _temper_block(state)
    return (
        state,
        np.array([pos], dtype=np.int64),
        np.array([float(has_gauss), float(cached)], dtype=np.float64),
    )


def state_to_random_state(key: np.ndarray, pos: np.ndarray, gauss: np.ndarray) -> np.random.RandomState:
    """Inverse of :func:`state_from_random_state` (used to check that the stream position agrees)."""
    rs = np.random.RandomState()
    rs.set_state(("MT19937", key[:_N].astype(np.uint32), int(pos[0]), int(gauss[0]), float(gauss[1])))
    return rs


@njit(cache=True, nogil=True, error_model="numpy")
def _temper_block(key):
    for i in range(_N):
        y = key[i]
        y ^= y >> np.uint32(11)
        y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
        y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
        y ^= y >> np.uint32(18)
        key[_N + i] = y


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _twist(upper, lower):
    # MATRIX_A where the low bit is set, selected by a mask (a multiply by the bit would not vectorise)
    y = (upper & np.uint32(_UPPER)) | (lower & np.uint32(_LOWER))
    return (y >> np.uint32(1)) ^ ((np.uint32(0) - (y & np.uint32(1))) & np.uint32(_MATRIX_A))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _u53(a, b):
    """NumPy's double in [0, 1) from two words (27 + 26 bits); both shifted words fit an int32, whose
    conversion to double vectorises."""
    high, low = np.int32(a >> np.uint32(5)), np.int32(b >> np.uint32(6))
    return (float(high) * 67108864.0 + float(low)) / 9007199254740992.0


@njit(cache=True, nogil=True, error_model="numpy")
def _regenerate(key):
    """Next MT19937 block in ``key[:624]``, tempered outputs in ``key[624:]``."""
    for i in range(_N - _M):
        key[i] = key[i + _M] ^ _twist(key[i], key[i + 1])
    for i in range(_N - _M, _N - 1):
        key[i] = key[i + _M - _N] ^ _twist(key[i], key[i + 1])
    key[_N - 1] = key[_M - 1] ^ _twist(key[_N - 1], key[0])
    _temper_block(key)


@njit(cache=True, nogil=True, error_model="numpy")
def legacy_normals(key, pos, gauss, n_total, lo, hi, out):
    """Consume ``n_total`` legacy standard normals; store those with index in [lo, hi) into ``out[idx - lo]``.

    Legacy ``gauss`` (polar method): each attempt takes four 32-bit words (two 53-bit doubles x1, x2) and is
    accepted iff 0 < x1² + x2² < 1; an accepted attempt yields the pair (f·x2, f·x1), the second one cached.
    Attempts are scanned branch-free; ``log``/``sqrt`` are evaluated only for pairs that are stored, and a pair
    straddling the end of the block is completed into the cache, exactly as ``RandomState`` does.
    """
    if hi - lo > out.shape[0] or lo < 0 or hi > n_total or lo > hi:
        raise ValueError("legacy_normals: output buffer too small or bad range")
    if n_total <= 0:
        return
    lead = 1 if gauss[0] != 0.0 else 0
    if lead == 1 and lo == 0 and hi > 0:
        out[0] = gauss[1]
    n_pairs = (n_total - lead + 1) // 2
    q_lo = max(0, (lo - lead) // 2)
    q_hi = min(n_pairs, (hi - 1 - lead) // 2 + 1) if hi > lead else q_lo
    q_hi = max(q_hi, q_lo)
    n_need = q_hi - q_lo
    keep_x1 = np.empty(n_need + 1)
    keep_x2 = np.empty(n_need + 1)
    keep_r2 = np.empty(n_need + 1)
    p = pos[0]
    words = np.empty(4, dtype=np.uint32)
    block_x1 = np.empty(_N // 4)
    block_x2 = np.empty(_N // 4)
    block_r2 = np.empty(_N // 4)
    k = 0
    x1 = 0.0
    x2 = 0.0
    r2 = 0.0
    while k < n_pairs:
        n_groups = (_N - p) // 4  # attempts lying entirely in the current block
        if n_groups == 0:
            # an attempt straddling two blocks (or an exhausted block): word by word
            for w in range(4):
                if p >= _N:
                    _regenerate(key)
                    p = 0
                words[w] = key[_N + p]
                p += 1
            x1 = 2.0 * _u53(words[0], words[1]) - 1.0
            x2 = 2.0 * _u53(words[2], words[3]) - 1.0
            r2 = x1 * x1 + x2 * x2
            if r2 < 1.0 and r2 != 0.0:
                if q_lo <= k < q_hi:
                    keep_x1[k - q_lo] = x1
                    keep_x2[k - q_lo] = x2
                    keep_r2[k - q_lo] = r2
                k += 1
            continue
        # blocks wholly before/after the kept pairs and not ending the draw: only count acceptances
        # (vectorisable, no stores); the pairs to keep and the final pair go through the scan below
        # (a slice indexed from a range: no negative-index handling per load)
        block = key[_N + p : _N + p + 4 * n_groups]
        n_accepted = 0
        for g in range(n_groups):
            u1 = _u53(block[4 * g], block[4 * g + 1])
            u2 = _u53(block[4 * g + 2], block[4 * g + 3])
            c1 = 2.0 * u1 - 1.0
            c2 = 2.0 * u2 - 1.0
            cr2 = c1 * c1 + c2 * c2
            n_accepted += 1 if (cr2 < 1.0 and cr2 != 0.0) else 0
        if k + n_accepted < n_pairs and (k + n_accepted <= q_lo or k >= q_hi):
            k += n_accepted
            p += 4 * n_groups
            continue
        # all attempts of the block at once (vectorisable), then a branch-free acceptance scan
        for g in range(n_groups):
            u1 = _u53(block[4 * g], block[4 * g + 1])
            u2 = _u53(block[4 * g + 2], block[4 * g + 3])
            block_x1[g] = 2.0 * u1 - 1.0
            block_x2[g] = 2.0 * u2 - 1.0
            block_r2[g] = block_x1[g] * block_x1[g] + block_x2[g] * block_x2[g]
        g = 0
        while g < n_groups and k < n_pairs:
            r2 = block_r2[g]
            j = k - q_lo if (k >= q_lo and k < q_hi) else n_need  # slot n_need is a scratch slot
            keep_x1[j] = block_x1[g]
            keep_x2[j] = block_x2[g]
            keep_r2[j] = r2
            k += 1 if (r2 < 1.0 and r2 != 0.0) else 0
            g += 1
        x1 = block_x1[g - 1]
        x2 = block_x2[g - 1]
        p += 4 * g
    pos[0] = p
    for q in range(q_lo, q_hi):
        j = q - q_lo
        f = math.sqrt(-2.0 * math.log(keep_r2[j]) / keep_r2[j])
        first = lead + 2 * q
        if lo <= first < hi:
            out[first - lo] = f * keep_x2[j]
        if lo <= first + 1 < hi:
            out[first + 1 - lo] = f * keep_x1[j]
    if (n_total - lead) % 2 == 1:
        # the last pair's second value stays cached for the next call; x1, r2 are the last accepted attempt's
        f = math.sqrt(-2.0 * math.log(r2) / r2)
        gauss[0] = 1.0
        gauss[1] = f * x1
    else:
        gauss[0] = 0.0
        gauss[1] = 0.0
