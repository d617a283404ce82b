"""Lock-step lanes: K independent JansenRit simulations on one connectome advanced together (NumPy + numba).

Each lane is one simulation (one region's iteration: its own A vector, mu, noise amplitude and seed) with exactly
the numerics of :mod:`.engine`'s description (TVB 2.10: random initial history drawn first, Heun stochastic,
additive noise on y4 from one legacy ``normal(size=(6, n, 1))`` per step). What lanes share is the work:

* **layout, lanes innermost** — every per-node array is ``(…, n, K)`` flattened to ``n·K`` (lane fastest), so
  the node update runs over ``n·K`` contiguous values, :data:`VECTOR_WIDTH` at a time (eight float64 in an
  AVX-512 register, else four in an AVX2 one; written explicitly: LLVM's loop vectoriser gives up on loops that
  touch this many arrays). The ring buffer is node-major, then slot, then lane: node j owns ``2·H_j + B − 1``
  slots of K values, ``H_j`` = (largest delay of j's outgoing edges) + B + 1 (connectivity_998: about half of
  what one global horizon would need). Every value is stored twice (slot h and h + H_j, plus an overhang of
  B − 1), so a read never needs a modulo. Only plain NumPy arrays enter the compiled loop (a GPU back-end could
  keep the same layout).
* **blocks of B steps** — every delay of connectivity_998 is ≥ 3 steps at dt 0.5, so the coupling of the next
  B = min(smallest delay + 1, 4) steps only reads states from before them: one pass over the 35,730 edges (CSR
  by target, ascending source within a target, the single-lane engine's summation order) gathers B steps at
  once, each edge reading B·K contiguous ring values, summed 48 at a time in twelve F64x4 registers while the
  run of the edge 16 ahead is prefetched (the runs are scattered over the ring: without the hint every edge
  waits for memory). The B + 1 spare slots per node mean that what a chunk of nodes writes during a block is
  never a slot another chunk still reads for it: with ``threads`` > 1 the node chunks run on numba threads
  with one barrier per block.
* **one random stream per distinct seed** — lanes with the same seed (seed policy ``fixed``: every lane)
  consume the identical legacy stream: same uniform initial history, same per-step standard normals (each lane
  scales them by its own noise amplitude). The stream is replayed once per step for all of them
  (:func:`.legacy_rng.legacy_normals`); lanes with distinct seeds replay one stream each (≈ 18 µs per stream
  and step).
* **vectorised exp** (``precision="fast"``, the default) — the four sigmoid ``exp`` evaluations per value and
  step use :func:`_exp_fast` (Cody–Waite reduction by ln 2, degree-13 Taylor polynomial by Estrin's scheme with
  FMAs, 2^k built from the integer bits) on whole vectors, instead of one libm call at a time; with DeepSIF's
  constants (a_1 = 4·a_3) the two y0 sigmoids share one exp: exp(r(v0 − a_1Jy0)) = exp(r(v0 − a_3Jy0))⁴ ·
  exp(−3rv0). Accuracy: :data:`FAST_EXP_MAX_ULP`; the results differ from libm's in the last bits only, and the
  parity with stock tvb-library (which itself uses NumPy's SIMD exp) holds with :mod:`.engine`'s tolerance
  (tests; whole 10-s segment in the benchmark). The fast precision also keeps the ring in float32 (the coupling
  sigmoids lie in [cmin, cmax]; the gather widens them and sums in float64 with FMAs): half the bytes the gather
  streams from the cache. Whole 10-s segment vs stock tvb: max |Δ| 0.20 of the allowed 1e-5·|y| + 1e-4 mV (0.07
  with a float64 ring), in the start-up transient; later 0.002 (the float32 output rounding).
  ``precision="faithful"`` calls libm ``exp`` in the single-lane engine's loops and keeps a float64 ring summed
  with separate multiply and add: bit for bit the single-lane engine's output.

Per lane the operations and their order are independent of K, of the other lanes in the batch and of the number
of threads (no sum runs across lanes; per target the coupling terms are added in ascending source order in every
partition), so a lane's output is bitwise the same whatever batch it runs in (tests).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from .connectivity import Connectivity
from .engine import JR_STATE_RANGES, JansenRitConstants, coupling_pre
from .legacy_rng import legacy_normals, state_from_random_state

#: ``precision`` options: "fast" (vectorised exp, default) or "faithful" (libm exp, bitwise the old engine)
ENGINE_PRECISIONS = ("fast", "faithful")
DEFAULT_PRECISION = "fast"
#: most steps whose coupling is gathered in one pass over the edges (also bounded by the smallest delay + 1)
BLOCK_MAX = 4
#: values (node·lane) per tile of the node update
TILE = 512
#: the gather requests the ring run of the edge this many edges ahead (best of 8, 16, 36, 72 measured)
PREFETCH = 16
#: measured bound of :func:`_exp_fast` vs a long-double reference over its whole range (tests)
FAST_EXP_MAX_ULP = 1.5  # measured maximum 1.03 ulp

# Cody–Waite: ln 2 split so that k·_LN2_HI is exact for |k| < 2**21 (the low 21 bits of _LN2_HI are zero)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# adding 1.5·2**52 + 1023 rounds to an integer k + 1023 that then sits in the low mantissa bits, so that
# shifting them to the exponent field gives 2**k (no float → int conversion: AVX2 lacks it for 64-bit integers)
_SHIFT = 6755399441055744.0 + 1023.0
# |x| ≤ 708: 2**k stays a normal number and exp(x) finite; beyond, the sigmoids are 0 or 2·nu_max to the last bit
_EXP_CLAMP = 708.0
# 1/k! for k = 2..13 (degree 13: truncation < 5e-18 relative for |r| ≤ ln2/2)
_C = tuple(1.0 / math.factorial(k) for k in range(2, 14))
# :func:`_exp_fast`'s constants in order; the kernel receives them at run time, after the model's (see _heun_tiles)
_EXP_CONSTANTS = (_EXP_CLAMP, _LOG2E, _SHIFT, _LN2_HI, _LN2_LO, *_C)


# --- 4-wide float64 vectors: the fast kernels are written with them instead of relying on LLVM's loop
# vectoriser (which gives up on loops that touch many arrays, or emits runtime alias checks per edge) ------


class _F64VecType(types.Type):
    """``width`` float64 values in one SIMD register (LLVM ``<width x double>``); scalars broadcast in
    arithmetic. A vector wider than the machine's registers is split by LLVM into several (the same bits)."""

    def __init__(self, width: int) -> None:
        self.width = width
        super().__init__(name=f"F64x{width}")


def _target_has_avx512() -> bool:
    """Whether numba compiles for AVX-512: the host's features, or NUMBA_CPU_FEATURES when it is set."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in features.split(",")


#: values per vector in the node update: a 512-bit register where the CPU has AVX-512 (a 12-lane step 1.13×
#: faster than at four, benchmarks/deepsif_lanes_benchmark.py); per value the same operations, the same bits.
#: (The gather stays at four: six 512-bit accumulators per edge run measured ≈ 35 % slower than twelve of 256.)
VECTOR_WIDTH = 8 if _target_has_avx512() else 4
#: environment that makes numba compile for AVX2 (four values per vector) on any x86-64 host: the build the
#: AVX-512 one is compared with (tests, benchmarks/deepsif_lanes_benchmark.py)
AVX2_NUMBA_TARGET = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx,+avx2,+fma,+popcnt,+sse4.2"}


def _vector_ir(width: int) -> ir.VectorType:
    return ir.VectorType(ir.DoubleType(), width)


@register_model(_F64VecType)
class _F64VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _vector_ir(fe_type.width))


def _is_real(ty) -> bool:
    return isinstance(ty, _F64VecType) or ty == types.float64


def _vector_of(*tys) -> _F64VecType | None:
    """The vector type among ``tys``, None if all are scalars (vectors of two widths never meet: a typing
    error)."""
    vectors = {ty for ty in tys if isinstance(ty, _F64VecType)}
    if len(vectors) > 1:
        raise TypeError(f"vectors of different widths in one operation: {sorted(map(str, vectors))}")
    return vectors.pop() if vectors else None


def _splat(builder, value, width: int):
    vector_ty = _vector_ir(width)
    first = ir.Constant(ir.IntType(32), 0)
    vector = builder.insert_element(ir.Constant(vector_ty, ir.Undefined), value, first)
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    return builder.shuffle_vector(vector, ir.Constant(vector_ty, ir.Undefined), zeros)


def _operands(builder, signature, args):
    """The arguments as <width x double> (scalars splat) if any is a vector, else as they are."""
    vector = _vector_of(*signature.args)
    if vector is None:
        return list(args)
    return [
        value if isinstance(ty, _F64VecType) else _splat(builder, value, vector.width)
        for ty, value in zip(signature.args, args, strict=True)
    ]


def _element_pointer(context, builder, array_type, array, index):
    return builder.gep(context.make_array(array_type)(context, builder, array).data, [index])


@intrinsic(prefer_literal=True)
def _vload(typingctx, array, index, width):
    """array[index : index + width] as F64x<width> (float32 arrays widened exactly); ``width`` a literal."""
    if (
        isinstance(array, types.Array)
        and array.dtype in (types.float32, types.float64)
        and isinstance(width, types.IntegerLiteral)
    ):
        n = width.literal_value

        def codegen(context, builder, signature, args):
            dtype = signature.args[0].dtype
            element = context.get_value_type(dtype)
            pointer = _element_pointer(context, builder, signature.args[0], *args[:2])
            pointer = builder.bitcast(pointer, ir.VectorType(element, n).as_pointer())
            value = builder.load(pointer, align=4 if dtype == types.float32 else 8)
            return builder.fpext(value, _vector_ir(n)) if dtype == types.float32 else value

        return _F64VecType(n)(array, index, width), codegen
    return None


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _vload_w(array, index):
    """array[index : index + VECTOR_WIDTH] as one vector (the node update's width)."""
    return _vload(array, index, VECTOR_WIDTH)


@intrinsic
def _vstore(typingctx, array, index, value):
    """array[index : index + width] = value (rounded to nearest for a float32 array)."""
    if (
        isinstance(array, types.Array)
        and array.dtype in (types.float32, types.float64)
        and isinstance(value, _F64VecType)
    ):
        n = value.width

        def codegen(context, builder, signature, args):
            dtype = signature.args[0].dtype
            element = context.get_value_type(dtype)
            vector = (
                args[2] if dtype == types.float64 else builder.fptrunc(args[2], ir.VectorType(element, n))
            )
            pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1])
            pointer = builder.bitcast(pointer, ir.VectorType(element, n).as_pointer())
            builder.store(vector, pointer, align=4 if dtype == types.float32 else 8)
            return context.get_dummy_value()

        return types.none(array, index, value), codegen
    return None


def _vector_operator(operation, instruction):
    @intrinsic
    def apply(typingctx, a, b):
        if _is_real(a) and _is_real(b) and _vector_of(a, b) is not None:

            def codegen(context, builder, signature, args):
                return getattr(builder, instruction)(*_operands(builder, signature, args))

            return _vector_of(a, b)(a, b), codegen
        return None

    @overload(operation)
    def overloaded(a, b):
        if _is_real(a) and _is_real(b) and _vector_of(a, b) is not None:
            return lambda a, b: apply(a, b)
        return None


for _operation, _instruction in (
    (operator.add, "fadd"),
    (operator.sub, "fsub"),
    (operator.mul, "fmul"),
    (operator.truediv, "fdiv"),
):
    _vector_operator(_operation, _instruction)


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma: one vfmadd), on float64 or vectors (scalars broadcast)."""
    if _is_real(a) and _is_real(b) and _is_real(c):
        vector = _vector_of(a, b, c)

        def codegen(context, builder, signature, args):
            ty = _vector_ir(vector.width) if vector else ir.DoubleType()
            return builder.call(_fma_function(builder, ty, vector), _operands(builder, signature, args))

        return (vector or types.float64)(a, b, c), codegen
    return None


def _fma_function(builder, ty, vector: _F64VecType | None):
    name = f"llvm.fma.v{vector.width}f64" if vector else "llvm.fma.f64"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)


@intrinsic
def _vclamp(typingctx, x, lo, hi):
    if isinstance(x, _F64VecType) and lo == types.float64 and hi == types.float64:

        def codegen(context, builder, signature, args):
            value, low, high = args[0], _splat(builder, args[1], x.width), _splat(builder, args[2], x.width)
            value = builder.select(builder.fcmp_ordered("<", value, low), low, value)
            return builder.select(builder.fcmp_ordered(">", value, high), high, value)

        return x(x, lo, hi), codegen
    return None


def _clamp(x, lo, hi):
    """min(max(x, lo), hi) on float64 or a vector, both as numba lowers the builtins (x < lo ? lo : x, then
    x > hi ? hi : x; a NaN passes through)."""


@overload(_clamp)
def _clamp_overload(x, lo, hi):
    if isinstance(x, _F64VecType):
        return lambda x, lo, hi: _vclamp(x, lo, hi)
    if x == types.float64:
        # the builtins themselves for scalars: with an equivalent intrinsic, LLVM's cost model no longer
        # vectorised the loops that call the scalar exp
        return lambda x, lo, hi: min(max(x, lo), hi)
    return None


@intrinsic
def _pow2_of_shifted(typingctx, kd):
    """2**k from kd = k + 1023 + 1.5·2**52 (k + 1023 sits in its low mantissa bits): those bits << 52."""
    if _is_real(kd):
        vector = isinstance(kd, _F64VecType)

        def codegen(context, builder, signature, args):
            ity = ir.VectorType(ir.IntType(64), kd.width) if vector else ir.IntType(64)
            shift = ir.Constant(ity, [52] * kd.width) if vector else ir.Constant(ity, 52)
            bits = builder.shl(builder.bitcast(args[0], ity), shift)
            return builder.bitcast(bits, _vector_ir(kd.width) if vector else ir.DoubleType())

        return kd(kd), codegen
    return None


@intrinsic
def _madd_ring(typingctx, w, ring, index, acc):
    """acc + w·ring[index : index + width] (vector acc) or acc + w·ring[index] (float64 acc). A float32
    ring (the fast precision's) is widened and accumulated with one FMA; a float64 ring (faithful) with the
    single-lane engine's multiply, then add."""
    if w == types.float64 and isinstance(ring, types.Array) and _is_real(acc):
        vector = acc if isinstance(acc, _F64VecType) else None
        dtype = ring.dtype

        def codegen(context, builder, signature, args):
            weight, array, idx, total = args
            element = context.get_value_type(dtype)
            pointer = _element_pointer(context, builder, signature.args[1], array, idx)
            if vector:
                pointer = builder.bitcast(pointer, ir.VectorType(element, vector.width).as_pointer())
            value = builder.load(pointer, align=4 if dtype == types.float32 else 8)
            ty = _vector_ir(vector.width) if vector else ir.DoubleType()
            weight = _splat(builder, weight, vector.width) if vector else weight
            if dtype == types.float32:
                value = builder.fpext(value, ty)
                return builder.call(_fma_function(builder, ty, vector), [weight, value, total])
            return builder.fadd(total, builder.fmul(weight, value))

        if ring.dtype in (types.float32, types.float64):
            return acc(w, ring, index, acc), codegen
    return None


@intrinsic(prefer_literal=True)
def _vzero(typingctx, width):
    """A vector of ``width`` zeros (``width`` a literal)."""
    if isinstance(width, types.IntegerLiteral):
        n = width.literal_value

        def codegen(context, builder, signature, args):
            return ir.Constant(_vector_ir(n), [0.0] * n)

        return _F64VecType(n)(width), codegen
    return None


@intrinsic(prefer_literal=True)
def _prefetch_run(typingctx, array, index, count):
    """Hint: array[index : index + count] will be read soon — one llvm.prefetch (read, keep in all levels) per
    64-byte line it may span (``count`` a literal)."""
    if isinstance(array, types.Array) and isinstance(count, types.IntegerLiteral):
        span = count.literal_value * array.dtype.bitwidth // 8
        offsets = [*range(0, span, 64), span - 1]  # bytes; the start need not be line-aligned

        def codegen(context, builder, signature, args):
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            base = builder.bitcast(_element_pointer(context, builder, signature.args[0], *args[:2]), i8p)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            for offset in offsets:
                pointer = builder.gep(base, [ir.Constant(ir.IntType(64), offset)])
                builder.call(fn, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.none(array, index, count), codegen
    return None


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_fast(x, ec):
    """exp(x) within FAST_EXP_MAX_ULP for |x| ≤ 708; clamped beyond (no inf, no NaN for finite x). Same
    operations on a float64 or a vector (so a value gets the same bits whether it is computed in a vector).
    ``ec``: :data:`_EXP_CONSTANTS` (a tuple, or the same values at run time)."""
    clamp, log2e, shift, ln2_hi, ln2_lo = ec[0], ec[1], ec[2], ec[3], ec[4]
    c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = (
        ec[5], ec[6], ec[7], ec[8], ec[9], ec[10], ec[11], ec[12], ec[13], ec[14], ec[15], ec[16]
    )
    x = _clamp(x, -clamp, clamp)
    kd = _fma(x, log2e, shift)
    k = kd - shift  # the integer nearest x·log2(e), as a double
    # k·ln2_hi is exact: x − k·ln2_hi rounded once (as with a separate product), then the low part
    r = _fma(k, -ln2_lo, _fma(k, -ln2_hi, x))
    # q(r) = Σ r^(i−2)/i!, i = 2..13, by Estrin's scheme with FMAs (a short dependency chain: the loops that
    # call this are latency-bound otherwise)
    r2 = r * r
    r4 = r2 * r2
    a0 = _fma(c3, r, c2)
    a1 = _fma(c5, r, c4)
    a2 = _fma(c7, r, c6)
    a3 = _fma(c9, r, c8)
    a4 = _fma(c11, r, c10)
    a5 = _fma(c13, r, c12)
    b0 = _fma(a1, r2, a0)
    b1 = _fma(a3, r2, a2)
    b2 = _fma(a5, r2, a4)
    q = _fma(_fma(b2, r4, b1), r4, b0)
    # 2**k·(1 + (r + r²q)) = 2**k·round(1 + t) exactly (a power of two scales without rounding), one op less
    scale = _pow2_of_shifted(kd)
    return _fma(scale, _fma(r2, q, r), scale)


@njit(cache=True, nogil=True, error_model="numpy")
def exp_fast_array(x: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_exp_fast` over a 1-D float64 array (for tests and callers outside the kernel)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = _exp_fast(x[i], _EXP_CONSTANTS)
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_pass(values, lo, hi, fast):
    if fast:
        for i in range(lo, hi):
            values[i] = _exp_fast(values[i], _EXP_CONSTANTS)
    else:
        # a tight loop of independent libm calls, as the single-lane engine (same bits as TVB's numba dfun)
        for i in range(lo, hi):
            values[i] = math.exp(values[i])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sigmoid_pass(values, lo, hi, two_nu_max):
    # its own loop (one array) so that the divisions are vectorised
    for i in range(lo, hi):
        values[i] = two_nu_max / (1.0 + values[i])


#: exp modes of the kernel: libm (faithful), fast, fast with one exp for both y0 sigmoids
_MODE_LIBM, _MODE_FAST, _MODE_FUSED = 0, 1, 2


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _y0_sigmoids(y0, sig01, sig03, lo, hi, k):
    """sig01 = S(a_1·J·y0), sig03 = S(a_3·J·y0) for values lo..hi with libm exp (faithful path, one array per loop),
    S(v) = 2·nu_max / (1 + exp(r(v0 − v)))."""
    nu_max, r, v0, a_1, a_3, J = k[0], k[1], k[2], k[4], k[6], k[10]
    two_nu_max = 2.0 * nu_max
    for i in range(lo, hi):
        sig01[i] = r * (v0 - (a_1 * J * y0[i]))
    for i in range(lo, hi):
        sig03[i] = r * (v0 - (a_3 * J * y0[i]))
    _exp_pass(sig01, lo, hi, False)
    _exp_pass(sig03, lo, hi, False)
    _sigmoid_pass(sig01, lo, hi, two_nu_max)
    _sigmoid_pass(sig03, lo, hi, two_nu_max)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_a1_fused(y0, k, e3, e_fused):
    """exp(r(v0 − a_1Jy0)) = e3⁴·exp(−3rv0) for a_1 = 4·a_3, e3 = exp(r(v0 − a_3Jy0)): one exp for both y0
    sigmoids, two more roundings (the last bits)."""
    e3_sq = e3 * e3
    return (e3_sq * e3_sq) * e_fused


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_a1_direct(y0, k, e3, e_fused):
    """exp(r(v0 − a_1Jy0)) evaluated (any a_1, a_3)."""
    r, v0, a_1, J = k[1], k[2], k[4], k[10]
    return _exp_fast(r * (v0 - (a_1 * J * y0)), k[11:])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _y0_sigmoids_fast(y0, k, exp_a1, e_fused):
    """(S(a_1·J·y0), S(a_3·J·y0)) with the vectorised exp; ``exp_a1``: :func:`_exp_a1_fused` or
    :func:`_exp_a1_direct`, chosen outside the loops (a branch inside them is if-converted into both exps)."""
    nu_max, r, v0, a_3, J = k[0], k[1], k[2], k[6], k[10]
    two_nu_max = 2.0 * nu_max
    e3 = _exp_fast(r * (v0 - (a_3 * J * y0)), k[11:])
    e1 = exp_a1(y0, k, e3, e_fused)
    return two_nu_max / (1.0 + e1), two_nu_max / (1.0 + e3)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _replay_noise(keys, pos, gauss, zraw, n_block, n):
    # each step's normal(size=(6, n, 1)) draw of every distinct stream; only row 4 (y4) carries noise
    for b in range(n_block):
        for s in range(keys.shape[0]):
            legacy_normals(keys[s], pos[s], gauss[s], 6 * n, 4 * n, 5 * n, zraw[b, s * n : (s + 1) * n])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ring_bases(first, node_off, node_h, rot):
    # ring position of time first − 1 of every node (in its mirrored half): time first − 1 − d + b at rot − d + b
    for j in range(node_h.shape[0]):
        h_j = node_h[j]
        rot[j] = node_off[j] + (first - 1) % h_j + h_j


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _edge_start(e, rot, e_src, e_delay, nk, q):
    # ring index of value q of edge e's run (unsigned: no negative-index handling per load)
    return np.uint64(rot[e_src[e]] - e_delay[e]) * nk + q


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_48(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc):
    """acc[q : q + 48] = Σ_e w_e·ring[start_e + q …], twelve F64x4 accumulators kept in registers across the
    edges (one vectorised load and multiply-add per 4 values and edge). The ring run of edge e + PREFETCH is
    requested meanwhile: the runs are scattered over the ring, so every one would otherwise wait for
    memory."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = _vzero(4)
    for e in range(e_lo, e_hi):
        _prefetch_run(ring, _edge_start(min(e + np.uint64(PREFETCH), e_last), rot, e_src, e_delay, nk, q), 48)
        s = _edge_start(e, rot, e_src, e_delay, nk, q)
        w = e_weight[e]
        a0 = _madd_ring(w, ring, s, a0)
        a1 = _madd_ring(w, ring, s + np.uint64(4), a1)
        a2 = _madd_ring(w, ring, s + np.uint64(8), a2)
        a3 = _madd_ring(w, ring, s + np.uint64(12), a3)
        a4 = _madd_ring(w, ring, s + np.uint64(16), a4)
        a5 = _madd_ring(w, ring, s + np.uint64(20), a5)
        a6 = _madd_ring(w, ring, s + np.uint64(24), a6)
        a7 = _madd_ring(w, ring, s + np.uint64(28), a7)
        a8 = _madd_ring(w, ring, s + np.uint64(32), a8)
        a9 = _madd_ring(w, ring, s + np.uint64(36), a9)
        a10 = _madd_ring(w, ring, s + np.uint64(40), a10)
        a11 = _madd_ring(w, ring, s + np.uint64(44), a11)
    for j, a in enumerate((a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)):
        _vstore(acc, q + np.uint64(4 * j), a)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_16(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc):
    """:func:`_gather_48` for 16 values."""
    a0 = a1 = a2 = a3 = _vzero(4)
    for e in range(e_lo, e_hi):
        _prefetch_run(ring, _edge_start(min(e + np.uint64(PREFETCH), e_last), rot, e_src, e_delay, nk, q), 16)
        s = _edge_start(e, rot, e_src, e_delay, nk, q)
        w = e_weight[e]
        a0 = _madd_ring(w, ring, s, a0)
        a1 = _madd_ring(w, ring, s + np.uint64(4), a1)
        a2 = _madd_ring(w, ring, s + np.uint64(8), a2)
        a3 = _madd_ring(w, ring, s + np.uint64(12), a3)
    for j, a in enumerate((a0, a1, a2, a3)):
        _vstore(acc, q + np.uint64(4 * j), a)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_4(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc):
    """:func:`_gather_48` for 4 values."""
    a0 = _vzero(4)
    for e in range(e_lo, e_hi):
        _prefetch_run(ring, _edge_start(min(e + np.uint64(PREFETCH), e_last), rot, e_src, e_delay, nk, q), 4)
        a0 = _madd_ring(e_weight[e], ring, _edge_start(e, rot, e_src, e_delay, nk, q), a0)
    _vstore(acc, q, a0)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gather_1(e_lo, e_hi, q, nk, rot, ring, e_src, e_delay, e_weight, acc):
    """:func:`_gather_48` for one value (the remainder when B·K is not a multiple of 4)."""
    a0 = 0.0
    for e in range(e_lo, e_hi):
        a0 = _madd_ring(e_weight[e], ring, _edge_start(e, rot, e_src, e_delay, nk, q), a0)
    acc[q] = a0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _chunk_gather(c, n_block, n_lanes, ca, rot, ring, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk, acc):
    """Coupling of chunk c's targets for the ``n_block`` steps of a block, in one pass over their edges.

    blk[b, i·K + l] = a · Σ_j w_ij · pre_j(first + b − 1 − d_ij) of lane l, the terms of a target added in
    ascending source order j (a row-wise sparse sum, as the single-lane engine), for b < B ≤ smallest delay + 1:
    every value read was stored before the block. An edge's B·K values are contiguous in the ring: they are
    summed 48 (then 16, 4, 1) at a time in registers (:func:`_gather_48`), then copied to the B rows.
    """
    nk = np.uint64(n_lanes)
    run = np.uint64(n_block * n_lanes)
    e_last = np.uint64(e_src.shape[0] - 1)
    for i in range(np.uint64(chunk_nodes[c]), np.uint64(chunk_nodes[c + 1])):
        e_lo, e_hi = np.uint64(t_ptr[i]), np.uint64(t_ptr[i + 1])
        q = np.uint64(0)
        while q + np.uint64(48) <= run:
            _gather_48(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc)
            q += np.uint64(48)
        while q + np.uint64(16) <= run:
            _gather_16(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc)
            q += np.uint64(16)
        while q + np.uint64(4) <= run:
            _gather_4(e_lo, e_hi, e_last, q, nk, rot, ring, e_src, e_delay, e_weight, acc)
            q += np.uint64(4)
        while q < run:
            _gather_1(e_lo, e_hi, q, nk, rot, ring, e_src, e_delay, e_weight, acc)
            q += np.uint64(1)
        for b in range(n_block):
            row = blk[b, i * nk : (i + np.uint64(1)) * nk]
            part = acc[b * n_lanes : (b + 1) * n_lanes]
            if ca == 1.0:
                for lane in range(n_lanes):
                    row[lane] = part[lane]
            else:
                for lane in range(n_lanes):
                    row[lane] = ca * part[lane]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_sigmoids(y0, y1, y2, y3, y4, y5, k, dt, exp_a1, e_fused):
    """The five sigmoids of a Heun step that depend on the state only: S(a_1Jy0), S(a_3Jy0) (predictor),
    the same of the predicted p0 = y0 + dt·y3, and S(p1 − p2) (corrector)."""
    nu_max, r, v0 = k[0], k[1], k[2]
    two_nu_max = 2.0 * nu_max
    sig01, sig03 = _y0_sigmoids_fast(y0, k, exp_a1, e_fused)
    sig01_p, sig03_p = _y0_sigmoids_fast(y0 + dt * y3, k, exp_a1, e_fused)
    p1 = y1 + dt * y4
    p2 = y2 + dt * y5
    sig12_p = two_nu_max / (1.0 + _exp_fast(r * (v0 - (p1 - p2)), k[11:]))
    return sig01, sig03, sig01_p, sig03_p, sig12_p


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_update(y0, y1, y2, y3, y4, y5, s12, aa, m, c, z, k, dt, sig01, sig03, sig01_p, sig03_p, sig12_p):
    """The Heun step of one value (or four) given its sigmoids: the new y0..y5, TVB's expressions and
    order."""
    a, a_2, a_4, b, B, J = k[3], k[5], k[7], k[8], k[9], k[10]
    a_sq, b_sq = a**2, b**2
    # predictor
    d3 = aa * a * s12 - 2.0 * a * y3 - a_sq * y0
    d4 = aa * a * (m + a_2 * J * sig01 + c) - 2.0 * a * y4 - a_sq * y1
    d5 = B * b * (a_4 * J * sig03) - 2.0 * b * y5 - b_sq * y2
    p0 = y0 + dt * y3
    p1 = y1 + dt * y4
    p2 = y2 + dt * y5
    p3 = y3 + dt * d3
    p4 = y4 + dt * d4 + z
    p5 = y5 + dt * d5
    # corrector: drift at the predicted state (d0..d2 of it = p3..p5), same noise
    n0 = y0 + (y3 + p3) * dt / 2.0
    n1 = y1 + (y4 + p4) * dt / 2.0
    n2 = y2 + (y5 + p5) * dt / 2.0
    n3 = y3 + (d3 + (aa * a * sig12_p - 2.0 * a * p3 - a_sq * p0)) * dt / 2.0
    n4 = y4 + (d4 + (aa * a * (m + a_2 * J * sig01_p + c) - 2.0 * a * p4 - a_sq * p1)) * dt / 2.0 + z
    n5 = y5 + (d5 + (B * b * (a_4 * J * sig03_p) - 2.0 * b * p5 - b_sq * p2)) * dt / 2.0
    return n0, n1, n2, n3, n4, n5


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _heun_fast(lo, hi, x, s12, A, mu, cpl_row, zs, gain, k, dt, fused, e_fused, out_row, sig):
    """One Heun step of the values lo..hi with the vectorised exp (:func:`_heun_tiles`); ``fused``: one exp
    for both y0 sigmoids (:func:`_exp_a1_fused`)."""
    if fused:
        _heun_tiles(lo, hi, x, s12, A, mu, cpl_row, zs, gain, k, dt, _exp_a1_fused, e_fused, out_row, sig)
    else:
        _heun_tiles(lo, hi, x, s12, A, mu, cpl_row, zs, gain, k, dt, _exp_a1_direct, e_fused, out_row, sig)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _heun_tiles(lo, hi, x, s12, A, mu, cpl_row, zs, gain, k, dt, exp_a1, e_fused, out_row, sig):
    """One Heun step of the values lo..hi, :data:`VECTOR_WIDTH` values per vector (the values after the last
    multiple of it: the same functions on float64, so every value gets the same bits either way).

    In tiles of TILE values, three loops: the step's five sigmoids (into the rows of ``sig``), the update,
    S(y1 − y2) of the new state — small loop bodies, so that the out-of-order core overlaps the long exp and
    division latencies of several iterations (one loop with all of it is latency-bound)."""
    # the constants as scalars (a tuple): loads from ``k`` in the loops could not be hoisted past the stores. The
    # exp constants come from ``k`` too, as run-time values: as compile-time constants LLVM re-materialised each
    # one in the loops (a 64-bit address and a broadcast per use, ≈ 40 instructions per four values), ≈ 3 % of a
    # step (alternating timings, perf samples)
    k = (
        k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14], k[15], k[16],
        k[17], k[18], k[19], k[20], k[21], k[22], k[23], k[24], k[25], k[26], k[27],
    )  # fmt: skip
    ec = k[11:]
    nu_max, r, v0 = k[0], k[1], k[2]
    two_nu_max = 2.0 * nu_max
    x0, x1, x2, x3, x4, x5 = x[0], x[1], x[2], x[3], x[4], x[5]
    g01, g03, g01_p, g03_p, g12_p = sig[0], sig[1], sig[2], sig[3], sig[4]
    width = np.uint64(VECTOR_WIDTH)
    for tlo in range(lo, hi, np.uint64(TILE)):
        thi = min(tlo + np.uint64(TILE), hi)
        n_vec = tlo + (thi - tlo) // width * width
        for i in range(tlo, n_vec, width):
            s01, s03, s01_p, s03_p, s12_p = _step_sigmoids(
                _vload_w(x0, i), _vload_w(x1, i), _vload_w(x2, i),
                _vload_w(x3, i), _vload_w(x4, i), _vload_w(x5, i),
                k, dt, exp_a1, e_fused,
            )  # fmt: skip
            _vstore(g01, i, s01)
            _vstore(g03, i, s03)
            _vstore(g01_p, i, s01_p)
            _vstore(g03_p, i, s03_p)
            _vstore(g12_p, i, s12_p)
        for i in range(tlo, n_vec, width):
            # zs = sqrt(dt)·normal: TVB's sqrt(dt)·z·gain, same rounding
            z = _vload_w(zs, i) * _vload_w(gain, i)
            n0, n1, n2, n3, n4, n5 = _step_update(
                _vload_w(x0, i), _vload_w(x1, i), _vload_w(x2, i),
                _vload_w(x3, i), _vload_w(x4, i), _vload_w(x5, i),
                _vload_w(s12, i), _vload_w(A, i), _vload_w(mu, i), _vload_w(cpl_row, i), z, k, dt,
                _vload_w(g01, i), _vload_w(g03, i), _vload_w(g01_p, i),
                _vload_w(g03_p, i), _vload_w(g12_p, i),
            )  # fmt: skip
            _vstore(x0, i, n0)
            _vstore(x1, i, n1)
            _vstore(x2, i, n2)
            _vstore(x3, i, n3)
            _vstore(x4, i, n4)
            _vstore(x5, i, n5)
            _vstore(out_row, i, n1 - n2)
        for i in range(tlo, n_vec, width):
            y12 = _vload_w(x1, i) - _vload_w(x2, i)
            _vstore(s12, i, two_nu_max / (1.0 + _exp_fast(r * (v0 - y12), ec)))
        for i in range(n_vec, thi):
            s01, s03, s01_p, s03_p, s12_p = _step_sigmoids(
                x0[i], x1[i], x2[i], x3[i], x4[i], x5[i], k, dt, exp_a1, e_fused
            )
            n0, n1, n2, n3, n4, n5 = _step_update(
                x0[i], x1[i], x2[i], x3[i], x4[i], x5[i], s12[i], A[i], mu[i], cpl_row[i], zs[i] * gain[i], k, dt,
                s01, s03, s01_p, s03_p, s12_p,
            )  # fmt: skip
            x0[i], x1[i], x2[i], x3[i], x4[i], x5[i] = n0, n1, n2, n3, n4, n5
            out_row[i] = np.float32(n1 - n2)
            s12[i] = two_nu_max / (1.0 + _exp_fast(r * (v0 - (n1 - n2)), ec))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _heun_faithful(lo, hi, x, s12, A, mu, cpl_row, zs, gain, k, dt, scratch, out_row):
    """One Heun step of the values lo..hi with libm exp: the single-lane engine's loops, operations and order.

    Loops that each write one array so that numba/LLVM vectorises all of them except the libm ``exp`` passes;
    in tiles of TILE values, so that the ~25 arrays a tile touches stay in cache whatever K.
    """
    nu_max, r, v0 = k[0], k[1], k[2]
    two_nu_max = 2.0 * nu_max
    a, a_2, a_4, b, B, J = k[3], k[5], k[7], k[8], k[9], k[10]
    a_sq, b_sq = a**2, b**2  # as TVB's a**2, b**2
    x0, x1, x2, x3, x4, x5 = x[0], x[1], x[2], x[3], x[4], x[5]
    sig01, sig03, sig12 = scratch[0], scratch[1], scratch[2]
    d3s, d4s, d5s = scratch[3], scratch[4], scratch[5]
    p0s, p1s, p2s, p3s, p4s, p5s = scratch[6], scratch[7], scratch[8], scratch[9], scratch[10], scratch[11]
    z = scratch[12]
    for tlo in range(lo, hi, np.uint64(TILE)):
        thi = min(tlo + np.uint64(TILE), hi)
        for i in range(tlo, thi):
            z[i] = zs[i] * gain[i]  # the step's noise on y4, used by both stages
        # predictor: drift at the current state (its S(y1 − y2) is s12)
        _y0_sigmoids(x0, sig01, sig03, tlo, thi, k)
        for i in range(tlo, thi):
            d3s[i] = A[i] * a * s12[i] - 2.0 * a * x3[i] - a_sq * x0[i]
        for i in range(tlo, thi):
            d4s[i] = A[i] * a * (mu[i] + a_2 * J * sig01[i] + cpl_row[i]) - 2.0 * a * x4[i] - a_sq * x1[i]
        for i in range(tlo, thi):
            d5s[i] = B * b * (a_4 * J * sig03[i]) - 2.0 * b * x5[i] - b_sq * x2[i]
        for i in range(tlo, thi):
            p0s[i] = x0[i] + dt * x3[i]
        for i in range(tlo, thi):
            p1s[i] = x1[i] + dt * x4[i]
        for i in range(tlo, thi):
            p2s[i] = x2[i] + dt * x5[i]
        for i in range(tlo, thi):
            p3s[i] = x3[i] + dt * d3s[i]
        for i in range(tlo, thi):
            p4s[i] = x4[i] + dt * d4s[i] + z[i]
        for i in range(tlo, thi):
            p5s[i] = x5[i] + dt * d5s[i]
        # corrector: drift at the predicted state (d0..d2 of it = p3..p5), same noise
        _y0_sigmoids(p0s, sig01, sig03, tlo, thi, k)
        for i in range(tlo, thi):
            sig12[i] = r * (v0 - (p1s[i] - p2s[i]))
        _exp_pass(sig12, tlo, thi, False)
        _sigmoid_pass(sig12, tlo, thi, two_nu_max)
        for i in range(tlo, thi):
            x0[i] = x0[i] + (x3[i] + p3s[i]) * dt / 2.0
        for i in range(tlo, thi):
            x1[i] = x1[i] + (x4[i] + p4s[i]) * dt / 2.0
        for i in range(tlo, thi):
            x2[i] = x2[i] + (x5[i] + p5s[i]) * dt / 2.0
        for i in range(tlo, thi):
            e3 = A[i] * a * sig12[i] - 2.0 * a * p3s[i] - a_sq * p0s[i]
            x3[i] = x3[i] + (d3s[i] + e3) * dt / 2.0
        for i in range(tlo, thi):
            e4 = A[i] * a * (mu[i] + a_2 * J * sig01[i] + cpl_row[i]) - 2.0 * a * p4s[i] - a_sq * p1s[i]
            x4[i] = x4[i] + (d4s[i] + e4) * dt / 2.0 + z[i]
        for i in range(tlo, thi):
            e5 = B * b * (a_4 * J * sig03[i]) - 2.0 * b * p5s[i] - b_sq * p2s[i]
            x5[i] = x5[i] + (d5s[i] + e5) * dt / 2.0
        for i in range(tlo, thi):
            out_row[i] = np.float32(x1[i] - x2[i])
            sig12[i] = r * (v0 - (x1[i] - x2[i]))
        _exp_pass(sig12, tlo, thi, False)
        for i in range(tlo, thi):
            s12[i] = two_nu_max / (1.0 + sig12[i])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _chunk_step(
    c, b, x, s12, ring, node_off, node_h, chunk_nodes, n_lanes, blk, rot, A, mu, gain, zraw, lane_stream, k, cpl,
    dt, sqrt_dt, mode, e_fused, scratch, out_row,
):  # fmt: skip
    """Step b of the block of chunk c's nodes in every lane, then their ring entries."""
    node_lo, node_hi = chunk_nodes[c], chunk_nodes[c + 1]
    # unsigned loop bounds: with signed ones numba adds negative-index handling and LLVM does not vectorise
    lo, hi = np.uint64(node_lo * n_lanes), np.uint64(node_hi * n_lanes)
    # sqrt(dt)·normal of every value, contiguous (an indirect read inside the Heun loop would stop LLVM from
    # vectorising it: it cannot bound the accessed range for its aliasing checks)
    zs = scratch[0]
    zr = zraw[b]
    n = np.uint64(node_h.shape[0])
    nk = np.uint64(n_lanes)
    for node in range(np.uint64(node_lo), np.uint64(node_hi)):
        for lane in range(nk):
            zs[node * nk + lane] = sqrt_dt * zr[np.uint64(lane_stream[lane]) * n + node]
    if mode == _MODE_LIBM:
        _heun_faithful(lo, hi, x, s12, A, mu, blk[b], zs, gain, k, dt, scratch[1:], out_row)
    else:
        _heun_fast(
            lo, hi, x, s12, A, mu, blk[b], zs, gain, k, dt, mode == _MODE_FUSED, e_fused, out_row, scratch[2:]
        )
    # the new state's coupling ``pre`` into the ring: slot step mod H_j, its mirror, and the B − 1 overhang
    pre = s12  # DeepSIF's constants: the coupling sigmoid is the model's S(y1 − y2), bit for bit
    if cpl[1] == 0.0:
        cmin, cmax, midpoint, cr = cpl[2], cpl[3], cpl[4], cpl[5]
        pre = scratch[1]
        x1, x2 = x[1], x[2]
        for i in range(lo, hi):
            pre[i] = cr * (midpoint - (x1[i] - x2[i]))
        _exp_pass(pre, lo, hi, mode != _MODE_LIBM)
        for i in range(lo, hi):
            pre[i] = cmin + (cmax - cmin) / (1.0 + pre[i])
    _ring_store(node_lo, node_hi, b, blk.shape[0] - 1, n_lanes, rot, node_off, node_h, pre, ring)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ring_store(node_lo, node_hi, b, overhang, n_lanes, rot, node_off, node_h, pre, ring):
    """The coupling ``pre`` of step first + b of nodes node_lo..node_hi into the ring: slot (first + b) mod H_j,
    its mirror and, for the first B − 1 slots, the overhang. The slot comes from the block's ring bases
    (``rot``: (first − 1) mod H_j), not from a division per node and step, and four lanes go per vector store:
    with a modulo and lane-by-lane stores this took ≈ 13 % of a 12-lane step (perf), now ≈ 9 %."""
    nk = np.uint64(n_lanes)
    n_vec = nk // np.uint64(4) * np.uint64(4)
    for node in range(np.uint64(node_lo), np.uint64(node_hi)):
        h_j = np.uint64(node_h[node])
        off = np.uint64(node_off[node])
        slot = np.uint64(rot[node]) - off - h_j + np.uint64(1 + b)
        if slot >= h_j:
            slot -= h_j
        src = node * nk
        dst = (off + slot) * nk
        copies = 3 if slot < np.uint64(overhang) else 2
        for copy in range(copies):
            at = dst + np.uint64(copy) * h_j * nk
            for lane in range(np.uint64(0), n_vec, np.uint64(4)):
                _vstore(ring, at + lane, _vload(pre, src + lane, 4))
            for lane in range(n_vec, nk):
                ring[at + lane] = pre[src + lane]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _chunk_block(
    c, first, n_block, x, s12, ring, node_off, node_h, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk, acc,
    rot, A, mu, gain, lane_stream, zraw, k, cpl, dt, sqrt_dt, mode, e_fused, scratch, out,
):  # fmt: skip
    """Chunk c's share of one block of ``n_block`` steps from global step ``first`` (``out``: the block's output
    rows): it gathers its targets' coupling for the block, then advances its nodes step by step. (At most 30
    arguments: CPython compiles longer calls to a ``*args`` call, which numba cannot inline.)"""
    n_lanes = x.shape[1] // node_h.shape[0]
    _chunk_gather(c, n_block, n_lanes, cpl[0], rot, ring, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk, acc[c])
    for b in range(n_block):
        _chunk_step(
            c, b, x, s12, ring, node_off, node_h, chunk_nodes, n_lanes, blk, rot, A, mu, gain, zraw,
            lane_stream, k, cpl, dt, sqrt_dt, mode, e_fused, scratch, out[b],
        )  # fmt: skip


@njit(cache=True, nogil=True, error_model="numpy")
def _run(
    first_step, n_steps, x, s12, ring, node_off, node_h, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk, acc,
    rot, A, mu, gain, lane_stream, keys, pos, gauss, zraw, k, cpl, dt, sqrt_dt, mode, e_fused, scratch, out,
):  # fmt: skip
    """Integrate ``n_steps`` Heun-stochastic steps of all lanes from global step ``first_step`` (one thread).

    Arrays (flat index ``node·K + lane``): ``x`` (6, n·K) state, ``s12`` (n·K) S(y1 − y2) of ``x``, ``A``, ``mu``,
    ``gain`` = √(2·nsig) (n·K), ``lane_stream`` (K): lane l takes its normals from ``zraw[b, stream·n + node]``,
    one legacy stream (``keys``/``pos``/``gauss``) per distinct seed. Ring: time τ of node j, lane l at
    ``(node_off[j] + p)·K + l`` for every p ≡ τ (mod node_h[j]) in 0 .. 2·node_h[j] + B − 2. Edges CSR by target
    (``t_ptr``), ascending source within a target; chunk c = nodes ``chunk_nodes[c] .. chunk_nodes[c + 1]``.
    Steps go in blocks of B (``blk`` (B, n·K) coupling); output ``out`` (n_steps, n·K) float32.
    """
    n_block_max = blk.shape[0]
    n = node_h.shape[0]
    for t0 in range(0, n_steps, n_block_max):
        n_block = min(n_block_max, n_steps - t0)
        first = first_step + t0
        _replay_noise(keys, pos, gauss, zraw, n_block, n)
        _ring_bases(first, node_off, node_h, rot)
        for c in range(chunk_nodes.shape[0] - 1):
            _chunk_block(
                c, first, n_block, x, s12, ring, node_off, node_h, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk,
                acc, rot, A, mu, gain, lane_stream, zraw, k, cpl, dt, sqrt_dt, mode, e_fused, scratch,
                out[t0 : t0 + n_block],
            )  # fmt: skip


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _run_parallel(
    first_step, n_steps, x, s12, ring, node_off, node_h, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk, acc,
    rot, A, mu, gain, lane_stream, keys, pos, gauss, zraw, k, cpl, dt, sqrt_dt, mode, e_fused, scratch, out,
):  # fmt: skip
    """:func:`_run` with one numba thread per node chunk (the same operations per value: the same bits).

    One parallel region per block of B steps (:func:`_chunk_block` per chunk). The ring keeps B + 1 spare slots
    per node, so a slot written during a block never holds a value that another chunk still reads for that
    block. (Kept apart from :func:`_run`: a parallel region per block costs a thread hand-off even for one chunk.)"""
    n_block_max = blk.shape[0]
    n = node_h.shape[0]
    for t0 in range(0, n_steps, n_block_max):
        n_block = min(n_block_max, n_steps - t0)
        first = first_step + t0
        _replay_noise(keys, pos, gauss, zraw, n_block, n)
        _ring_bases(first, node_off, node_h, rot)
        for c in prange(chunk_nodes.shape[0] - 1):
            _chunk_block(
                c, first, n_block, x, s12, ring, node_off, node_h, chunk_nodes, t_ptr, e_src, e_delay, e_weight, blk,
                acc, rot, A, mu, gain, lane_stream, zraw, k, cpl, dt, sqrt_dt, mode, e_fused, scratch,
                out[t0 : t0 + n_block],
            )  # fmt: skip


@dataclass(frozen=True)
class Lane:
    """One simulation of a batch: JansenRit A per node, mu, nsig of y4 and the legacy RandomState seed."""

    a_per_node: np.ndarray
    mu: float
    nsig_y4: float
    seed: int


def _mode(precision: str, k: JansenRitConstants) -> int:
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(f"precision {precision!r} is invalid: expected one of {ENGINE_PRECISIONS}")
    if precision == "faithful":
        return _MODE_LIBM
    return _MODE_FUSED if k.a_1 == 4.0 * k.a_3 else _MODE_FAST


def _chunk_bounds(in_degree: np.ndarray, n_chunks: int) -> np.ndarray:
    """Contiguous node ranges of about equal work (gathered edges + a node update worth ≈ 40 edges)."""
    work = np.cumsum(in_degree.astype(np.float64) + 40.0)
    bounds = np.searchsorted(work, work[-1] * np.arange(1, n_chunks) / n_chunks)
    return np.concatenate([[0], bounds, [len(in_degree)]]).astype(np.int64)


class LanesSimulator:
    """K lock-step simulations on one connectome; call :meth:`run` repeatedly (state carries over).

    ``run`` returns y1 − y2 as (n_steps, n, K) float32: lane l's trace is ``out[:, :, l]``.
    """

    def __init__(
        self,
        connectivity: Connectivity,
        lanes: Sequence[Lane],
        *,
        dt: float,
        conduction_speed: float = 3.0,
        constants: JansenRitConstants | None = None,
        precision: str = DEFAULT_PRECISION,
        threads: int = 1,
    ) -> None:
        k = constants or JansenRitConstants()
        self.precision = precision
        self._mode = _mode(precision, k)
        if not lanes:
            raise ValueError("at least one lane is needed")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads={threads!r} is invalid: expected an integer ≥ 1")
        n = connectivity.n_nodes
        n_lanes = len(lanes)
        self.n_nodes, self.n_lanes, self.threads = n, n_lanes, int(threads)
        self.dt = float(dt)
        for lane in lanes:
            if np.shape(lane.a_per_node) != (n,):
                raise ValueError(f"A vector has shape {np.shape(lane.a_per_node)}, expected ({n},)")

        # --- edges CSR by target, ascending source within a target (the single-lane engine's summation order)
        idelays = connectivity.idelays(self.dt, conduction_speed)
        self.horizon = int(idelays.max()) + 1  # TVB's horizon: the random history has this many states
        weights = connectivity.weights
        rows, cols = np.nonzero(weights)  # row-major: by target, then ascending source
        delays = idelays[rows, cols].astype(np.int64)
        # steps per block: every delay ≥ B − 1, so a block's coupling only reads states from before the block
        self.block = int(min(BLOCK_MAX, (delays.min() if delays.size else BLOCK_MAX) + 1))
        block = self.block
        # ring slots per node: largest outgoing delay + B + 1, so that no slot written during a block is one
        # that the block's coupling reads (chunks on other threads may still be reading it)
        node_h = np.full(n, block + 1, dtype=np.int64)
        np.maximum.at(node_h, cols, delays + block + 1)
        self._node_h = node_h
        node_len = 2 * node_h + block - 1  # mirrored once, plus the B − 1 slots a block's read can overhang
        self._node_off = np.concatenate([[0], np.cumsum(node_len)[:-1]]).astype(np.int64)
        in_degree = np.bincount(rows, minlength=n)
        self._t_ptr = np.concatenate([[0], np.cumsum(in_degree)]).astype(np.int64)
        self._e_src = cols.astype(np.uint32)
        self._e_delay = delays.astype(np.uint16 if self.horizon < 2**16 else np.uint32)
        self._e_weight = weights[rows, cols].astype(np.float64)
        # one chunk of target nodes per thread (threads never change a value: every chunking gives the same bits)
        self._chunk_nodes = _chunk_bounds(in_degree, self.threads)

        # --- one legacy stream per distinct seed: random initial history first, as TVB's Model.initial
        seeds = sorted({int(lane.seed) for lane in lanes})
        lane_stream = np.array([seeds.index(int(lane.seed)) for lane in lanes], dtype=np.int64)
        self.n_streams = len(seeds)
        self._keys = np.empty((len(seeds), 1248), dtype=np.uint32)
        self._pos = np.empty((len(seeds), 1), dtype=np.int64)
        self._gauss = np.empty((len(seeds), 2), dtype=np.float64)
        x = np.empty((6, n, n_lanes))
        ring = np.empty((int(node_len.sum()), n_lanes))
        # ring slot q of node j holds the state at time tau(q) = 0 (q = 0) or q − H_j (< 0), i.e. TVB's history
        # index tau mod H; slots older than TVB's horizon are never read
        q = np.arange(int(node_h.max()))
        for s, seed in enumerate(seeds):
            rs = np.random.RandomState(seed)
            history = np.empty((self.horizon, 6, n))
            for sv, (lo, hi) in enumerate(JR_STATE_RANGES):
                history[:, sv] = rs.uniform(low=lo, high=hi, size=(self.horizon, n, 1))[..., 0]
            self._keys[s], self._pos[s], self._gauss[s] = state_from_random_state(rs)
            pre = coupling_pre(history[:, 1] - history[:, 2], k)  # (H, n)
            stream_ring = np.zeros(ring.shape[0])
            for j in range(n):
                h_j = int(node_h[j])
                tau = np.where(q[:h_j] == 0, 0, q[:h_j] - h_j)
                values = np.where(-tau < self.horizon, pre[tau % self.horizon, j], 0.0)
                off = int(self._node_off[j])
                stream_ring[off : off + h_j] = values
                stream_ring[off + h_j : off + 2 * h_j] = values
                stream_ring[off + 2 * h_j : off + 2 * h_j + block - 1] = values[: block - 1]
            members = np.flatnonzero(lane_stream == s)
            x[:, :, members] = history[0][:, :, None]
            ring[:, members] = stream_ring[:, None]
        self._x = np.ascontiguousarray(x.reshape(6, n * n_lanes))
        # fast: the coupling sigmoids (in [cmin, cmax]) are kept as float32, half the bytes the gather reads
        # (the sums stay float64); faithful: float64, the single-lane engine's values
        ring_dtype = np.float64 if self._mode == _MODE_LIBM else np.float32
        self._ring = np.ascontiguousarray(ring.reshape(-1), dtype=ring_dtype)
        self._zraw = np.empty((block, len(seeds) * n))
        self._lane_stream = lane_stream  # lane l's normals: zraw[b, lane_stream[l]·n + node]

        def per_value(values: Sequence[float]) -> np.ndarray:
            return np.ascontiguousarray(
                np.broadcast_to(np.asarray(values, dtype=np.float64), (n, n_lanes)).reshape(-1)
            )

        self._A = per_value(
            np.stack([np.asarray(lane.a_per_node, dtype=np.float64) for lane in lanes], axis=1)
        )
        self._mu = per_value([float(lane.mu) for lane in lanes])
        self._gain = per_value([float(np.sqrt(2.0 * np.float64(lane.nsig_y4))) for lane in lanes])
        self._k = np.array(
            [k.nu_max, k.r, k.v0, k.a, k.a_1, k.a_2, k.a_3, k.a_4, k.b, k.B, k.J, *_EXP_CONSTANTS], dtype=np.float64
        )
        shares = k.cmin == 0.0 and k.cmax - k.cmin == 2.0 * k.nu_max and k.cr == k.r and k.midpoint == k.v0
        self._cpl = np.array(
            [k.coupling_a, float(shares), k.cmin, k.cmax, k.midpoint, k.cr], dtype=np.float64
        )
        self._e_fused = math.exp(-3.0 * k.r * k.v0)
        # S(y1 − y2) of the start state, with the precision's exp
        arg = k.r * (k.v0 - (self._x[1] - self._x[2]))
        e = exp_fast_array(arg) if self._mode != _MODE_LIBM else np.array([math.exp(v) for v in arg])
        self._s12 = 2.0 * k.nu_max / (1.0 + e)
        self._sqrt_dt = float(np.sqrt(self.dt))
        self._blk = np.empty((block, n * n_lanes))
        self._acc = np.empty((self.threads, block * n_lanes))
        self._rot = np.empty(n, dtype=np.int64)
        # per-step work rows of the faithful path (exp arguments/values, drift, predictor, noise)
        self._scratch = np.empty((14 if self._mode == _MODE_LIBM else 7, n * n_lanes))
        self.current_step = 0

    def state(self, lane: int) -> np.ndarray:
        """Lane ``lane``'s (6, n) float64 state y0..y5 (a copy for K > 1, a view for K = 1)."""
        return self._x.reshape(6, self.n_nodes, self.n_lanes)[:, :, lane]

    @property
    def nbytes(self) -> int:
        """Bytes of the batch's arrays (state, ring, edges, work rows), excluding the caller's output buffer."""
        return int(sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray)))

    def run(self, n_steps: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``n_steps``; return (time (n_steps,) ms, y1 − y2 (n_steps, n, K) float32), time = step·dt."""
        shape = (n_steps, self.n_nodes, self.n_lanes)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out has shape {out.shape}/{out.dtype}, expected C-contiguous {shape} float32")
        first = self.current_step + 1
        args = (
            first, n_steps, self._x, self._s12, self._ring, self._node_off, self._node_h, self._chunk_nodes,
            self._t_ptr, self._e_src, self._e_delay, self._e_weight, self._blk, self._acc, self._rot, self._A,
            self._mu, self._gain, self._lane_stream, self._keys, self._pos, self._gauss, self._zraw, self._k, self._cpl,
            self.dt, self._sqrt_dt, self._mode, self._e_fused, self._scratch,
            out.reshape(n_steps, self.n_nodes * self.n_lanes),
        )  # fmt: skip
        if self.threads == 1:
            _run(*args)
        else:
            import numba

            previous = numba.get_num_threads()
            # at most NUMBA_NUM_THREADS run at once; the chunks (and so the results) stay the same
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
            try:
                _run_parallel(*args)
            finally:
                numba.set_num_threads(previous)
        self.current_step += n_steps
        time = np.arange(first, first + n_steps, dtype=np.float64) * self.dt
        return time, out
