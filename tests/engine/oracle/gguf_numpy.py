"""An independent GGUF reader and dequantizer written with numpy: the test oracle for llmsync's
C++ GGUF reader and DequantizeRow.

It shares no code with the engine. It follows ggml's published block layouts and performs the
same float32 operations in the same order as ggml's reference dequantizers, so its output is
bit-identical to a correct implementation:

    F32, F16, BF16   exact widening to float32
    Q8_0             d * q                                   (d: f16 -> f32)
    Q4_0             d * (q - 8)
    Q4_K             (d * sc) * q - (dmin * m)               each product rounded to f32
    Q6_K             (d * scale) * (q - 32)                  left to right in f32

API:
    load(path) -> (metadata, tensors)
        metadata: {key: value}; integers -> int, floats -> float, bool -> bool, strings -> str,
                  arrays -> list
        tensors:  {name: np.ndarray float32}, shape in numpy order (GGUF dims reversed, so a
                  [n_embd, n_vocab] GGUF tensor becomes an array of shape (n_vocab, n_embd))
    GgufFile(path): lazy access; .metadata, .tensor_infos, .dequantize(name)

Command line (used by the C++ oracle test):
    /usr/bin/python3 gguf_numpy.py dump FILE.gguf OUT.bin
        writes every tensor, in file order, dequantized, as little-endian float32
    /usr/bin/python3 gguf_numpy.py info FILE.gguf

Run it with Debian's /usr/bin/python3 (python3-numpy).
"""

import struct
import sys

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# ggml type ids (ggml.h, enum ggml_type)
F32, F16, Q4_0, Q8_0, Q4_K, Q6_K, BF16 = 0, 1, 2, 8, 12, 14, 30
TYPE_NAMES = {F32: "f32", F16: "f16", Q4_0: "q4_0", Q8_0: "q8_0", Q4_K: "q4_K", Q6_K: "q6_K",
              BF16: "bf16"}
# (elements per block, bytes per block)
BLOCK_GEOMETRY = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q4_0: (32, 18),
                  Q4_K: (256, 144), Q6_K: (256, 210)}

# GGUF metadata value types
(_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64,
 _INT64, _FLOAT64) = range(13)
_SCALAR_FORMATS = {_UINT8: "<B", _INT8: "<b", _UINT16: "<H", _INT16: "<h", _UINT32: "<I",
                   _INT32: "<i", _FLOAT32: "<f", _BOOL: "<?", _UINT64: "<Q", _INT64: "<q",
                   _FLOAT64: "<d"}


class GgufError(Exception):
    pass


class _Cursor:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise GgufError(f"truncated at offset {self.pos} (need {n} bytes)")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar("<Q")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    def value(self, vtype):
        if vtype in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            elem = self.scalar("<I")
            count = self.scalar("<Q")
            if elem in _SCALAR_FORMATS and elem != _BOOL:
                size = struct.calcsize(_SCALAR_FORMATS[elem])
                arr = np.frombuffer(self.take(count * size), dtype=_SCALAR_FORMATS[elem])
                return arr.tolist()
            return [self.value(elem) for _ in range(count)]
        raise GgufError(f"unknown metadata value type {vtype} at offset {self.pos}")


class TensorInfo:
    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims  # GGUF order: dims[0] is the row length
        self.ggml_type = ggml_type
        self.offset = offset

    @property
    def n_elements(self):
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def n_bytes(self):
        block_elems, block_bytes = BLOCK_GEOMETRY[self.ggml_type]
        return self.n_elements // block_elems * block_bytes


class GgufFile:
    """A GGUF file (versions 2 and 3) mapped read-only; tensors dequantize on demand."""

    def __init__(self, path):
        self.path = path
        self._map = np.memmap(path, dtype=np.uint8, mode="r")
        cur = _Cursor(self._map)
        if cur.take(4) != GGUF_MAGIC:
            raise GgufError("not a GGUF file (bad magic)")
        self.version = cur.scalar("<I")
        if self.version not in (2, 3):
            raise GgufError(f"unsupported GGUF version {self.version}")
        n_tensors = cur.scalar("<Q")
        n_kv = cur.scalar("<Q")
        self.metadata = {}
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.scalar("<I")
            self.metadata[key] = cur.value(vtype)
        self.tensor_infos = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.scalar("<I")
            dims = [cur.scalar("<Q") for _ in range(n_dims)]
            ggml_type = cur.scalar("<I")
            offset = cur.scalar("<Q")
            self.tensor_infos.append(TensorInfo(name, dims, ggml_type, offset))
        alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        self.data_offset = (cur.pos + alignment - 1) // alignment * alignment
        self._by_name = {t.name: t for t in self.tensor_infos}

    def raw(self, name):
        info = self._by_name[name]
        if info.ggml_type not in BLOCK_GEOMETRY:
            raise GgufError(f"tensor {name}: type {info.ggml_type} is not supported by this oracle")
        start = self.data_offset + info.offset
        end = start + info.n_bytes
        if end > len(self._map):
            raise GgufError(f"tensor {name}: data runs past the end of the file")
        return np.asarray(self._map[start:end])

    def dequantize(self, name):
        info = self._by_name[name]
        flat = dequantize(info.ggml_type, self.raw(name), info.n_elements)
        return flat.reshape(tuple(reversed(info.dims)))


def dequantize(ggml_type, raw, n):
    """Dequantizes n elements of ggml_type from the uint8 array raw into a flat float32 array."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if ggml_type == F32:
        return raw.view("<f4").astype(np.float32)[:n]
    if ggml_type == F16:
        return raw.view("<f2").astype(np.float32)[:n]
    if ggml_type == BF16:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)[:n]
    block_elems, block_bytes = BLOCK_GEOMETRY[ggml_type]
    blocks = raw[: n // block_elems * block_bytes].reshape(-1, block_bytes)
    fn = {Q8_0: _q8_0, Q4_0: _q4_0, Q4_K: _q4_k, Q6_K: _q6_k}[ggml_type]
    with np.errstate(all="ignore"):  # inf/NaN scales in a block are data, not an error
        return fn(blocks).reshape(-1)


def _f16_column(blocks, at):
    return blocks[:, at:at + 2].copy().view("<f2").astype(np.float32)  # shape (nb, 1)


def _q8_0(blocks):
    d = _f16_column(blocks, 0)
    q = blocks[:, 2:34].view(np.int8).astype(np.float32)
    return d * q


def _q4_0(blocks):
    d = _f16_column(blocks, 0)
    qs = blocks[:, 2:18]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=1)  # elements 0..15, then 16..31
    return d * (codes.astype(np.float32) - np.float32(8))


def _q4_k_scales(packed):
    """packed: (nb, 12) uint8 -> scales, mins: (nb, 8) uint8, per ggml's 6-bit packing."""
    p = packed.astype(np.uint8)
    sc = np.empty((p.shape[0], 8), dtype=np.uint8)
    mn = np.empty((p.shape[0], 8), dtype=np.uint8)
    sc[:, 0:4] = p[:, 0:4] & 63
    mn[:, 0:4] = p[:, 4:8] & 63
    sc[:, 4:8] = (p[:, 8:12] & 0x0F) | ((p[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (p[:, 8:12] >> 4) | ((p[:, 4:8] >> 6) << 4)
    return sc, mn


def _q4_k(blocks):
    d = _f16_column(blocks, 0)
    dmin = _f16_column(blocks, 2)
    sc, mn = _q4_k_scales(blocks[:, 4:16])
    qs = blocks[:, 16:144].reshape(-1, 4, 32)  # 4 chunks of 32 bytes, each covering 64 elements
    codes = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 8, 32)  # sub-block j = 2c + nibble
    d1 = d * sc.astype(np.float32)      # (nb, 8) f32
    m1 = dmin * mn.astype(np.float32)   # (nb, 8) f32
    prod = d1[:, :, None] * codes.astype(np.float32)
    return (prod - m1[:, :, None]).reshape(-1, 256)


def _q6_k(blocks):
    ql = blocks[:, 0:128].reshape(-1, 2, 64)
    qh = blocks[:, 128:192].reshape(-1, 2, 32)
    scales = blocks[:, 192:208].view(np.int8).astype(np.float32)  # (nb, 16)
    d = _f16_column(blocks, 208)
    low = np.stack([ql[:, :, 0:32] & 0x0F, ql[:, :, 32:64] & 0x0F,
                    ql[:, :, 0:32] >> 4, ql[:, :, 32:64] >> 4], axis=2)  # (nb, 2, 4, 32)
    high = np.stack([(qh >> shift) & 3 for shift in (0, 2, 4, 6)], axis=2)  # (nb, 2, 4, 32)
    codes = (low | (high << 4)).astype(np.int16).reshape(-1, 256) - 32
    scale_per_elem = np.repeat(d * scales, 16, axis=1)  # (d * scale) in f32, then per element
    return scale_per_elem * codes.astype(np.float32)


def load(path):
    """Returns (metadata dict, {name: float32 ndarray in numpy dim order})."""
    f = GgufFile(path)
    return f.metadata, {t.name: f.dequantize(t.name) for t in f.tensor_infos}


def _main(argv):
    if len(argv) == 4 and argv[1] == "dump":
        f = GgufFile(argv[2])
        with open(argv[3], "wb") as out:
            for t in f.tensor_infos:
                out.write(np.ascontiguousarray(f.dequantize(t.name), dtype="<f4").tobytes())
        return 0
    if len(argv) == 3 and argv[1] == "info":
        f = GgufFile(argv[2])
        print(f"GGUF v{f.version}, {len(f.metadata)} keys, {len(f.tensor_infos)} tensors")
        for t in f.tensor_infos:
            print(f"  {t.name} {TYPE_NAMES.get(t.ggml_type, t.ggml_type)} {t.dims}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
