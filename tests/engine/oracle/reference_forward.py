"""An independent reference forward pass for Llama-family GGUF models (llama, qwen2, qwen3) in
numpy float64: the correctness oracle for llmsync's native engine.

It shares no code with the engine. Weights are read and dequantized by gguf_numpy.py (itself an
independent numpy implementation of ggml's block formats); everything after that is float64:

    x = token_embd[tokens]
    per layer:  h = rmsnorm(x) * attn_norm
                q, k, v = h Wq^T (+ bq), h Wk^T (+ bk), h Wv^T (+ bv)          qwen2: biases
                q, k = per-head rmsnorm(q) * q_norm, rmsnorm(k) * k_norm      qwen3
                q, k = rope(q), rope(k)
                      llama: "normal" RoPE rotating adjacent pairs (x[2i], x[2i+1]), the
                             convention llama.cpp uses for GGUF llama files (whose q/k rows are
                             stored permuted for it);
                      qwen2/qwen3: NeoX RoPE rotating (x[i], x[i + n_rot/2]);
                      theta_i = pos * freq_scale * base^(-2i/n_rot) / rope_freqs[i]
                k, v rounded to float16 (the engine's default KV storage; --kv-f32 disables)
                x += softmax(q k^T / sqrt(head_dim), causal) v Wo^T      GQA: q head h uses kv head h // G
                h = rmsnorm(x) * ffn_norm;  x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
    logits = (rmsnorm(x) * output_norm) Wout^T        (Wout = token_embd when output.weight is absent)

Usage (Debian's /usr/bin/python3 with python3-numpy):
    reference_forward.py MODEL.gguf --tokens 1,2,3 --out LOGITS.bin [--kv-f32] [--swap-rope]
        [--emulate-activations]
writes little-endian float32 logits, row-major n_tokens x n_vocab. --swap-rope uses the other RoPE
convention: a negative control showing that the comparison detects a convention error.
--emulate-activations rounds each matmul input through the engine's documented 8-bit activation
format (matmul.h) before multiplying by a quantized weight, which isolates the engine's arithmetic
from the (expected) activation quantization noise; --boundary-out FILE then receives the first
token position at which some activation sat within BOUNDARY_EPSILON code units of a rounding
boundary (n_tokens when none did): from there on, the engine may legitimately differ by one code.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_numpy  # noqa: E402


class Hparams:
    def __init__(self, md):
        self.arch = md["general.architecture"]
        if self.arch not in ("llama", "qwen2", "qwen3"):
            raise SystemExit(f"unsupported architecture {self.arch}")
        a = self.arch
        self.n_embd = int(md[f"{a}.embedding_length"])
        self.n_layer = int(md[f"{a}.block_count"])
        self.n_head = int(md[f"{a}.attention.head_count"])
        self.n_head_kv = int(md.get(f"{a}.attention.head_count_kv", self.n_head))
        self.head_dim = int(md.get(f"{a}.attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(md.get(f"{a}.rope.dimension_count", self.head_dim))
        self.eps = float(md.get(f"{a}.attention.layer_norm_rms_epsilon", 1e-5))
        self.freq_base = float(md.get(f"{a}.rope.freq_base", 10000.0))
        scaling = md.get(f"{a}.rope.scaling.type", "none")
        factor = float(md.get(f"{a}.rope.scaling.factor", md.get(f"{a}.rope.scale_linear", 1.0)) or 1.0)
        if f"{a}.rope.scale_linear" in md and scaling == "none":
            scaling = "linear"
        if scaling not in ("none", "linear"):
            raise SystemExit(f"unsupported rope scaling {scaling}")
        self.freq_scale = 1.0 / factor if scaling == "linear" else 1.0
        self.neox = self.arch in ("qwen2", "qwen3")


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, hp, freq_factors, neox):
    """x: (n_tokens, n_heads, head_dim); rotates the first n_rot dims of every head."""
    half = hp.n_rot // 2
    i = np.arange(half, dtype=np.float64)
    inv_freq = hp.freq_scale * hp.freq_base ** (-2.0 * i / hp.n_rot)
    if freq_factors is not None:
        inv_freq = inv_freq / freq_factors
    theta = positions[:, None].astype(np.float64) * inv_freq[None, :]  # (n_tokens, half)
    cos = np.cos(theta)[:, None, :]
    sin = np.sin(theta)[:, None, :]
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half : hp.n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half : hp.n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0 : hp.n_rot : 2], x[..., 1 : hp.n_rot : 2]
        out[..., 0 : hp.n_rot : 2] = a * cos - b * sin
        out[..., 1 : hp.n_rot : 2] = a * sin + b * cos
    return out


# Block length of the 8-bit activation rows the engine's quantized dot products consume
# (src/engine/matmul.h): 32 for Q8_0/Q4_0 weights, 256 for Q4_K/Q6_K; float weights take f32 rows.
ACTIVATION_BLOCK = {gguf_numpy.Q8_0: 32, gguf_numpy.Q4_0: 32, gguf_numpy.Q4_K: 256, gguf_numpy.Q6_K: 256}


# An activation whose scaled value x * 127 / amax lies within this many code units of a rounding
# boundary (k + 0.5) may legitimately round the other way in the engine, whose f32 activations
# differ from these f64 ones in the last bits.
BOUNDARY_EPSILON = 2e-5


def quantize_activations(x, block, boundary):
    """Round-trips rows of x (n_tokens x cols) through the engine's documented 8-bit activation
    format: per block, d = amax / 127 and q = nearbyint(x * (127 / amax)), in float32; returns
    d * q. Lowers boundary[0] to the first token with a value near a rounding boundary."""
    x32 = x.astype(np.float32).reshape(-1, block)
    amax = np.abs(x32).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(amax > 0, np.float32(127.0) / amax, np.float32(0.0)).astype(np.float32)
    scaled = x32 * inv
    near = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < BOUNDARY_EPSILON
    rows = np.nonzero(near.any(axis=1))[0]
    if len(rows):
        boundary[0] = min(boundary[0], int(rows[0]) // (x.shape[-1] // block))
    q = np.clip(np.rint(scaled), -127, 127)
    d = (amax / np.float32(127.0)).astype(np.float32)
    return (d.astype(np.float64) * q.astype(np.float64)).reshape(x.shape)


def forward(path, tokens, kv_f16=True, swap_rope=False, emulate_activations=False, boundary=None):
    """Returns the logits (n_tokens x n_vocab). With emulate_activations, boundary[0] is lowered to
    the first token position at which a quantized activation sat near a rounding boundary."""
    boundary = [len(tokens)] if boundary is None else boundary
    f = gguf_numpy.GgufFile(path)
    hp = Hparams(f.metadata)
    infos = {t.name: t for t in f.tensor_infos}
    names = set(infos)

    def w(name):
        return f.dequantize(name).astype(np.float64)

    def mm(x, name):
        """x @ W^T, with x quantized as the engine quantizes it when emulating activations."""
        block = ACTIVATION_BLOCK.get(infos[name].ggml_type)
        if emulate_activations and block is not None:
            x = quantize_activations(x, block, boundary)
        return x @ w(name).T

    def opt(name):
        return w(name) if name in names else None

    tokens = np.asarray(tokens, dtype=np.int64)
    n = len(tokens)
    positions = np.arange(n)
    neox = hp.neox != swap_rope
    freq_factors = opt("rope_freqs.weight") if hp.arch == "llama" else None
    group = hp.n_head // hp.n_head_kv
    causal = np.tril(np.ones((n, n), dtype=bool))

    x = w("token_embd.weight")[tokens]
    for il in range(hp.n_layer):
        p = f"blk.{il}."
        h = rmsnorm(x, w(p + "attn_norm.weight"), hp.eps)
        q = mm(h, p + "attn_q.weight")
        k = mm(h, p + "attn_k.weight")
        v = mm(h, p + "attn_v.weight")
        if hp.arch == "qwen2":
            q, k, v = q + w(p + "attn_q.bias"), k + w(p + "attn_k.bias"), v + w(p + "attn_v.bias")
        q = q.reshape(n, hp.n_head, hp.head_dim)
        k = k.reshape(n, hp.n_head_kv, hp.head_dim)
        v = v.reshape(n, hp.n_head_kv, hp.head_dim)
        if hp.arch == "qwen3":
            q = rmsnorm(q, w(p + "attn_q_norm.weight"), hp.eps)
            k = rmsnorm(k, w(p + "attn_k_norm.weight"), hp.eps)
        q = rope(q, positions, hp, freq_factors, neox)
        k = rope(k, positions, hp, freq_factors, neox)
        if kv_f16:
            k = k.astype(np.float16).astype(np.float64)
            v = v.astype(np.float16).astype(np.float64)
        out = np.empty((n, hp.n_head, hp.head_dim))
        for head in range(hp.n_head):
            kv = head // group
            scores = q[:, head, :] @ k[:, kv, :].T / np.sqrt(hp.head_dim)
            scores = np.where(causal, scores, -np.inf)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            probs = scores / scores.sum(axis=1, keepdims=True)
            out[:, head, :] = probs @ v[:, kv, :]
        x = x + mm(out.reshape(n, hp.n_head * hp.head_dim), p + "attn_output.weight")
        h = rmsnorm(x, w(p + "ffn_norm.weight"), hp.eps)
        gate = mm(h, p + "ffn_gate.weight")
        up = mm(h, p + "ffn_up.weight")
        x = x + mm(gate / (1.0 + np.exp(-gate)) * up, p + "ffn_down.weight")
    out_name = "output.weight" if "output.weight" in names else "token_embd.weight"
    return mm(rmsnorm(x, w("output_norm.weight"), hp.eps), out_name)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kv-f32", action="store_true")
    ap.add_argument("--swap-rope", action="store_true")
    ap.add_argument("--emulate-activations", action="store_true")
    ap.add_argument("--boundary-out")
    args = ap.parse_args(argv[1:])
    tokens = [int(t) for t in args.tokens.split(",")]
    boundary = [len(tokens)]
    logits = forward(args.model, tokens, kv_f16=not args.kv_f32, swap_rope=args.swap_rope,
                     emulate_activations=args.emulate_activations, boundary=boundary)
    with open(args.out, "wb") as out:
        out.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())
    if args.boundary_out:
        with open(args.boundary_out, "w") as out:
            out.write(f"{boundary[0]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
