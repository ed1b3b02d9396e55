#!/usr/bin/python3
"""Independent training reference for whale: losses, every parameter gradient, and AdamW steps.

Written from /work/shared/spec/training.md (sections 1-3) and deepseek-v3.md, on top of the independent
forward in deepseek_ref.py (same weights, attention, router and MTP wiring), in float64 with torch
autograd. Nothing here comes from whale's C++.

CLI:  train_ref.py --model DIR --out DIR [--steps 10] [--batch-seed 7] [--precision f64|f32] [--fp8]
                   [--skip-checks]
writes fixture.json and (without --fp8) grads.safetensors; format and semantics: tests/data/train/README.md.
"""

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402
from ds_config import ConfigError  # noqa: E402
from safetensors_np import (  # noqa: E402
    E4M3_MAX,
    CheckpointError,
    decode_e4m3,
    encode_e4m3,
    write_safetensors,
)

FIXTURE_FORMAT = "whale-train-fixture"
FIXTURE_VERSION = 1
BIAS_SUFFIX = "mlp.gate.e_score_correction_bias"


@dataclass
class Hyper:
    """Training hyperparameters of the fixture (common brief; spec training.md 1-3)."""

    lambda_mtp: float = 0.3
    alpha_balance: float = 1e-4
    lr: float = 1e-3  # constant: the fixture pins the optimizer, not the schedule
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    gamma_bias: float = 1e-3
    steps: int = 10


@dataclass
class Batch:
    """[n_seqs, seq_len] int lists, as whale's TokenBatch (src/train/data.h)."""

    inputs: list
    targets: list
    segments: list

    @property
    def n_seqs(self):
        return len(self.inputs)

    @property
    def seq_len(self):
        return len(self.inputs[0])

    def segment_spans(self, row):
        """[(begin, end)] maximal runs of equal segment ids; a reused id after a change is an error."""
        seg = self.segments[row]
        spans, begin, seen = [], 0, set()
        for i in range(1, len(seg) + 1):
            if i == len(seg) or seg[i] != seg[begin]:
                if seg[begin] in seen:
                    raise ValueError(f"row {row}: segment id {seg[begin]} at position {begin} is not contiguous")
                seen.add(seg[begin])
                spans.append((begin, i))
                begin = i
        return spans

    def validate(self, vocab):
        for name in ("inputs", "targets", "segments"):
            rows = getattr(self, name)
            if len(rows) != self.n_seqs or any(len(r) != self.seq_len for r in rows):
                raise ValueError(f"batch.{name}: expected [{self.n_seqs}, {self.seq_len}]")
        for r in range(self.n_seqs):
            for i in range(self.seq_len):
                if not 0 <= self.inputs[r][i] < vocab:
                    raise ValueError(f"batch.inputs[{r}][{i}] = {self.inputs[r][i]}: expected 0..{vocab - 1}")
                if not -1 <= self.targets[r][i] < vocab:
                    raise ValueError(f"batch.targets[{r}][{i}] = {self.targets[r][i]}: expected -1..{vocab - 1}")
            self.segment_spans(r)


def fixed_batch(vocab, seed=7, n_seqs=2, seq_len=32, split=14):
    """Tokens from a fixed seed. Row 0: one document, with one target masked (-1 at position 5).
    Row 1: two documents [0, split) and [split, seq_len); no loss across the boundary (target -1 at split-1)."""
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, vocab, size=(n_seqs, seq_len + 1)).tolist()
    inputs = [s[:seq_len] for s in stream]
    targets = [s[1:] for s in stream]
    segments = [[0] * seq_len for _ in range(n_seqs)]
    targets[0][5] = -1
    if n_seqs > 1:
        segments[1] = [0 if i < split else 1 for i in range(seq_len)]
        targets[1][split - 1] = -1
    return Batch(inputs, targets, segments)


# ---------------------------------------------------------------------------------------------------
# FP8 recipe emulation (training.md 4)


def fp8_rows(x, tile=128):
    """Quantize-dequantize x [..., n] in 1 x tile tiles along the last dim (per row, per 128 entries):
    scale = amax / 448, value = e4m3(x / scale) * scale, round to nearest even; an all-zero tile stays 0."""
    a = x.detach().cpu().numpy().astype(np.float64)
    n = a.shape[-1]
    out = np.empty_like(a)
    for begin in range(0, n, tile):
        part = a[..., begin : begin + tile]
        amax = np.abs(part).max(axis=-1, keepdims=True)
        scale = np.where(amax > 0, amax / E4M3_MAX, 1.0)
        out[..., begin : begin + tile] = decode_e4m3(encode_e4m3(part / scale)) * scale
    return torch.from_numpy(out).to(x.dtype)


def fp8_blocks(w, block=128):
    """Quantize-dequantize a weight [out, in] in block x block tiles (edge blocks partial)."""
    a = w.detach().cpu().numpy().astype(np.float64)
    out = np.empty_like(a)
    for r in range(0, a.shape[0], block):
        for c in range(0, a.shape[1], block):
            part = a[r : r + block, c : c + block]
            amax = np.abs(part).max()
            scale = amax / E4M3_MAX if amax > 0 else 1.0
            out[r : r + block, c : c + block] = decode_e4m3(encode_e4m3(part / scale)) * scale
    return torch.from_numpy(out).to(w.dtype)


def fp8_cols(x, tile=128):
    """Quantize-dequantize x [n, m] in tile x 1 tiles along the first dim (per column, per 128 rows)."""
    return fp8_rows(x.transpose(0, 1), tile).transpose(0, 1)


class Fp8Linear(torch.autograd.Function):
    """The FP8 recipe for one linear layer y = x W^T, x [n, in], W [out, in] (src/train/fp8_recipe.h):
    y = Q1x128(x) Q128x128(W)^T;  dX = Q1x128(dY) Q128x128(W);  dW = Q128x1(dY)^T Q128x1(x),
    every operand quantized along its product's inner dimension (the token tiles of dW span the n rows
    of the call, i.e. the whole batch, or one expert's tokens). Products in the working dtype."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return fp8_rows(x) @ fp8_blocks(w).T

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return fp8_rows(grad) @ fp8_blocks(w), fp8_cols(grad).transpose(0, 1) @ fp8_cols(x)


# ---------------------------------------------------------------------------------------------------
# Trainable model


class TrainModel(ref.Model):
    """deepseek_ref.Model's weights as autograd leaves keyed by HF name, with a forward over a whole
    batch: every linear layer sees all N = n_seqs * seq_len tokens (row-major) at once, attention runs
    per document, and experts see their tokens in token order. Same math as deepseek_ref's naive form,
    checked against it by forward_matches_inference. self.linear applies the FP8 recipe when fp8."""

    def __init__(self, directory, dtype=torch.float64, fp8=False):
        self.params = {}  # HF name -> leaf tensor (the same object the forward uses)
        self.fp8 = fp8
        super().__init__(directory, dtype)
        if self.mtp is not None:
            # Training shares the main embedding and output head with the MTP module (training.md 1,
            # V3 report 2.2): the checkpoint's stored copies take no part and are not parameters.
            n = self.cfg.num_hidden_layers
            del self.params[f"model.layers.{n}.embed_tokens.weight"]
            del self.params[f"model.layers.{n}.shared_head.head.weight"]
            self.mtp["embed"], self.mtp["head"] = self.embed, self.lm_head

    def _load(self, name, shape):
        t = super()._load(name, shape).clone()
        t.requires_grad_(not name.endswith(BIAS_SUFFIX))  # the balancing bias is not trained by gradient
        self.params[name] = t
        return t

    def linear(self, x, w, quantizable=True):
        """quantizable: a linear layer of the FP8 recipe (attention projections, dense MLP, experts,
        shared experts, eh_proj); not the embedding, heads or router."""
        return Fp8Linear.apply(x, w) if self.fp8 and quantizable else ref.linear(x, w)

    def mlp(self, x, gate, up, down):
        g = self.linear(x, gate)
        return self.linear(g * torch.sigmoid(g) * self.linear(x, up), down)

    def attention(self, w, x, spans, positions):
        """MLA, naive form. x: [N, D] normed; spans: [(begin, end)] documents; positions: [N]."""
        c = self.cfg
        N, H = x.shape[0], c.num_attention_heads
        dn, dr, dv, r = c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
        inv_freq = ref.rope_inverse_frequencies(c, x.dtype)
        if c.q_lora_rank:
            q = self.linear(ref.rms_norm(self.linear(x, w["q_a"]), w["q_a_norm"], c.rms_norm_eps), w["q_b"])
        else:
            q = self.linear(x, w["q"])
        q = q.view(N, H, dn + dr).transpose(0, 1)  # [H, N, dn + dr]
        q_pe = ref.apply_rope(q[..., dn:], positions, inv_freq)  # [H, N, dr]
        kv = self.linear(x, w["kv_a"])  # [N, r + dr]
        latent = ref.rms_norm(kv[:, :r], w["kv_a_norm"], c.rms_norm_eps)  # [N, r]
        k_pe = ref.apply_rope(kv[:, r:], positions, inv_freq)  # [N, dr]
        kvb = self.linear(latent, w["kv_b"]).view(N, H, dn + dv).transpose(0, 1)  # [H, N, dn + dv]
        outs = []
        for b, e in spans:  # the attention core never crosses a document
            L = e - b
            scores = torch.einsum("htd,hsd->hts", q[:, b:e, :dn], kvb[:, b:e, :dn])
            scores = scores + torch.einsum("htd,sd->hts", q_pe[:, b:e], k_pe[b:e])  # [H, L, L]
            causal = torch.ones(L, L, dtype=torch.bool).tril()  # [t, s]: s <= t
            probs = torch.softmax((scores * c.softmax_scale).masked_fill(~causal, -math.inf), dim=-1)
            outs.append(torch.einsum("hts,hsd->htd", probs, kvb[:, b:e, dn:]))  # [H, L, dv]
        o = torch.cat(outs, dim=1)  # [H, N, dv]
        return self.linear(o.transpose(0, 1).reshape(N, H * dv), w["o"])  # [N, D]

    def moe(self, w, x, margins, layer, routing):
        """Routed experts (each sees only its tokens, in token order) + shared experts; appends the
        routing to `routing`. Gradient reaches the router only through the chosen experts' unbiased
        scores (and their renormalization) inside ref.route; the selection is made on Python floats."""
        c = self.cfg
        logits = self.linear(x, w["router"], quantizable=False)  # [N, E]
        scores = torch.sigmoid(logits) if c.scoring_func == "sigmoid" else torch.softmax(logits, dim=-1)
        out = self.mlp(x, *w["shared"]) if "shared" in w else torch.zeros_like(x)  # [N, D]
        per_expert = [([], []) for _ in range(c.n_routed_experts)]  # expert -> (token rows, weights)
        chosen = []
        for t in range(x.shape[0]):
            experts, weights, margin = ref.route(scores[t], w.get("router_bias"), c)
            margins.append(margin)
            chosen.append(experts)
            for e, weight in zip(experts, weights):
                per_expert[e][0].append(t)
                per_expert[e][1].append(weight)
        for e, (rows, weights) in enumerate(per_expert):
            if rows:
                idx = torch.tensor(rows, dtype=torch.int64)
                y = self.mlp(x[idx], *w["experts"][e])  # [n_e, D]
                out = out.index_add(0, idx, torch.stack(weights)[:, None] * y)
        routing.append({"layer": layer, "scores": scores, "experts": chosen})
        return out

    def train_block(self, layer, w, h, spans, positions, margins, routing):
        c = self.cfg
        h = h + self.attention(w, ref.rms_norm(h, w["attn_norm"], c.rms_norm_eps), spans, positions)
        x = ref.rms_norm(h, w["ffn_norm"], c.rms_norm_eps)
        return h + (self.moe(w, x, margins, layer, routing) if "router" in w else self.mlp(x, *w["mlp"]))

    def batch_forward(self, batch, margins):
        """Returns (logits [N, V], mtp_logits [N', V] or None, mtp_targets [N'], routing records).

        MTP rows are every pair (i, i+1) of a row, N' = n_seqs * (seq_len - 1), row-major: row (b, i)
        takes h_i after model.norm and Emb(inputs[i+1]), belongs to document segments[i] at its
        position, and predicts targets[i+1] when segments[i+1] == segments[i] (else -1: a pair across
        a boundary is computed and routed, never scored)."""
        c = self.cfg
        B, L = batch.n_seqs, batch.seq_len
        spans, positions = [], []
        for b in range(B):
            for s, e in batch.segment_spans(b):
                spans.append((b * L + s, b * L + e))
                positions += range(e - s)
        positions = torch.tensor(positions, dtype=torch.int64)  # [N]
        ids = torch.tensor([t for row in batch.inputs for t in row], dtype=torch.int64)
        routing = []
        h = self.embed[ids]  # [N, D], no sqrt(D) scaling
        for layer, w in enumerate(self.layers):
            h = self.train_block(layer, w, h, spans, positions, margins, routing)
        hn = ref.rms_norm(h, self.final_norm, c.rms_norm_eps)  # [N, D]
        logits = self.linear(hn, self.lm_head, quantizable=False)  # [N, V]
        if self.mtp is None or L < 2:
            return logits, None, [], routing
        m, Lm = self.mtp, L - 1
        rows = [b * L + i for b in range(B) for i in range(Lm)]  # main token of each MTP row
        mtp_ids = torch.tensor([batch.inputs[b][i + 1] for b in range(B) for i in range(Lm)], dtype=torch.int64)
        mtp_targets = [
            batch.targets[b][i + 1] if batch.segments[b][i + 1] == batch.segments[b][i] else -1
            for b in range(B)
            for i in range(Lm)
        ]
        mtp_spans = []
        for b in range(B):
            seg, s = batch.segments[b], 0
            for i in range(1, Lm + 1):
                if i == Lm or seg[i] != seg[s]:
                    mtp_spans.append((b * Lm + s, b * Lm + i))
                    s = i
        idx = torch.tensor(rows, dtype=torch.int64)
        e_n = ref.rms_norm(m["embed"][mtp_ids], m["enorm"], c.rms_norm_eps)  # [N', D]
        h_n = ref.rms_norm(hn[idx], m["hnorm"], c.rms_norm_eps)  # [N', D]
        joined = torch.cat((e_n, h_n), dim=-1)  # [N', 2D]: embedding first, hidden second
        u = self.linear(joined, m["eh_proj"])  # [N', D]
        o = self.train_block(c.num_hidden_layers, m["block"], u, mtp_spans, positions[idx], margins, routing)
        mtp_logits = self.linear(ref.rms_norm(o, m["head_norm"], c.rms_norm_eps), m["head"], quantizable=False)
        return logits, mtp_logits, mtp_targets, routing


def moe_layers(cfg):
    """Indices of the MoE layers: main layers in order, then the MTP layer if it is MoE."""
    layers = [i for i in range(cfg.num_hidden_layers) if cfg.is_moe_layer(i)]
    if cfg.has_mtp and cfg.is_moe_layer(cfg.num_hidden_layers):
        layers.append(cfg.num_hidden_layers)
    return layers


def batch_losses(model, batch, hp, margins):
    """Forward over the batch. Returns (dict of loss tensors and counts, expert load {layer: [E] ints}).

    Main loss: mean CE over positions with target >= 0. L_MTP = lambda * mean CE over MTP rows with a
    target (see TrainModel.batch_forward). Balance: per row (all seq_len positions, all its documents),
    per main MoE layer, sum_i f_i P_i; averaged over rows, summed over layers, times alpha."""
    c = model.cfg
    batch.validate(c.vocab_size)
    E, K, L = c.n_routed_experts, c.num_experts_per_tok, batch.seq_len
    logits, mtp_logits, mtp_targets, routing = model.batch_forward(batch, margins)
    zero = torch.zeros((), dtype=model.dtype)

    def mean_ce(lg, targets):
        t = torch.tensor(targets, dtype=torch.int64)
        keep = t >= 0
        n = int(keep.sum())
        return (F.cross_entropy(lg[keep], t[keep], reduction="sum") / n if n else zero), n

    loss_main, main_n = mean_ce(logits, [t for row in batch.targets for t in row])
    mtp_ce, mtp_n = mean_ce(mtp_logits, mtp_targets) if mtp_logits is not None else (zero, 0)
    load = {layer: [0] * E for layer in moe_layers(c)}
    balance_sum, balance_per_layer = zero, {}
    for r in routing:
        for experts in r["experts"]:
            for e in experts:
                load[r["layer"]][e] += 1
        if r["layer"] >= c.num_hidden_layers:
            continue  # the balance loss covers the main model's MoE layers only
        term_sum = zero
        for b in range(batch.n_seqs):
            scores = r["scores"][b * L : (b + 1) * L]  # [T, E], T = seq_len
            counts = [0] * E
            for experts in r["experts"][b * L : (b + 1) * L]:
                for e in experts:
                    counts[e] += 1
            f = torch.tensor(counts, dtype=scores.dtype) * (E / (K * L))  # no gradient
            P = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=0)  # [E]
            term_sum = term_sum + (f * P).sum()
        balance_sum = balance_sum + term_sum
        balance_per_layer[r["layer"]] = float(term_sum) / batch.n_seqs
    loss_mtp = hp.lambda_mtp * mtp_ce
    loss_balance = hp.alpha_balance * balance_sum / batch.n_seqs
    total = loss_main + loss_mtp + loss_balance
    parts = {
        "loss": total,
        "loss_main": loss_main,
        "loss_mtp": loss_mtp,
        "loss_balance": loss_balance,
        "mtp_ce": mtp_ce,
        "n_main_targets": main_n,
        "n_mtp_targets": mtp_n,
        "balance_per_layer": balance_per_layer,  # sum_i f_i P_i averaged over rows, before alpha
    }
    return parts, load


def decays(name, tensor):
    """Weight decay mask: matrices only (embeddings, heads, projections, router, eh_proj)."""
    return tensor.dim() >= 2 and not name.endswith(BIAS_SUFFIX)


class AdamW:
    """Decoupled AdamW with bias correction; every trainable parameter takes part in every step (a
    parameter that got no gradient, e.g. an unused expert, has gradient 0 and still decays)."""

    def __init__(self, params, hp):
        self.hp = hp
        self.t = 0
        self.m = {n: torch.zeros_like(p) for n, p in params.items() if p.requires_grad}
        self.v = {n: torch.zeros_like(p) for n, p in params.items() if p.requires_grad}

    @torch.no_grad()
    def step(self, params, grads, scale):
        """grads already computed; scale = clipping factor applied to every gradient."""
        hp = self.hp
        self.t += 1
        c1 = 1.0 - hp.beta1**self.t
        c2 = 1.0 - hp.beta2**self.t
        for name, m in self.m.items():
            p, v = params[name], self.v[name]
            g = grads[name] * scale
            m.mul_(hp.beta1).add_(g, alpha=1.0 - hp.beta1)
            v.mul_(hp.beta2).add_(g * g, alpha=1.0 - hp.beta2)
            if decays(name, p):
                p.mul_(1.0 - hp.lr * hp.weight_decay)  # decay uses the pre-step weight, as torch.optim.AdamW
            p.sub_(hp.lr * (m / c1) / (torch.sqrt(v / c2) + hp.eps))


@torch.no_grad()
def update_biases(model, load, hp):
    """b_i += gamma * sign(mean load - load_i) per MoE layer (main and MTP), after the optimizer step."""
    for layer, counts in load.items():
        name = f"model.layers.{layer}.{BIAS_SUFFIX}"
        if name not in model.params:
            continue  # no balancing bias in this architecture (V2)
        c = torch.tensor(counts, dtype=model.dtype)
        model.params[name].add_(hp.gamma_bias * torch.sign(c.mean() - c))


def gradients(model, total):
    """{name: gradient tensor} for every trainable parameter, zeros where autograd produced none."""
    for p in model.params.values():
        p.grad = None
    total.backward()
    return {
        n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
        for n, p in model.params.items()
        if p.requires_grad
    }


def train(model, batch, hp, on_step0=None, log=None):
    """hp.steps optimizer steps on the same batch. Returns the per-step records and the final loss."""
    opt = AdamW(model.params, hp)
    records = []
    for step in range(hp.steps):
        margins = []
        parts, load = batch_losses(model, batch, hp, margins)
        grads = gradients(model, parts["loss"])
        grad_norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        scale = min(1.0, hp.clip_norm / (grad_norm + 1e-6))  # torch.nn.utils.clip_grad_norm_
        if on_step0 is not None and step == 0:
            on_step0(parts, load, grads)
        records.append(
            {
                "step": step,
                **{k: float(parts[k]) for k in ("loss", "loss_main", "loss_mtp", "loss_balance")},
                "grad_norm": grad_norm,
                "clip_scale": scale,
                "router_min_margin": min(margins),
                "expert_load": [load[layer] for layer in sorted(load)],
            }
        )
        if log:
            log(f"step {step}: loss {float(parts['loss']):.10f} grad_norm {grad_norm:.6f}")
        opt.step(model.params, grads, scale)
        update_biases(model, load, hp)
    with torch.no_grad():
        margins = []
        parts, _ = batch_losses(model, batch, hp, margins)
    final = {k: float(parts[k]) for k in ("loss", "loss_main", "loss_mtp", "loss_balance")}
    final["router_min_margin"] = min(margins)
    return records, final


# ---------------------------------------------------------------------------------------------------
# Self-checks


def finite_difference_checks(model, batch, hp, grads, components, h=1e-5):
    """Central differences in float64 against autograd on the element of largest |gradient| in a set of
    tensors covering every kind of parameter (and the router through the balance loss alone)."""
    c = model.cfg
    n = c.num_hidden_layers
    moe = [layer for layer in range(n) if c.is_moe_layer(layer)]
    names = [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.norm.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.q_a_proj.weight",
        "model.layers.0.self_attn.q_a_layernorm.weight",
        "model.layers.0.self_attn.q_b_proj.weight",
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
        "model.layers.0.self_attn.kv_a_layernorm.weight",
        "model.layers.0.self_attn.kv_b_proj.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        f"model.layers.{moe[0]}.mlp.gate.weight",
        f"model.layers.{moe[0]}.mlp.experts.3.up_proj.weight",
        f"model.layers.{moe[0]}.mlp.shared_experts.gate_proj.weight",
        f"model.layers.{moe[-1]}.post_attention_layernorm.weight",
        f"model.layers.{moe[-1]}.mlp.gate.weight",
    ]
    if c.has_mtp:
        names += [
            f"model.layers.{n}.enorm.weight",
            f"model.layers.{n}.hnorm.weight",
            f"model.layers.{n}.eh_proj.weight",
            f"model.layers.{n}.mlp.gate.weight",
            f"model.layers.{n}.mlp.experts.5.down_proj.weight",
            f"model.layers.{n}.shared_head.norm.weight",
        ]
    checks = [(name, "loss", grads[name]) for name in names if name in grads]
    for layer in moe:  # the balance term is ~1e-4 of the total: check its router gradient on its own
        checks.append((f"model.layers.{layer}.mlp.gate.weight", "loss_balance", components[layer]))

    def loss_at(key):
        with torch.no_grad():
            parts, _ = batch_losses(model, batch, hp, [])
        return float(parts[key])

    results, worst = [], 0.0
    for name, key, grad in checks:
        flat = int(grad.abs().argmax())
        index = tuple(int(i) for i in np.unravel_index(flat, tuple(grad.shape)))
        p = model.params[name]
        original = float(p.detach()[index])
        with torch.no_grad():
            p[index] = original + h
        up = loss_at(key)
        with torch.no_grad():
            p[index] = original - h
        down = loss_at(key)
        with torch.no_grad():
            p[index] = original
        fd = (up - down) / (2 * h)
        auto = float(grad[index])
        rel = abs(fd - auto) / max(abs(auto), 1e-30)
        worst = max(worst, rel)
        results.append({"param": name, "index": list(index), "of": key, "autograd": auto, "fd": fd, "rel_err": rel})
    return results, worst


def balance_router_grads(model, batch, hp):
    """Autograd gradient of L_Bal alone w.r.t. each main MoE layer's router weight."""
    parts, _ = batch_losses(model, batch, hp, [])
    for p in model.params.values():
        p.grad = None
    parts["loss_balance"].backward()
    c = model.cfg
    return {
        layer: model.params[f"model.layers.{layer}.mlp.gate.weight"].grad.detach().clone()
        for layer in range(c.num_hidden_layers)
        if c.is_moe_layer(layer)
    }


def forward_matches_inference(model_dir, model, batch):
    """Max |logit difference| between the batched training forward and deepseek_ref.Model (the inference
    reference of the forward fixtures) run on each document alone from position 0, main logits and the
    MTP rows inside the document; the inference model's MTP takes the main embedding and head, as
    training ties them. Pins segment isolation, positions, per-expert batching and the MTP wiring."""
    plain = ref.Model(model_dir, model.dtype)
    if plain.mtp is not None:
        plain.mtp["embed"], plain.mtp["head"] = plain.embed, plain.lm_head
    L = batch.seq_len
    worst = 0.0
    with torch.no_grad():
        logits, mtp_logits, _, _ = model.batch_forward(batch, [])
        for row in range(batch.n_seqs):
            for begin, end in batch.segment_spans(row):
                a, am = plain.forward(batch.inputs[row][begin:end], "naive", None, [])
                worst = max(worst, float((a - logits[row * L + begin : row * L + end]).abs().max()))
                if am is not None:
                    mine = mtp_logits[row * (L - 1) + begin : row * (L - 1) + end - 1]
                    worst = max(worst, float((am - mine).abs().max()))
    return worst


def _max_rel_grad_norm(records, other):
    return max(abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"] for a, b in zip(records, other))


def float32_comparison(model_dir, batch, hp, records, final, grads64):
    """The same run in float32: how far an F32 engine with a different summation order may drift.
    Gradient differences are relative to each tensor's largest |gradient|."""
    model = TrainModel(model_dir, torch.float32)
    grads32 = {}
    records32, final32 = train(model, batch, hp, lambda parts, load, grads: grads32.update(grads))
    worst_grad = max(
        float((grads32[n].double() - g).abs().max()) / max(float(g.abs().max()), 1e-30) for n, g in grads64.items()
    )
    return {
        "loss_max_abs_per_step": [abs(a["loss"] - b["loss"]) for a, b in zip(records, records32)],
        "final_loss_abs": abs(final["loss"] - final32["loss"]),
        "grad_norm_max_rel": _max_rel_grad_norm(records, records32),
        "step0_grad_max_rel_to_tensor_max": worst_grad,
        "same_expert_loads": all(a["expert_load"] == b["expert_load"] for a, b in zip(records, records32)),
    }


# ---------------------------------------------------------------------------------------------------
# Fixture


def _write_json(path, obj):
    """One top-level field per line group; lists of numbers stay on one line (diff-friendly)."""
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()) + "\n}\n")


def generate(model_dir, out_dir, hp, precision="f64", checks=True, log=print, batch_seed=7, fp8=False):
    """fp8: emulate the FP8 recipe in every linear layer (no grads.safetensors; the self-check is then
    the loss gap to the plain run instead of finite differences, which a quantized forward defeats)."""
    dtype = ref.TORCH_DTYPES[precision]
    model = TrainModel(model_dir, dtype, fp8)
    batch = fixed_batch(model.cfg.vocab_size, batch_seed)
    batch.validate(model.cfg.vocab_size)
    os.makedirs(out_dir, exist_ok=True)
    step0 = {}

    def on_step0(parts, load, grads):
        step0["parts"] = {k: (float(v) if torch.is_tensor(v) else v) for k, v in parts.items()}
        step0["load"] = load
        step0["grads"] = grads
        if not fp8:
            tensors = {n: ("F32", g.to(torch.float32).numpy()) for n, g in grads.items()}
            write_safetensors(os.path.join(out_dir, "grads.safetensors"), tensors, {"format": "pt"})

    self_check = {}
    if checks and not fp8:
        t0 = time.time()
        self_check["train_forward_vs_inference_reference_max_abs"] = forward_matches_inference(model_dir, model, batch)
        margins = []
        parts, _ = batch_losses(model, batch, hp, margins)
        grads = gradients(model, parts["loss"])
        components = balance_router_grads(model, batch, hp)
        fd, worst = finite_difference_checks(model, batch, hp, grads, components)
        self_check["finite_difference"] = {"h": 1e-5, "max_rel_err": worst, "entries": fd}
        log(f"finite differences: {len(fd)} entries, max rel err {worst:.3e} ({time.time() - t0:.1f} s)")
        for p in model.params.values():
            p.grad = None

    records, final = train(model, batch, hp, on_step0, log)
    p0 = step0["parts"]
    if checks and fp8:
        plain, plain_final = train(TrainModel(model_dir, dtype), batch, hp)
        gaps = [(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(records, plain)]
        self_check["fp8_vs_plain"] = {
            "plain_losses": [r["loss"] for r in plain],
            "plain_final_loss": plain_final["loss"],
            "relative_loss_gap_per_step": gaps,
        }
        f32, f32_final = train(TrainModel(model_dir, torch.float32, True), batch, hp)
        self_check["fp8_f32_vs_f64"] = {
            "loss_max_abs_per_step": [abs(a["loss"] - b["loss"]) for a, b in zip(records, f32)],
            "final_loss_abs": abs(final["loss"] - f32_final["loss"]),
            "grad_norm_max_rel": _max_rel_grad_norm(records, f32),
            "same_expert_loads": all(a["expert_load"] == b["expert_load"] for a, b in zip(records, f32)),
        }
        log(f"fp8 vs plain relative loss gap per step: {gaps}")
        log(f"fp8 float32 run vs float64: {json.dumps(self_check['fp8_f32_vs_f64'])}")
    if checks and not fp8:
        self_check["f32_vs_f64"] = float32_comparison(model_dir, batch, hp, records, final, step0["grads"])
        log(f"float32 run vs float64: {json.dumps(self_check['f32_vs_f64'])}")
    layers = moe_layers(model.cfg)
    self_check["router_min_margin_per_step"] = [r["router_min_margin"] for r in records]
    self_check["router_min_margin_after_last_step"] = final["router_min_margin"]
    self_check["router_min_margin"] = min(self_check["router_min_margin_per_step"] + [final["router_min_margin"]])
    fixture = {
        "format": FIXTURE_FORMAT,
        "version": FIXTURE_VERSION,
        "generator": "tools/reference/train_ref.py",
        "torch": torch.__version__,
        "precision": precision,
        "fp8": fp8,
        "conventions": {
            "mtp_hidden": "after model.norm (h_i as the inference forward and vLLM/SGLang feed it)",
            "mtp_embedding_and_head": (
                "shared with the main model (model.embed_tokens, lm_head); the MTP copies are not parameters"
            ),
            "mtp_rows": "every pair (i, i+1) of a row, n_seqs*(seq_len-1), routed; scored only within one segment",
            "main_loss": "mean CE over positions with target >= 0 over the whole batch",
            "mtp_loss": "lambda_mtp * mean CE over MTP rows i with segments[i+1] == segments[i] and targets[i+1] >= 0",
            "balance_loss": "alpha * sum over main MoE layers of mean over rows of sum_i f_i P_i; T = seq_len",
            "weight_decay": "tensors with >= 2 dims except e_score_correction_bias",
            "clip": "g *= min(1, clip_norm / (grad_norm + 1e-6)) as torch.nn.utils.clip_grad_norm_",
            "bias_update": "after each optimizer step, all MoE layers incl. MTP, load of that step",
            "fp8": (
                "linear layers (q_a, q_b, kv_a, kv_b, o, dense MLP, experts, shared experts, eh_proj; not the "
                "router, embeddings, heads, norms, attention core): y = Q1x128(x) Q128x128(W)^T, "
                "dX = Q1x128(dY) Q128x128(W), dW = Q128x1(dY)^T Q128x1(x); tiles along each product's inner dim, "
                "token tiles over the rows of the call (whole batch; an expert's tokens in token order); "
                "scale amax/448, e4m3 round-to-nearest-even, all-zero tile stays 0"
            ),
        },
        "batch": {
            "seed": batch_seed,
            "n_seqs": batch.n_seqs,
            "seq_len": batch.seq_len,
            "inputs": batch.inputs,
            "targets": batch.targets,
            "segments": batch.segments,
        },
        "hyper": asdict(hp),
        "step0": {
            "loss": p0["loss"],
            "loss_main": p0["loss_main"],
            "loss_mtp": p0["loss_mtp"],
            "loss_balance": p0["loss_balance"],
            "mtp_ce": p0["mtp_ce"],
            "n_main_targets": p0["n_main_targets"],
            "n_mtp_targets": p0["n_mtp_targets"],
            "balance_per_layer": [p0["balance_per_layer"][k] for k in sorted(p0["balance_per_layer"])],
            "balance_layers": sorted(p0["balance_per_layer"]),
            "expert_load_layers": layers,
            "expert_load": [step0["load"][layer] for layer in layers],
            "grad_norm": records[0]["grad_norm"],
            "grad_norm_per_tensor": {n: float(g.norm()) for n, g in step0["grads"].items()},
        },
        "grads": None if fp8 else "grads.safetensors",
        "losses": [r["loss"] for r in records],
        "grad_norms": [r["grad_norm"] for r in records],
        "steps": records,
        "final": {
            **{k: final[k] for k in ("loss", "loss_main", "loss_mtp", "loss_balance")},
            "e_score_correction_bias": {
                str(layer): model.params[f"model.layers.{layer}.{BIAS_SUFFIX}"].tolist()
                for layer in layers
                if f"model.layers.{layer}.{BIAS_SUFFIX}" in model.params
            },
        },
        "self_check": self_check,
    }
    _write_json(os.path.join(out_dir, "fixture.json"), fixture)
    return fixture


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (config.json + safetensors)")
    parser.add_argument("--out", required=True, help="fixture directory (fixture.json, grads.safetensors)")
    parser.add_argument("--steps", type=int, default=Hyper.steps)
    parser.add_argument("--batch-seed", type=int, default=7, help="numpy seed of the batch tokens")
    parser.add_argument("--precision", choices=sorted(ref.TORCH_DTYPES), default="f64")
    parser.add_argument("--fp8", action="store_true", help="emulate the FP8 recipe in every linear layer")
    parser.add_argument("--skip-checks", action="store_true", help="no finite differences / comparison runs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hp = Hyper(steps=args.steps)
    try:
        fixture = generate(
            args.model, args.out, hp, args.precision, not args.skip_checks, print, args.batch_seed, args.fp8
        )
    except (ConfigError, CheckpointError, OSError, ValueError, RuntimeError) as e:
        print(f"train_ref: {e}", file=sys.stderr)
        return 1
    margin = fixture["self_check"]["router_min_margin"]
    print(json.dumps({"out": args.out, "losses": fixture["losses"], "router_min_margin": margin}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
