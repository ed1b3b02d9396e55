#!/usr/bin/python3
"""Independent reference forward pass for DeepSeek-V2/V3 checkpoints, and whale's forward fixtures.

Written from /work/shared/spec/deepseek-v3.md (sections 3-6 and "whale's numerics target"), not from
whale's C++ or any public implementation. It favours being obviously right over being fast: every
sequence is run alone from position 0, experts are applied token by token, and the math is exact
float64 by default (float32 on request) with weights dequantized exactly (BF16 -> value, FP8 -> e4m3
value x its 128x128 block multiplier).

Library: `Model(directory, dtype)` then `model.forward(tokens, attention="naive"|"absorbed", trace=None)`
returns (logits [L, vocab], mtp_logits [L-1, vocab] or None).

CLI:  deepseek_ref.py --model DIR --tokens 1,2,3 [--tokens ...] --out DIR [--debug-dir DIR] [--precision f64|f32]
writes the fixture described in tools/reference/README.md.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_config import ConfigError, DeepSeekConfig, load_config  # noqa: E402
from safetensors_np import Checkpoint, CheckpointError  # noqa: E402

FIXTURE_FORMAT = "whale-forward-fixture"
FIXTURE_VERSION = 1
TORCH_DTYPES = {"f64": torch.float64, "f32": torch.float32}

# ---------------------------------------------------------------------------------------------------
# Ops. Shapes: L = tokens in the sequence, H = heads, D = hidden size; row-major, last index fastest.


def rms_norm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim (spec 4.2), all in x's dtype."""
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight


def linear(x, weight):
    """y = x W^T with W stored [out, in] (HF layout)."""
    return x @ weight.T


def swiglu_mlp(x, gate, up, down):
    """down( silu(gate x) * up x ), silu(z) = z sigmoid(z) (spec 5.1)."""
    g = linear(x, gate)
    return linear(g * torch.sigmoid(g) * linear(x, up), down)


def rope_inverse_frequencies(cfg: DeepSeekConfig, dtype):
    """omega_i for i = 0..rope_dim/2-1: plain 1/theta^(2i/d), or YaRN-blended in the reference form
    freq/s * (1 - smooth) + freq * smooth with the ramp over original_max_position_embeddings (spec 4.5)."""
    d = cfg.qk_rope_head_dim
    exponents = torch.arange(0, d, 2, dtype=torch.float64) / d  # [d/2]
    freq = 1.0 / (cfg.rope_theta**exponents)
    rs = cfg.rope_scaling
    if rs is None:
        return freq.to(dtype)

    def correction_dim(rotations):
        return d * math.log(rs.original_max_position_embeddings / (rotations * 2 * math.pi)) / (2 * math.log(cfg.rope_theta))

    low = max(math.floor(correction_dim(rs.beta_fast)), 0)
    high = min(math.ceil(correction_dim(rs.beta_slow)), d - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0.0, 1.0)
    smooth = 1.0 - ramp
    return (freq / rs.factor * (1.0 - smooth) + freq * smooth).to(dtype)


def apply_rope(x, positions, inv_freq):
    """Rotate interleaved pairs (x[2i], x[2i+1]) by angle p * omega_i (spec 4.4). x: [..., L, d], positions: [L]."""
    angles = positions.to(inv_freq.dtype)[:, None] * inv_freq[None, :]  # [L, d/2]
    cos, sin = torch.cos(angles), torch.sin(angles)
    even, odd = x[..., 0::2], x[..., 1::2]  # [..., L, d/2]
    rotated_even = even * cos - odd * sin
    rotated_odd = even * sin + odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)  # back to interleaved order


def top_indices(values, k):
    """Indices of the k largest values; ties go to the smaller index (explicit, unlike torch.topk)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return order[:k]


def _gap(values, k):
    """values[k-1] - values[k] in descending order: how far the k-th pick is from being displaced."""
    finite = sorted((v for v in values if v != -math.inf), reverse=True)
    return finite[k - 1] - finite[k] if len(finite) > k else math.inf


def route(scores, bias, cfg: DeepSeekConfig):
    """One token's routing (spec 5.2, 5.3). scores: [E] sigmoid or softmax affinities; bias: [E] or None.

    Returns (experts [K] ints, weights [K] tensor, margin): margin is the smallest gap between a chosen
    and a rejected group/expert score, i.e. how robust the choice is to rounding elsewhere.
    """
    selection = scores + bias if bias is not None else scores  # the bias only chooses experts
    per_group = cfg.experts_per_group if cfg.topk_method != "greedy" else cfg.n_routed_experts
    margin = math.inf
    masked = [float(v) for v in selection]
    if cfg.topk_method != "greedy" and cfg.topk_group < cfg.n_group:
        groups = selection.view(cfg.n_group, per_group)  # [G, E/G]
        if cfg.topk_method == "noaux_tc":
            top2 = torch.sort(groups, dim=-1, descending=True).values[:, :2]
            group_scores = [float(top2[j, 0] + top2[j, 1]) for j in range(cfg.n_group)]
        else:  # group_limited_greedy
            group_scores = [float(groups[j].max()) for j in range(cfg.n_group)]
        kept = set(top_indices(group_scores, cfg.topk_group))
        margin = min(margin, _gap(group_scores, cfg.topk_group))
        masked = [v if i // per_group in kept else -math.inf for i, v in enumerate(masked)]
    experts = top_indices(masked, cfg.num_experts_per_tok)
    margin = min(margin, _gap(masked, cfg.num_experts_per_tok))
    weights = scores[experts]  # [K] from the unbiased scores
    if cfg.norm_topk_prob:
        weights = weights / weights.sum()  # no epsilon (spec numerics target)
    return experts, weights * cfg.routed_scaling_factor, margin


# ---------------------------------------------------------------------------------------------------
# Model


class Model:
    """All weights of one checkpoint, dequantized exactly to `dtype`, checked against config.json."""

    def __init__(self, directory, dtype=torch.float64):
        self.directory = directory
        self.cfg = load_config(os.path.join(directory, "config.json"))
        self.dtype = dtype
        self.ckpt = Checkpoint(directory)
        self.used = set()
        self.quant_block = self.cfg.quantization_block or (128, 128)
        c = self.cfg
        D, V = c.hidden_size, c.vocab_size
        self.embed = self._load("model.embed_tokens.weight", (V, D))
        self.final_norm = self._load("model.norm.weight", (D,))
        if c.tie_word_embeddings and "lm_head.weight" not in self.ckpt:
            self.lm_head = self.embed
        else:
            self.lm_head = self._load("lm_head.weight", (V, D))
        self.layers = [self._load_block(layer) for layer in range(c.num_hidden_layers)]
        self.mtp = None
        if c.has_mtp:
            n = c.num_hidden_layers  # depth-1 module only (V3 ships one); deeper modules are not used
            p = f"model.layers.{n}."
            self.mtp = {
                "embed": self._load(p + "embed_tokens.weight", (V, D)),
                "enorm": self._load(p + "enorm.weight", (D,)),
                "hnorm": self._load(p + "hnorm.weight", (D,)),
                "eh_proj": self._load(p + "eh_proj.weight", (D, 2 * D)),
                "head_norm": self._load(p + "shared_head.norm.weight", (D,)),
                "head": self._load(p + "shared_head.head.weight", (V, D)),
                "block": self._load_block(n),
            }
        unused = [n for n in self.ckpt.names() if n not in self.used and not n.endswith("_scale_inv")]
        unused += [n for n in self.ckpt.names() if n.endswith("_scale_inv") and n[: -len("_scale_inv")] not in self.used]
        if c.num_nextn_predict_layers > 1:
            unused = [n for n in unused if not _is_layer_at_least(n, c.num_hidden_layers + 1)]
        if unused:
            raise CheckpointError(f"{directory}: tensors not used by config.json's architecture: {unused[:8]}")

    def _load(self, name, shape):
        self.used.add(name)
        return torch.from_numpy(self.ckpt.load(name, shape, self.quant_block)).to(self.dtype)

    def _load_block(self, layer):
        c = self.cfg
        p = f"model.layers.{layer}."
        D, H = c.hidden_size, c.num_attention_heads
        w = {
            "attn_norm": self._load(p + "input_layernorm.weight", (D,)),
            "ffn_norm": self._load(p + "post_attention_layernorm.weight", (D,)),
            "kv_a": self._load(p + "self_attn.kv_a_proj_with_mqa.weight", (c.kv_lora_rank + c.qk_rope_head_dim, D)),
            "kv_a_norm": self._load(p + "self_attn.kv_a_layernorm.weight", (c.kv_lora_rank,)),
            "kv_b": self._load(p + "self_attn.kv_b_proj.weight", (H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank)),
            "o": self._load(p + "self_attn.o_proj.weight", (D, H * c.v_head_dim)),
        }
        if c.q_lora_rank:
            w["q_a"] = self._load(p + "self_attn.q_a_proj.weight", (c.q_lora_rank, D))
            w["q_a_norm"] = self._load(p + "self_attn.q_a_layernorm.weight", (c.q_lora_rank,))
            w["q_b"] = self._load(p + "self_attn.q_b_proj.weight", (H * c.qk_head_dim, c.q_lora_rank))
        else:
            w["q"] = self._load(p + "self_attn.q_proj.weight", (H * c.qk_head_dim, D))
        if c.is_moe_layer(layer):
            E, Im = c.n_routed_experts, c.moe_intermediate_size
            w["router"] = self._load(p + "mlp.gate.weight", (E, D))
            if c.topk_method == "noaux_tc":
                w["router_bias"] = self._load(p + "mlp.gate.e_score_correction_bias", (E,))
            w["experts"] = [
                tuple(
                    self._load(f"{p}mlp.experts.{e}.{proj}.weight", shape)
                    for proj, shape in (("gate_proj", (Im, D)), ("up_proj", (Im, D)), ("down_proj", (D, Im)))
                )
                for e in range(E)
            ]
            if c.n_shared_experts:
                Is = c.n_shared_experts * Im  # one MLP of the combined width (spec 5.1)
                w["shared"] = tuple(
                    self._load(f"{p}mlp.shared_experts.{proj}.weight", shape)
                    for proj, shape in (("gate_proj", (Is, D)), ("up_proj", (Is, D)), ("down_proj", (D, Is)))
                )
        else:
            I = c.intermediate_size
            w["mlp"] = tuple(
                self._load(f"{p}mlp.{proj}.weight", shape)
                for proj, shape in (("gate_proj", (I, D)), ("up_proj", (I, D)), ("down_proj", (D, I)))
            )
        return w

    # --- blocks ----------------------------------------------------------------------------------

    def attention(self, w, x, positions, form, trace, tag):
        """MLA over one causal sequence (spec 4.3). x: [L, D] (already normed) -> [L, D]."""
        c = self.cfg
        L, H = x.shape[0], c.num_attention_heads
        dn, dr, dv, r = c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
        inv_freq = rope_inverse_frequencies(c, x.dtype)
        if c.q_lora_rank:
            q = linear(rms_norm(linear(x, w["q_a"]), w["q_a_norm"], c.rms_norm_eps), w["q_b"])
        else:
            q = linear(x, w["q"])
        q = q.view(L, H, dn + dr).transpose(0, 1)  # [H, L, dn + dr]
        q_nope = q[..., :dn]  # [H, L, dn]
        q_pe = apply_rope(q[..., dn:], positions, inv_freq)  # [H, L, dr]
        kv = linear(x, w["kv_a"])  # [L, r + dr]
        latent = rms_norm(kv[:, :r], w["kv_a_norm"], c.rms_norm_eps)  # [L, r], normalized: what the cache holds
        k_pe = apply_rope(kv[:, r:], positions, inv_freq)  # [L, dr], one head shared by all
        kv_b = w["kv_b"].view(H, dn + dv, r)
        w_uk, w_uv = kv_b[:, :dn, :], kv_b[:, dn:, :]  # [H, dn, r], [H, dv, r]
        causal = torch.ones(L, L, dtype=torch.bool).tril()  # [t, s]: s <= t

        if form == "naive":
            k_nope = torch.einsum("sc,hdc->hsd", latent, w_uk)  # [H, L, dn]
            v = torch.einsum("sc,hdc->hsd", latent, w_uv)  # [H, L, dv]
            scores = torch.einsum("htd,hsd->hts", q_nope, k_nope) + torch.einsum("htd,sd->hts", q_pe, k_pe)
        elif form == "absorbed":
            q_latent = torch.einsum("htd,hdc->htc", q_nope, w_uk)  # [H, L, r]
            scores = torch.einsum("htc,sc->hts", q_latent, latent) + torch.einsum("htd,sd->hts", q_pe, k_pe)
        else:
            raise ValueError(f"attention form {form!r}")
        scores = (scores * c.softmax_scale).masked_fill(~causal, -math.inf)  # [H, L, L]
        probs = torch.softmax(scores, dim=-1)
        if form == "naive":
            o = torch.einsum("hts,hsd->htd", probs, v)  # [H, L, dv]
        else:
            o = torch.einsum("htc,hdc->htd", torch.einsum("hts,sc->htc", probs, latent), w_uv)
        out = linear(o.transpose(0, 1).reshape(L, H * dv), w["o"])  # [L, D]
        if trace is not None:
            trace[f"{tag}_kv_latent"] = latent
            trace[f"{tag}_k_pe"] = k_pe
            trace[f"{tag}_attn_out"] = out
        return out

    def moe(self, w, x, trace, tag, margins):
        """Routed experts (weighted) + shared experts. x: [L, D] normed -> [L, D]."""
        c = self.cfg
        logits = linear(x, w["router"])  # [L, E]
        scores = torch.sigmoid(logits) if c.scoring_func == "sigmoid" else torch.softmax(logits, dim=-1)
        out = swiglu_mlp(x, *w["shared"]) if "shared" in w else torch.zeros_like(x)
        chosen, chosen_weights = [], []
        for t in range(x.shape[0]):
            experts, weights, margin = route(scores[t], w.get("router_bias"), c)
            margins.append(margin)
            for e, weight in zip(experts, weights):
                out[t] = out[t] + weight * swiglu_mlp(x[t], *w["experts"][e])
            chosen.append(experts)
            chosen_weights.append(weights)
        if trace is not None:
            trace[f"{tag}_router_experts"] = torch.tensor(chosen, dtype=torch.int64)
            trace[f"{tag}_router_weights"] = torch.stack(chosen_weights)
        return out

    def block(self, w, h, positions, form, trace, tag, margins):
        """Pre-norm residual decoder block: h + MLA(norm h), then + FFN(norm h)."""
        c = self.cfg
        h = h + self.attention(w, rms_norm(h, w["attn_norm"], c.rms_norm_eps), positions, form, trace, tag)
        if trace is not None:
            trace[f"{tag}_attn"] = h
        x = rms_norm(h, w["ffn_norm"], c.rms_norm_eps)
        h = h + (self.moe(w, x, trace, tag, margins) if "router" in w else swiglu_mlp(x, *w["mlp"]))
        if trace is not None:
            trace[f"{tag}_ffn"] = h
        return h

    def forward(self, tokens, attention="naive", trace=None, margins=None):
        """tokens: ids of one sequence starting at position 0. Returns (logits [L, V], mtp [L-1, V] or None)."""
        c = self.cfg
        for i, t in enumerate(tokens):
            if not 0 <= t < c.vocab_size:
                raise ValueError(f"token {t} at index {i} is outside the vocabulary [0, {c.vocab_size})")
        if not tokens:
            raise ValueError("empty token sequence")
        margins = [] if margins is None else margins
        ids = torch.tensor(tokens, dtype=torch.int64)
        positions = torch.arange(len(tokens))
        h = self.embed[ids]  # [L, D], no sqrt(D) scaling
        if trace is not None:
            trace["embed"] = h
        for layer, w in enumerate(self.layers):
            h = self.block(w, h, positions, attention, trace, f"layer{layer:02d}", margins)
        h = rms_norm(h, self.final_norm, c.rms_norm_eps)  # [L, D]
        logits = linear(h, self.lm_head)  # [L, V]
        if trace is not None:
            trace["final_norm"] = h
            trace["logits"] = logits
        if self.mtp is None or len(tokens) < 2:
            return logits, None
        return logits, self.mtp_forward(tokens, h, attention, trace, margins)

    def mtp_forward(self, tokens, h_final, attention, trace, margins):
        """Depth-1 MTP (spec 6): row i predicts token i+2 from h_i (after model.norm) and token i+1."""
        c, m = self.cfg, self.mtp
        n = len(tokens) - 1
        e = m["embed"][torch.tensor(tokens[1:], dtype=torch.int64)]  # [n, D], the layer's own embedding copy
        joined = torch.cat(
            (rms_norm(e, m["enorm"], c.rms_norm_eps), rms_norm(h_final[:n], m["hnorm"], c.rms_norm_eps)), dim=-1
        )  # [n, 2D]: embedding first, hidden second
        u = linear(joined, m["eh_proj"])  # [n, D]
        if trace is not None:
            trace["mtp_input"] = u
        o = self.block(m["block"], u, torch.arange(n), attention, trace, "mtp", margins)
        logits = linear(rms_norm(o, m["head_norm"], c.rms_norm_eps), m["head"])  # [n, V]
        if trace is not None:
            trace["mtp_logits"] = logits
        return logits


def _is_layer_at_least(name, first):
    parts = name.split(".")
    return len(parts) > 2 and parts[0] == "model" and parts[1] == "layers" and int(parts[2]) >= first


# ---------------------------------------------------------------------------------------------------
# Fixtures


def _max_abs(a, b):
    return float((a - b).abs().max()) if a is not None else 0.0


def generate_fixture(model_dir, sequences, out_dir, debug_dir=None, precision="f64"):
    """Runs every sequence, writes logits_K.f32 / mtp_logits_K.f32 and fixture.json; returns the summary.

    Self-checks run alongside: the absorbed attention form against the naive one, and the float32
    computation against the float64 one (a measure of how far an F32 engine may sit from exact math).
    """
    model = Model(model_dir, TORCH_DTYPES[precision])
    if model.mtp is not None and any(len(s) < 2 for s in sequences):
        raise ValueError("every sequence needs at least 2 tokens when the model has MTP (draft rows = length - 1)")
    other_precision = "f32" if precision == "f64" else "f64"
    other = Model(model_dir, TORCH_DTYPES[other_precision])
    os.makedirs(out_dir, exist_ok=True)
    logits_files, mtp_files = [], []
    checks = {"absorbed_vs_naive_max_abs": 0.0, "absorbed_vs_naive_mtp_max_abs": 0.0, "router_min_margin": math.inf}
    precision_diff, logit_std, mtp_std = 0.0, [], []
    for k, tokens in enumerate(sequences):
        trace = {} if debug_dir else None
        margins = []
        logits, mtp = model.forward(tokens, "naive", trace, margins)
        abs_logits, abs_mtp = model.forward(tokens, "absorbed")
        other_logits, other_mtp = other.forward(tokens, "naive")
        checks["absorbed_vs_naive_max_abs"] = max(checks["absorbed_vs_naive_max_abs"], _max_abs(logits, abs_logits))
        checks["absorbed_vs_naive_mtp_max_abs"] = max(checks["absorbed_vs_naive_mtp_max_abs"], _max_abs(mtp, abs_mtp))
        checks["router_min_margin"] = min([checks["router_min_margin"]] + margins)
        precision_diff = max(precision_diff, float((logits.double() - other_logits.double()).abs().max()))
        if mtp is not None:
            precision_diff = max(precision_diff, float((mtp.double() - other_mtp.double()).abs().max()))
        logit_std.append(float(logits.double().std()))
        name = f"logits_{k}.f32"
        logits.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(out_dir, name))
        logits_files.append(name)
        if mtp is not None:
            name = f"mtp_logits_{k}.f32"
            mtp.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(out_dir, name))
            mtp_files.append(name)
            mtp_std.append(float(mtp.double().std()))
        if debug_dir:
            seq_dir = os.path.join(debug_dir, f"seq{k}")
            os.makedirs(seq_dir, exist_ok=True)
            for key, value in trace.items():
                np.save(os.path.join(seq_dir, key + ".npy"), value.numpy())
        for name, value in (("logits", logits), ("mtp_logits", mtp)):
            if value is not None and not torch.isfinite(value).all():
                raise RuntimeError(f"sequence {k}: non-finite {name}")
    checks[f"{other_precision}_vs_{precision}_max_abs"] = precision_diff
    checks["logit_std"] = logit_std
    if mtp_std:
        checks["mtp_logit_std"] = mtp_std
    fixture = {
        "format": FIXTURE_FORMAT,
        "version": FIXTURE_VERSION,
        "generator": "tools/reference/deepseek_ref.py",
        "torch": torch.__version__,
        "dtype_note": (
            f"weights dequantized exactly (BF16 value; FP8 e4m3 value x 128x128 block multiplier), all "
            f"activations, norms, RoPE/YaRN, softmax and the router in {'float64' if precision == 'f64' else 'float32'}; "
            "logits rounded once to float32 on output. Router ties go to the smaller index; excluded groups are -inf."
        ),
        "sequences": [list(s) for s in sequences],
        "logits": logits_files,
        "mtp_logits": mtp_files,
        "vocab_size": model.cfg.vocab_size,
        "self_check": checks,
    }
    with open(os.path.join(out_dir, "fixture.json"), "w") as f:  # one line per field, diff-friendly
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in fixture.items()) + "\n}\n")
    return fixture


def _parse_tokens(text):
    try:
        return [int(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tokens {text!r}: expected comma-separated integers") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + safetensors)")
    parser.add_argument("--tokens", action="append", type=_parse_tokens, required=True, help="one sequence: 1,2,3")
    parser.add_argument("--out", required=True, help="fixture directory (fixture.json and .f32 files)")
    parser.add_argument("--debug-dir", help="dump intermediates per sequence as .npy")
    parser.add_argument("--precision", choices=sorted(TORCH_DTYPES), default="f64")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        fixture = generate_fixture(args.model, args.tokens, args.out, args.debug_dir, args.precision)
    except (ConfigError, CheckpointError, OSError, ValueError, RuntimeError) as e:
        print(f"deepseek_ref: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"out": args.out, "self_check": fixture["self_check"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
