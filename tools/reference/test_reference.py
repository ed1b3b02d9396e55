#!/usr/bin/python3
"""Tests of the reference itself:  /usr/bin/python3 tools/reference/test_reference.py

Each piece is checked against an independent formulation (a format table, a brute force, complex
arithmetic, the spec's own worked numbers) so the fixtures do not rest on the reference alone.
"""

import itertools
import json
import math
import os
import struct
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402
import quant_check  # noqa: E402
import random_checkpoint as rc  # noqa: E402
from ds_config import ConfigError, load_config, parse_config  # noqa: E402
from safetensors_np import (  # noqa: E402
    E4M3_TABLE,
    Checkpoint,
    CheckpointError,
    decode_bf16,
    decode_e4m3,
    encode_bf16,
    encode_e4m3,
    quantize_fp8,
)

F64_TIGHT = 1e-11  # float64 reorderings of O(1) logits over a few hundred terms stay far below this


class Codecs(unittest.TestCase):
    def test_e4m3_table_known_values(self):
        known = {0x00: 0.0, 0x01: 2.0**-9, 0x07: 7 / 8 * 2.0**-6, 0x08: 2.0**-6, 0x38: 1.0, 0x40: 2.0, 0x7E: 448.0,
                 0x80: -0.0, 0xB8: -1.0, 0xFE: -448.0, 0x3C: 1.5, 0x5F: 15 / 8 * 2.0**4}  # fmt: skip
        for code, value in known.items():
            self.assertEqual(E4M3_TABLE[code], value, hex(code))
        self.assertTrue(math.isnan(E4M3_TABLE[0x7F]) and math.isnan(E4M3_TABLE[0xFF]))
        self.assertEqual(int(np.isnan(E4M3_TABLE).sum()), 2)
        positive = E4M3_TABLE[:0x7F]
        self.assertTrue((np.diff(positive) > 0).all())

    def test_e4m3_encode_is_nearest_ties_to_even(self):
        finite = [c for c in range(256) if not math.isnan(E4M3_TABLE[c]) and c != 0x80]
        np.testing.assert_array_equal(encode_e4m3(E4M3_TABLE[finite]), finite)
        self.assertEqual(encode_e4m3([1.0625])[0], 0x38)  # midway 1.0 | 1.125 -> even code (1.0)
        self.assertEqual(encode_e4m3([1.1875])[0], 0x3A)  # midway 1.125 | 1.25 -> 1.25
        self.assertEqual(encode_e4m3([2.0**-10])[0], 0x00)  # midway 0 | smallest subnormal -> 0
        self.assertEqual(encode_e4m3([3 * 2.0**-10])[0], 0x02)
        self.assertEqual(encode_e4m3([460.0, 470.0, -1e6]).tolist(), [0x7E, 0x7E, 0xFE])  # saturate
        rng = np.random.default_rng(1)
        x = rng.standard_normal(20000) * np.exp(rng.uniform(-9, 6, 20000))
        got = decode_e4m3(encode_e4m3(x))
        finite_values = E4M3_TABLE[finite]
        best = np.abs(finite_values[None, :] - np.clip(x, -448, 448)[:, None]).min(axis=1)
        np.testing.assert_array_equal(np.abs(got - np.clip(x, -448, 448)), best)

    def test_bf16_matches_torch_rounding(self):
        rng = np.random.default_rng(2)
        x = (rng.standard_normal(10000) * np.exp(rng.uniform(-20, 20, 10000))).astype(np.float32)
        theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        np.testing.assert_array_equal(encode_bf16(x), theirs)
        np.testing.assert_array_equal(decode_bf16(theirs), torch.from_numpy(theirs.view(np.int16)).view(torch.bfloat16).float().numpy())

    def test_fp8_block_quantization(self):
        rng = np.random.default_rng(3)
        w = rng.standard_normal((200, 333)).astype(np.float32)
        codes, scale = quantize_fp8(w)
        self.assertEqual(scale.shape, (2, 3))  # ceil(200/128), ceil(333/128)
        self.assertEqual(float(scale[1, 2]), float(np.float32(np.abs(w[128:, 256:]).max() / np.float32(448))))
        deq = decode_e4m3(codes) * np.repeat(np.repeat(scale.astype(np.float64), 128, 0), 128, 1)[:200, :333]
        rel = np.abs(deq - w) / np.abs(w)
        self.assertLessEqual(rel[np.abs(w) > 0.1].max(), 2.0**-4)  # e4m3 has 3 mantissa bits


class Files(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_sharded_equals_single(self):
        rc.write_checkpoint(os.path.join(self.dir, "one"), "tiny-v3", "fp8", 7, shards=1)
        rc.write_checkpoint(os.path.join(self.dir, "four"), "tiny-v3", "fp8", 7, shards=4)
        one, four = Checkpoint(os.path.join(self.dir, "one")), Checkpoint(os.path.join(self.dir, "four"))
        self.assertEqual(one.names(), four.names())
        self.assertEqual(len(four.files), 4)
        for name in ("lm_head.weight", "model.layers.2.mlp.experts.7.down_proj.weight"):
            np.testing.assert_array_equal(one.load(name), four.load(name))

    def test_truncated_and_mismatched_files_are_clear_errors(self):
        path = os.path.join(self.dir, "m")
        rc.write_checkpoint(path, "tiny-v2", "f32", 7)
        st = os.path.join(path, "model.safetensors")
        with open(st, "r+b") as f:
            f.truncate(os.path.getsize(st) - 100)
        with self.assertRaisesRegex(CheckpointError, "truncated"):
            Checkpoint(path)
        rc.write_checkpoint(path, "tiny-v2", "f32", 7)
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        cfg["kv_lora_rank"] = 65
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f)
        with self.assertRaisesRegex(CheckpointError, r"kv_a_proj_with_mqa.weight has shape \[80, 160\], expected \[81, 160\]"):
            ref.Model(path)
        cfg["topk_method"] = "best"
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f)
        with self.assertRaisesRegex(ConfigError, "topk_method is 'best'"):
            load_config(os.path.join(path, "config.json"))

    def test_header_length_past_end(self):
        st = os.path.join(self.dir, "bad.safetensors")
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", 1000) + b"{}")
        from safetensors_np import SafetensorsFile

        with self.assertRaisesRegex(CheckpointError, "header length 1000 exceeds"):
            SafetensorsFile(st)

    def test_quant_check_accepts_own_roundings_and_rejects_others(self):
        for kind in ("f32", "bf16", "fp8"):
            rc.write_checkpoint(os.path.join(self.dir, kind), "tiny-v3", kind, 7)
        for kind in ("bf16", "fp8"):
            failures, stats = quant_check.check(os.path.join(self.dir, "f32"), os.path.join(self.dir, kind), kind)
            self.assertEqual(failures, [], kind)
        self.assertLessEqual(stats["max_error_over_half_spacing"], 1.0)
        rc.write_checkpoint(os.path.join(self.dir, "other"), "tiny-v3", "fp8", 8)
        failures, _ = quant_check.check(os.path.join(self.dir, "f32"), os.path.join(self.dir, "other"), "fp8")
        self.assertTrue(failures)


def config(preset="tiny-v3", **over):
    fields = dict(rc.PRESETS[preset])
    fields.update(over)
    return parse_config(fields, f"{preset} + {sorted(over)}")


def yarn(factor, mscale_all_dim):
    return {"type": "yarn", "factor": factor, "original_max_position_embeddings": 4096, "beta_fast": 32,
            "beta_slow": 1, "mscale": mscale_all_dim, "mscale_all_dim": mscale_all_dim}  # fmt: skip


class RopeAndScale(unittest.TestCase):
    def v3_like(self, **over):
        fields = dict(qk_rope_head_dim=64, qk_nope_head_dim=128, rope_scaling=yarn(40, 1.0))
        fields.update(over)
        return config(**fields)

    def test_yarn_frequencies_match_spec_table(self):
        omega = ref.rope_inverse_frequencies(self.v3_like(), torch.float64).numpy()
        spec = {0: 1.0, 1: 0.7498942, 8: 0.1000000015, 10: 0.05623413, 11: 0.03900693, 12: 0.02687936,
                16: 0.0055, 20: 0.0007905694, 22: 0.0001778279, 23: 3.333804e-05, 31: 3.333804e-06}  # fmt: skip
        for i, value in spec.items():
            # The spec prints 7 significant digits: half a unit in the last one is <= 5e-7 relative.
            self.assertAlmostEqual(omega[i] / value, 1.0, delta=5e-7, msg=f"i={i}")

    def test_softmax_scale_matches_spec(self):
        self.assertAlmostEqual(self.v3_like().softmax_scale, 0.1352337789, delta=1e-10)
        v2 = self.v3_like(rope_scaling=yarn(40, 0.707))
        self.assertAlmostEqual(v2.softmax_scale, 0.1147213868, delta=1e-10)
        self.assertAlmostEqual(self.v3_like(rope_scaling=None).softmax_scale, 192**-0.5, delta=1e-15)

    def test_rope_is_complex_rotation_of_interleaved_pairs(self):
        rng = np.random.default_rng(4)
        x = rng.standard_normal((3, 5, 16))
        omega = rng.uniform(0, 1, 8)
        positions = np.array([0, 1, 7, 100, 255])
        got = ref.apply_rope(torch.from_numpy(x), torch.from_numpy(positions), torch.from_numpy(omega)).numpy()
        z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * positions[:, None] * omega[None, :])
        np.testing.assert_allclose(got[..., 0::2], z.real, atol=1e-14)
        np.testing.assert_allclose(got[..., 1::2], z.imag, atol=1e-14)


def brute_force_route(scores, bias, cfg):
    """Routing by enumeration: a chosen set is one where every member beats every non-member under
    (value descending, index ascending). Independent of route()'s sort-based code."""

    def beats(a, b, values):
        return values[a] > values[b] or (values[a] == values[b] and a < b)

    def best_subset(values, k):
        for subset in itertools.combinations(range(len(values)), k):
            rest = [j for j in range(len(values)) if j not in subset]
            if all(beats(i, j, values) for i in subset for j in rest):
                return set(subset)
        raise AssertionError("no subset")

    E, per = len(scores), len(scores) // cfg.n_group
    sel = [s + (bias[i] if bias is not None else 0.0) for i, s in enumerate(scores)]
    allowed = set(range(E))
    if cfg.topk_method != "greedy" and cfg.topk_group < cfg.n_group:
        gs = []
        for g in range(cfg.n_group):
            members = sel[g * per : (g + 1) * per]
            if cfg.topk_method == "noaux_tc":
                gs.append(max(a + b for a, b in itertools.combinations(members, 2)))
            else:
                gs.append(max(members))
        groups = best_subset(gs, cfg.topk_group)
        allowed = {i for i in range(E) if i // per in groups}
    masked = [v if i in allowed else -math.inf for i, v in enumerate(sel)]
    chosen = best_subset(masked, cfg.num_experts_per_tok)
    weights = {i: scores[i] for i in chosen}
    if cfg.norm_topk_prob:
        total = sum(weights.values())
        weights = {i: w / total for i, w in weights.items()}
    return {i: w * cfg.routed_scaling_factor for i, w in weights.items()}


class Router(unittest.TestCase):
    def check(self, cfg, with_bias, trials=300):
        rng = np.random.default_rng(5)
        for _ in range(trials):
            # Coarse values force ties inside groups, between groups and across the k-th boundary.
            scores = rng.integers(0, 6, cfg.n_routed_experts) / 8.0
            bias = rng.integers(-6, 3, cfg.n_routed_experts) / 8.0 if with_bias else None
            experts, weights, _ = ref.route(
                torch.tensor(scores), torch.tensor(bias) if bias is not None else None, cfg
            )
            want = brute_force_route(list(scores), list(bias) if bias is not None else None, cfg)
            self.assertEqual(set(experts), set(want))
            for e, w in zip(experts, weights.tolist()):
                self.assertAlmostEqual(w, want[e], delta=1e-15)

    def test_noaux_tc_with_ties_and_negative_bias(self):
        cfg = config(n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
                                 topk_method="noaux_tc", norm_topk_prob=True, routed_scaling_factor=2.5)  # fmt: skip
        self.check(cfg, with_bias=True)

    def test_group_limited_greedy_and_greedy(self):
        cfg = config(n_routed_experts=8, num_experts_per_tok=3, n_group=4, topk_group=2,
                                 topk_method="group_limited_greedy", norm_topk_prob=False, routed_scaling_factor=1.5)  # fmt: skip
        self.check(cfg, with_bias=False)
        cfg = config(n_routed_experts=10, num_experts_per_tok=3, n_group=1, topk_group=1,
                                 topk_method="greedy", norm_topk_prob=True, routed_scaling_factor=1.0)  # fmt: skip
        self.check(cfg, with_bias=False)

    def test_excluded_groups_are_minus_infinity(self):
        # Kept groups hold only negative biased scores; an excluded group's expert must still lose.
        cfg = config(n_routed_experts=8, num_experts_per_tok=2, n_group=4, topk_group=1,
                                 topk_method="noaux_tc", norm_topk_prob=True, routed_scaling_factor=1.0)  # fmt: skip
        scores = torch.tensor([0.1, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
        bias = torch.tensor([-0.5, -0.5, -0.9, -0.9, -0.9, -0.9, -0.9, -0.9], dtype=torch.float64)
        experts, weights, _ = ref.route(scores, bias, cfg)
        self.assertEqual(experts, [0, 1])
        self.assertEqual(weights.tolist(), [0.5, 0.5])


class Forward(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.models = {}
        for preset, dtype in (("tiny-v3", "f32"), ("tiny-v3", "bf16"), ("tiny-v3", "fp8"), ("tiny-v2", "f32")):
            path = os.path.join(cls.tmp.name, f"{preset}-{dtype}")
            rc.write_checkpoint(path, preset, dtype, 7)
            cls.models[(preset, dtype)] = ref.Model(path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    tokens = [0, 511, 17, 256, 3, 498, 100, 1, 510]

    def test_absorbed_equals_naive(self):
        for key, model in self.models.items():
            naive, naive_mtp = model.forward(self.tokens, "naive")
            absorbed, absorbed_mtp = model.forward(self.tokens, "absorbed")
            self.assertLess(float((naive - absorbed).abs().max()), F64_TIGHT, key)
            if naive_mtp is not None:
                self.assertLess(float((naive_mtp - absorbed_mtp).abs().max()), F64_TIGHT, key)

    def test_causal_prefixes(self):
        # Each prefix run alone reproduces the rows of the full run: the mask and positions are right.
        for key, model in self.models.items():
            full, full_mtp = model.forward(self.tokens)
            for n in (1, 2, 5):
                part, part_mtp = model.forward(self.tokens[:n])
                self.assertLess(float((part - full[:n]).abs().max()), F64_TIGHT, key)
                if part_mtp is not None:
                    self.assertEqual(part_mtp.shape[0], n - 1)
                    self.assertLess(float((part_mtp - full_mtp[: n - 1]).abs().max()), F64_TIGHT, key)

    def test_mtp_shapes_and_presence(self):
        logits, mtp = self.models[("tiny-v3", "f32")].forward(self.tokens)
        self.assertEqual(tuple(logits.shape), (9, 512))
        self.assertEqual(tuple(mtp.shape), (8, 512))
        self.assertIsNone(self.models[("tiny-v2", "f32")].forward(self.tokens)[1])

    def test_mtp_uses_next_token_and_current_hidden(self):
        # Draft row i depends on t_{i+1} and the prefix; changing the last token changes only the last draft row.
        model = self.models[("tiny-v3", "f32")]
        _, a = model.forward(self.tokens)
        _, b = model.forward(self.tokens[:-1] + [5])
        self.assertLess(float((a[:-1] - b[:-1]).abs().max()), F64_TIGHT)
        self.assertGreater(float((a[-1] - b[-1]).abs().max()), 1e-3)

    def test_attention_matches_per_head_loops(self):
        # The spec's per-token pseudo-code (4.3) with explicit head slices of the weight rows and complex RoPE.
        rng = np.random.default_rng(6)
        for key in (("tiny-v3", "fp8"), ("tiny-v2", "f32")):
            model = self.models[key]
            c, w = model.cfg, {k: v.numpy() if torch.is_tensor(v) else v for k, v in model.layers[1].items()}
            L, H, dn, dr, dv, r = 6, c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
            x = rng.standard_normal((L, c.hidden_size))
            omega = ref.rope_inverse_frequencies(c, torch.float64).numpy()

            def rms(v, weight):
                return v / math.sqrt(float(np.mean(v * v)) + c.rms_norm_eps) * weight

            def rope(v, p):
                z = (v[0::2] + 1j * v[1::2]) * np.exp(1j * p * omega)
                out = np.empty_like(v)
                out[0::2], out[1::2] = z.real, z.imag
                return out

            latent, k_pe, queries = [], [], []
            for t in range(L):
                q = w["q_b"] @ rms(w["q_a"] @ x[t], w["q_a_norm"]) if c.q_lora_rank else w["q"] @ x[t]
                queries.append(q)
                kv = w["kv_a"] @ x[t]
                latent.append(rms(kv[:r], w["kv_a_norm"]))
                k_pe.append(rope(kv[r:], t))
            want = np.empty((L, c.hidden_size))
            for t in range(L):
                heads = []
                for h in range(H):
                    qh = queries[t][h * (dn + dr) : (h + 1) * (dn + dr)]
                    kb = w["kv_b"][h * (dn + dv) : (h + 1) * (dn + dv)]
                    scores = np.array([c.softmax_scale * (qh[:dn] @ (kb[:dn] @ latent[s]) + rope(qh[dn:], t) @ k_pe[s])
                                       for s in range(t + 1)])  # fmt: skip
                    p = np.exp(scores - scores.max())
                    p /= p.sum()
                    heads.append(sum(p[s] * (kb[dn:] @ latent[s]) for s in range(t + 1)))
                want[t] = w["o"] @ np.concatenate(heads)
            for form in ("naive", "absorbed"):
                got = model.attention(model.layers[1], torch.from_numpy(x), torch.arange(L), form, None, "")
                np.testing.assert_allclose(got.numpy(), want, atol=1e-12, err_msg=f"{key} {form}")

    def test_moe_matches_brute_force(self):
        rng = np.random.default_rng(7)
        for key in (("tiny-v3", "fp8"), ("tiny-v2", "f32")):
            model = self.models[key]
            c, w = model.cfg, model.layers[2]
            x = rng.standard_normal((5, c.hidden_size))
            got = model.moe(w, torch.from_numpy(x), None, "", [])

            def mlp(v, weights):
                gate, up, down = (m.numpy() for m in weights)
                g = gate @ v
                return down @ (g / (1 + np.exp(-g)) * (up @ v))

            for t in range(5):
                logits = w["router"].numpy() @ x[t]
                if c.scoring_func == "sigmoid":
                    scores = 1 / (1 + np.exp(-logits))
                else:
                    scores = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
                bias = w["router_bias"].numpy() if "router_bias" in w else None
                routed = brute_force_route(list(scores), None if bias is None else list(bias), c)
                want = mlp(x[t], w["shared"]) + sum(weight * mlp(x[t], w["experts"][e]) for e, weight in routed.items())
                np.testing.assert_allclose(got[t].numpy(), want, atol=1e-12, err_msg=str(key))

    def test_mtp_input_formula(self):
        model = self.models[("tiny-v3", "bf16")]
        trace = {}
        logits, _ = model.forward(self.tokens, trace=trace)
        m, eps = model.mtp, model.cfg.rms_norm_eps
        # h_i is the state the main head reads, i.e. after model.norm (spec 6).
        self.assertLess(float((trace["final_norm"] @ model.lm_head.T - logits).abs().max()), F64_TIGHT)
        for i in (0, 4):
            e = m["embed"][self.tokens[i + 1]]
            joined = torch.cat((ref.rms_norm(e, m["enorm"], eps), ref.rms_norm(trace["final_norm"][i], m["hnorm"], eps)))
            self.assertLess(float((m["eh_proj"] @ joined - trace["mtp_input"][i]).abs().max()), F64_TIGHT)

    def test_quantized_models_track_f32(self):
        f32, _ = self.models[("tiny-v3", "f32")].forward(self.tokens)
        for dtype, bound in (("bf16", 0.1), ("fp8", 0.5)):
            other, _ = self.models[("tiny-v3", dtype)].forward(self.tokens)
            rel = float((other - f32).norm() / f32.norm())
            self.assertLess(rel, bound, dtype)  # rounding noise, not a different model
            self.assertGreater(rel, 0.0, dtype)

    def test_bad_token(self):
        with self.assertRaisesRegex(ValueError, "token 512 at index 1 is outside the vocabulary"):
            self.models[("tiny-v2", "f32")].forward([3, 512])

    def test_fixture_files(self):
        path = os.path.join(self.tmp.name, "tiny-v3-f32")
        out = os.path.join(self.tmp.name, "fixture")
        fixture = ref.generate_fixture(path, [[1, 2, 3], [511, 0, 4, 5, 6]], out)
        self.assertEqual(fixture["logits"], ["logits_0.f32", "logits_1.f32"])
        self.assertEqual(fixture["mtp_logits"], ["mtp_logits_0.f32", "mtp_logits_1.f32"])
        data = np.fromfile(os.path.join(out, "mtp_logits_1.f32"), dtype="<f4").reshape(4, 512)
        _, mtp = self.models[("tiny-v3", "f32")].forward([511, 0, 4, 5, 6])
        np.testing.assert_array_equal(data, mtp.to(torch.float32).numpy())
        self.assertLess(fixture["self_check"]["absorbed_vs_naive_max_abs"], F64_TIGHT)


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main()
