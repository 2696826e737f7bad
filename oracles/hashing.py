"""Bulk keccak256 for telemetry: one native call per chunk of readings, with a pure fallback.

Anchoring 100,000 readings a second means about 400,000 keccak256 calls a second (three per leaf,
about one per Merkle node). Called one by one from Python, even pycryptodome's sponge (see
`oracles.keccak_sponge`) costs ~2 µs a hash here, almost all of it call overhead. So this module carries a
small C kernel (Keccak-f[1600], the public-domain "compact" formulation, plus three loops: many
messages, reading leaves, a Merkle tree) that is compiled once with the system C compiler (`cc`,
or ``$CC``) into the user's cache directory and loaded with `ctypes`, which releases the GIL while it runs.

The kernel is trusted only after it reproduces `eth_hash`'s keccak256 on test vectors (empty input,
one rate block, block boundaries); if there is no compiler, the build fails, or the self-test does
not match, every function here silently uses the pure-Python path instead, which gives the same
bytes (tested). ``QEAIMS_NATIVE_KECCAK=0`` forces the pure path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from eth_hash.auto import keccak

from oracles.keccak_sponge import keccak_many, sorted_tree_nodes

__all__ = ["NATIVE", "keccak_concat", "leaves_of", "merkle_root", "native_available", "tree_nodes"]

_TEMPLATE = r"""
#include <stdint.h>
#include <string.h>
#include <stddef.h>
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "little-endian only"
#endif
static const uint64_t RC[24] = {
  0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
  0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
  0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
  0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
  0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
  0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
$PERMUTATION
static void k256(const uint8_t *in, size_t len, uint8_t *out) {
  uint64_t st[25]; uint8_t *s = (uint8_t *)st; memset(st, 0, sizeof st);
  while (len >= 136) { for (int i = 0; i < 136; i++) s[i] ^= in[i]; keccakf(st); in += 136; len -= 136; }
  for (size_t i = 0; i < len; i++) s[i] ^= in[i];
  s[len] ^= 0x01; s[135] ^= 0x80; keccakf(st); memcpy(out, s, 32);
}
/* out[32 i] = keccak256(data[ends[i-1] : ends[i]]) */
void qk_many(const uint8_t *data, const uint64_t *ends, size_t n, uint8_t *out) {
  uint64_t start = 0;
  for (size_t i = 0; i < n; i++) { k256(data + start, ends[i] - start, out + 32 * i); start = ends[i]; }
}
/* leaf = keccak256(keccak256(abi.encode(bytes32 asset, uint64 ts, bytes32 keccak256(body)))) */
void qk_leaves(const uint8_t *bodies, const uint64_t *ends, const uint8_t *assets, const uint64_t *ts,
               size_t n, uint8_t *out) {
  uint8_t pre[96], inner[32]; uint64_t start = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(pre, assets + 32 * i, 32);
    memset(pre + 32, 0, 24);
    for (int b = 0; b < 8; b++) pre[56 + b] = (uint8_t)(ts[i] >> (56 - 8 * b));
    k256(bodies + start, ends[i] - start, pre + 64); start = ends[i];
    k256(pre, 96, inner);
    k256(inner, 32, out + 32 * i);
  }
}
#include <stdlib.h>
static int cmp32(const void *a, const void *b) { return memcmp(a, b, 32); }
/* root of the OZ StandardMerkleTree over n leaves (32 bytes each, any order); scratch: 2n-1 slots */
void qk_root(const uint8_t *leaves, size_t n, uint8_t *scratch, uint8_t *root) {
  uint8_t *tail = scratch + 32 * (n - 1), pair[64];
  memcpy(tail, leaves, 32 * n);
  qsort(tail, n, 32, cmp32);
  for (size_t k = 0; k < n / 2; k++) {  /* tree[2n-2-k] = sorted[k]: reverse the sorted run */
    uint8_t t[32]; memcpy(t, tail + 32 * k, 32); memcpy(tail + 32 * k, tail + 32 * (n - 1 - k), 32);
    memcpy(tail + 32 * (n - 1 - k), t, 32);
  }
  for (size_t i = n - 1; i-- > 0;) {
    const uint8_t *a = scratch + 32 * (2 * i + 1), *b = scratch + 32 * (2 * i + 2);
    if (memcmp(a, b, 32) < 0) { memcpy(pair, a, 32); memcpy(pair + 32, b, 32); }
    else { memcpy(pair, b, 32); memcpy(pair + 32, a, 32); }
    k256(pair, 64, scratch + 32 * i);
  }
  memcpy(root, scratch, 32);
}
/* nodes: 2n-1 slots of 32 bytes, the last n filled; fills 0..n-2 with sorted-pair hashes */
void qk_tree(uint8_t *nodes, size_t n) {
  uint8_t pair[64];
  for (size_t i = n - 1; i-- > 0;) {
    const uint8_t *a = nodes + 32 * (2 * i + 1), *b = nodes + 32 * (2 * i + 2);
    if (memcmp(a, b, 32) < 0) { memcpy(pair, a, 32); memcpy(pair + 32, b, 32); }
    else { memcpy(pair, b, 32); memcpy(pair + 32, a, 32); }
    k256(pair, 64, nodes + 32 * i);
  }
}
"""

_ROTATIONS = ((0, 36, 3, 41, 18), (1, 44, 10, 45, 2), (62, 6, 43, 15, 61), (28, 55, 25, 21, 56), (27, 20, 39, 8, 14))
"""Keccak's rho offsets r[x][y]."""


def _permutation() -> str:
    """Keccak-f[1600] with the 25 lanes in locals, one round unrolled (2x pycryptodome's loop-form speed)."""
    lane = [f"a{i}" for i in range(25)]  # lane (x, y) is a[x + 5y]
    lines = [f"uint64_t {', '.join(lane)}, c0, c1, c2, c3, c4, d, {', '.join(f'b{i}' for i in range(25))};"]
    lines += [f"a{i} = st[{i}];" for i in range(25)]
    lines.append("for (int r = 0; r < 24; r++) {")
    for x in range(5):
        lines.append(f"c{x} = a{x} ^ a{x + 5} ^ a{x + 10} ^ a{x + 15} ^ a{x + 20};")
    for x in range(5):
        lines.append(f"d = c{(x + 4) % 5} ^ ROTL(c{(x + 1) % 5}, 1);")
        for y in range(5):
            rot = _ROTATIONS[x][y]
            target = y + 5 * ((2 * x + 3 * y) % 5)
            moved = f"(a{x + 5 * y} ^ d)"
            lines.append(f"b{target} = {moved if rot == 0 else f'ROTL({moved}, {rot})'};")
    for y in range(5):
        for x in range(5):
            lines.append(f"a{x + 5 * y} = b{x + 5 * y} ^ (~b{(x + 1) % 5 + 5 * y} & b{(x + 2) % 5 + 5 * y});")
    lines += ["a0 ^= RC[r];", "}"]
    lines += [f"st[{i}] = a{i};" for i in range(25)]
    body = "\n  ".join(lines)
    return f"#define ROTL(x, y) (((x) << (y)) | ((x) >> (64 - (y))))\nstatic void keccakf(uint64_t st[25]) {{\n  {body}\n}}\n"


_SOURCE = _TEMPLATE.replace("$PERMUTATION", _permutation())


_Kernel = tuple[Callable[..., None], Callable[..., None], Callable[..., None], Callable[..., None]]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qeaims" / "native"


def _build(target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        source = Path(scratch) / "keccak.c"
        source.write_text(_SOURCE)
        built = Path(scratch) / target.name
        subprocess.run([compiler, "-O3", "-shared", "-fPIC", "-o", str(built), str(source)],
                       check=True, capture_output=True, timeout=120)
        os.replace(built, target)  # atomic: a concurrent loader sees the old file or the whole new one


def _load() -> _Kernel | None:
    if os.environ.get("QEAIMS_NATIVE_KECCAK", "1") == "0":
        return None
    digest = hashlib.sha256(_SOURCE.encode()).hexdigest()[:16]
    target = _cache_dir() / f"keccak-{digest}.so"
    try:
        if not target.is_file():
            _build(target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):
        return None
    many, leaves, tree, root = lib.qk_many, lib.qk_leaves, lib.qk_tree, lib.qk_root
    ptr, size = ctypes.c_char_p, ctypes.c_size_t
    many.argtypes, many.restype = [ptr, ptr, size, ptr], None
    leaves.argtypes, leaves.restype = [ptr, ptr, ptr, ptr, size, ptr], None
    tree.argtypes, tree.restype = [ptr, size], None
    root.argtypes, root.restype = [ptr, size, ptr, ptr], None
    kernel: _Kernel = (many, leaves, tree, root)
    vectors = [b"", b"abc", bytes(range(135)), bytes(136), bytes(range(256)) * 3]
    if _native_concat(kernel, b"".join(vectors), _ends(vectors)) != [keccak(v) for v in vectors]:
        return None  # a compiler that miscompiles, an odd platform: never trust it
    return kernel


def _ends(items: Sequence[bytes]) -> bytes:
    total = 0
    ends = array("Q")
    for item in items:
        total += len(item)
        ends.append(total)
    return ends.tobytes()


def _split(blob: bytes) -> list[bytes]:
    return [blob[i:i + 32] for i in range(0, len(blob), 32)]


def _native_concat(kernel: _Kernel, data: bytes, ends: bytes) -> list[bytes]:
    n = len(ends) // 8
    out = ctypes.create_string_buffer(32 * n)
    kernel[0](data, ends, n, out)
    return _split(out.raw)


_KERNEL = _load()
NATIVE = _KERNEL is not None
"""Is the compiled kernel in use (False: the pure-Python path)?"""


def native_available() -> bool:
    return NATIVE


def _pure_many(items: Iterable[bytes]) -> list[bytes]:
    return keccak_many(items)  # the pycryptodome sponge


def keccak_concat(data: bytes, ends: Sequence[int] | array[int]) -> list[bytes]:
    """keccak256 of each ``data[ends[i-1]:ends[i]]`` (ends are cumulative end offsets)."""
    if _KERNEL is not None:
        return _native_concat(_KERNEL, data, array("Q", ends).tobytes())
    starts = [0, *ends[:-1]]
    return _pure_many(data[a:b] for a, b in zip(starts, ends, strict=True))


def leaves_of(bodies: bytes, ends: Sequence[int] | array[int], asset_words: bytes, times_ms: Sequence[int]) -> bytes:
    """Reading leaves (`oracles.merkle` scheme) of n stored bodies, concatenated (32 bytes each).

    `bodies` holds the n canonical bodies back to back, `ends` their cumulative end offsets,
    `asset_words` the n 32-byte asset ids, `times_ms` the n millisecond timestamps (uint64).
    """
    n = len(ends)
    if len(asset_words) != 32 * n or len(times_ms) != n or (n and ends[-1] != len(bodies)):
        raise ValueError("one body end, asset word and timestamp per reading")
    try:
        times = array("Q", times_ms)
    except OverflowError as exc:
        raise ValueError("a timestamp does not fit a uint64") from exc
    if _KERNEL is not None:
        out = ctypes.create_string_buffer(32 * n)
        _KERNEL[1](bodies, array("Q", ends).tobytes(), asset_words, times.tobytes(), n, out)
        return out.raw
    digests = keccak_concat(bodies, ends)
    pre = (asset_words[32 * i:32 * i + 32] + t.to_bytes(32, "big") + d for i, (t, d) in enumerate(zip(times, digests)))
    return b"".join(_pure_many(_pure_many(pre)))


def tree_nodes(sorted_leaves: Sequence[bytes]) -> list[bytes] | None:
    """The 2n−1 nodes of an OZ StandardMerkleTree whose leaves are given sorted ascending, or None
    when there is no kernel (the caller builds the tree itself then)."""
    n = len(sorted_leaves)
    if _KERNEL is None or n == 0:
        return None
    buffer = ctypes.create_string_buffer(b"".join([bytes(32 * (n - 1)), *reversed(sorted_leaves)]), 32 * (2 * n - 1))
    _KERNEL[2](buffer, n)
    return _split(buffer.raw)


def merkle_root(leaves: bytes) -> bytes:
    """The OZ StandardMerkleTree root over n leaves given back to back (32 bytes each, value order)."""
    n, rest = divmod(len(leaves), 32)
    if n == 0 or rest:
        raise ValueError("a Merkle root needs one or more 32-byte leaves")
    if _KERNEL is None:
        return sorted_tree_nodes(sorted(_split(leaves)))[0]  # what `oracles.merkle.MerkleTree` builds then
    scratch = ctypes.create_string_buffer(32 * (2 * n - 1))
    root = ctypes.create_string_buffer(32)
    _KERNEL[3](leaves, n, scratch, root)
    return root.raw
