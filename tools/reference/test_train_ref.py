#!/usr/bin/python3
"""Tests of the training reference:  /usr/bin/python3 tools/reference/test_train_ref.py  (about 30 s)

Each piece is checked against an independent formulation: the FP8 quantizer against a brute-force
nearest-value search over the e4m3 table, AdamW and the clipped training loop against torch.optim.AdamW
and clip_grad_norm_, the balance loss against explicit loops, segment isolation against running the
documents as separate rows, the training forward against deepseek_ref's inference forward, and the
whole-model gradient against central differences.
"""

import os
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import random_checkpoint as rc  # noqa: E402
import train_ref as tr  # noqa: E402
from safetensors_np import E4M3_TABLE  # noqa: E402

_FINITE = np.array(sorted(set(v for v in E4M3_TABLE if np.isfinite(v))))


def brute_e4m3(v):
    """Nearest finite e4m3 value; ties to the one with an even code (even mantissa)."""
    d = np.abs(_FINITE - v)
    best = np.flatnonzero(d == d.min())
    if len(best) == 1:
        return _FINITE[best[0]]
    codes = [int(np.flatnonzero(E4M3_TABLE == _FINITE[b])[0]) for b in best]
    return _FINITE[best[[c % 2 == 0 for c in codes].index(True)]]


def brute_rows(x, tile=128):
    out = np.zeros_like(x)
    for r in range(x.shape[0]):
        for b in range(0, x.shape[1], tile):
            part = x[r, b : b + tile]
            amax = np.abs(part).max()
            if amax == 0:
                continue
            s = amax / 448.0
            out[r, b : b + tile] = [brute_e4m3(v / s) * s for v in part]
    return out


class Fp8(unittest.TestCase):
    def test_rows_match_brute_force_over_odd_widths(self):
        rng = np.random.default_rng(1)
        for width in (1, 31, 127, 128, 129, 200):
            x = rng.standard_normal((3, width)) * np.exp(rng.uniform(-8, 3, (3, width)))
            x[1, :] = 0.0  # an all-zero row stays zero
            got = tr.fp8_rows(torch.from_numpy(x)).numpy()
            np.testing.assert_array_equal(got, brute_rows(x), err_msg=f"width {width}")

    def test_tile_maximum_is_exact_and_relative_error_bounded(self):
        x = torch.randn(5, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        q = tr.fp8_rows(x)
        for b in range(0, 300, 128):
            part, qpart = x[:, b : b + 128], q[:, b : b + 128]
            amax = part.abs().max(dim=1).values
            # The largest entry maps to 448: it comes back as 448 * (amax / 448), amax to the last bit or two.
            self.assertLess(float(((qpart.abs().max(dim=1).values - amax) / amax).abs().max()), 1e-15)
            normal = part.abs() >= amax[:, None] * 2.0**-6 / 448 * 2  # above the subnormal range
            rel = ((qpart - part).abs() / part.abs())[normal]
            self.assertLessEqual(float(rel.max()), 2.0**-4 + 1e-12)  # 3 mantissa bits: half an ulp

    def test_blocks_quantize_each_128x128_block_alone(self):
        w = torch.randn(200, 300, dtype=torch.float64)
        w[:128, 128:256] *= 1000.0  # one loud block must not change its neighbours
        q = tr.fp8_blocks(w)
        for r in (0, 128):
            for c in (0, 128, 256):
                block = w[r : r + 128, c : c + 128]
                flat = block.reshape(1, -1)
                # One block = one tile of all its entries: fp8_rows on the flattened block is the same rule.
                expect = tr.fp8_rows(flat, tile=flat.shape[1]).reshape(block.shape)
                self.assertTrue(torch.equal(q[r : r + 128, c : c + 128], expect), f"block {r},{c}")

    def test_linear_backward_uses_quantized_operands(self):
        x = torch.randn(7, 200, dtype=torch.float64, requires_grad=True)
        w = torch.randn(129, 200, dtype=torch.float64, requires_grad=True)
        g = torch.randn(7, 129, dtype=torch.float64)
        tr.Fp8Linear.apply(x, w).backward(g)
        wq = tr.fp8_blocks(w)
        self.assertTrue(torch.allclose(x.grad, tr.fp8_rows(g) @ wq, rtol=0, atol=1e-12))
        # dW's inner dim is the tokens: both operands in 128x1 tiles along it (here one tile of 7 rows).
        g_cols = torch.stack([tr.fp8_rows(g[:, j : j + 1].T)[0] for j in range(129)], dim=1)
        x_cols = torch.stack([tr.fp8_rows(x.detach()[:, j : j + 1].T)[0] for j in range(200)], dim=1)
        self.assertTrue(torch.allclose(w.grad, g_cols.T @ x_cols, rtol=0, atol=1e-12))
        self.assertFalse(torch.allclose(x.grad, g @ w.detach(), rtol=0, atol=1e-6))  # quantization is visible


class Optimizer(unittest.TestCase):
    def test_adamw_matches_torch(self):
        hp = tr.Hyper()
        torch.manual_seed(0)
        start = {"m.weight": torch.randn(33, 17, dtype=torch.float64), "m.norm": torch.randn(31, dtype=torch.float64)}
        ours = {n: p.clone().requires_grad_(True) for n, p in start.items()}
        theirs = {n: p.clone().requires_grad_(True) for n, p in start.items()}
        opt = tr.AdamW(ours, hp)
        ref = torch.optim.AdamW(
            [
                {"params": [theirs["m.weight"]], "weight_decay": hp.weight_decay},
                {"params": [theirs["m.norm"]], "weight_decay": 0.0},
            ],
            lr=hp.lr,
            betas=(hp.beta1, hp.beta2),
            eps=hp.eps,
        )
        for step in range(5):
            grads = {n: torch.randn_like(p) * (step + 1) for n, p in start.items()}
            opt.step(ours, grads, 0.5)
            for n, p in theirs.items():
                p.grad = grads[n] * 0.5
            ref.step()
        for n in start:
            self.assertLess(float((ours[n] - theirs[n]).abs().max()), 1e-14, n)

    def test_decay_mask(self):
        self.assertTrue(tr.decays("model.layers.1.mlp.gate.weight", torch.zeros(2, 2)))
        self.assertFalse(tr.decays("model.norm.weight", torch.zeros(2)))
        self.assertFalse(tr.decays("model.layers.1.mlp.gate.e_score_correction_bias", torch.zeros(2)))


class Batches(unittest.TestCase):
    def test_segment_spans(self):
        b = tr.Batch([[0] * 6], [[0] * 6], [[0, 0, 1, 1, 1, 2]])
        self.assertEqual(b.segment_spans(0), [(0, 2), (2, 5), (5, 6)])
        bad = tr.Batch([[0] * 4], [[0] * 4], [[0, 1, 0, 0]])
        with self.assertRaisesRegex(ValueError, "not contiguous"):
            bad.segment_spans(0)

    def test_fixed_batch_masks(self):
        b = tr.fixed_batch(512)
        self.assertEqual((b.n_seqs, b.seq_len), (2, 32))
        self.assertEqual(b.targets[0][5], -1)
        self.assertEqual(b.targets[1][13], -1)
        self.assertEqual(b.segment_spans(1), [(0, 14), (14, 32)])


class Model(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "tiny-v3")
        rc.write_checkpoint(cls.dir, "tiny-v3", "f32", 7)
        cls.model = tr.TrainModel(cls.dir)
        cls.hp = tr.Hyper()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_training_forward_equals_inference_reference(self):
        b = tr.fixed_batch(512, n_seqs=2, seq_len=12, split=5)
        self.assertLess(tr.forward_matches_inference(self.dir, self.model, b), 1e-12)

    def test_segments_are_independent_documents(self):
        # One row with documents [0, 6) and [6, 11) gives the same main and MTP sums as two rows
        # holding the documents alone (the balance term differs by design: it is per row).
        rng = np.random.default_rng(3)
        toks = rng.integers(0, 512, 12).tolist()
        inputs, targets = toks[:11], toks[1:12]
        targets_cut = list(targets)
        targets_cut[5] = -1
        joined = tr.Batch([inputs], [targets_cut], [[0] * 6 + [1] * 5])
        split = tr.Batch(
            [inputs[:6] + [0] * 5, inputs[6:] + [0] * 6],
            [targets_cut[:6] + [-1] * 5, targets[6:] + [-1] * 6],
            [[0] * 6 + [1] * 5, [0] * 5 + [1] * 6],
        )
        with torch.no_grad():
            a, _ = tr.batch_losses(self.model, joined, self.hp, [])
            b, _ = tr.batch_losses(self.model, split, self.hp, [])
        self.assertEqual(a["n_main_targets"], b["n_main_targets"])
        self.assertEqual(a["n_mtp_targets"], b["n_mtp_targets"])
        self.assertAlmostEqual(float(a["loss_main"]), float(b["loss_main"]), delta=1e-12)
        self.assertAlmostEqual(float(a["loss_mtp"]), float(b["loss_mtp"]), delta=1e-12)

    def test_gradients_against_finite_differences(self):
        b = tr.fixed_batch(512, n_seqs=2, seq_len=10, split=4)
        parts, _ = tr.batch_losses(self.model, b, self.hp, [])
        grads = tr.gradients(self.model, parts["loss"])
        components = tr.balance_router_grads(self.model, b, self.hp)
        results, worst = tr.finite_difference_checks(self.model, b, self.hp, grads, components)
        # h = 1e-5 in float64: truncation ~h^2 and cancellation ~1e-16/h, both far below 1e-6.
        self.assertLess(worst, 1e-6, [r for r in results if r["rel_err"] >= 1e-6])

    def test_balance_loss_by_explicit_loops(self):
        b = tr.fixed_batch(512, n_seqs=2, seq_len=10, split=4)
        c = self.model.cfg
        E, K, T = c.n_routed_experts, c.num_experts_per_tok, b.seq_len
        with torch.no_grad():
            parts, _ = tr.batch_losses(self.model, b, self.hp, [])
            _, _, _, routing = self.model.batch_forward(b, [])
        total = 0.0
        for r in routing:
            if r["layer"] >= c.num_hidden_layers:
                continue
            for row in range(b.n_seqs):
                for i in range(E):
                    count = sum(i in r["experts"][row * T + t] for t in range(T))
                    p = sum(float(r["scores"][row * T + t, i] / r["scores"][row * T + t].sum()) for t in range(T)) / T
                    total += (E / (K * T)) * count * p / b.n_seqs
        self.assertAlmostEqual(float(parts["loss_balance"]), self.hp.alpha_balance * total, delta=1e-15)

    def test_training_loop_matches_torch_optimizer(self):
        # train(): 3 steps of clip + AdamW + bias update, against torch.nn.utils.clip_grad_norm_ and
        # torch.optim.AdamW driving the same model (every trainable parameter given a gradient).
        b = tr.fixed_batch(512, n_seqs=1, seq_len=8)
        hp = tr.Hyper(steps=3, clip_norm=0.5)
        ours = tr.TrainModel(self.dir)
        records, _ = tr.train(ours, b, hp)
        theirs = tr.TrainModel(self.dir)
        trainable = {n: p for n, p in theirs.params.items() if p.requires_grad}
        decay = [p for n, p in trainable.items() if tr.decays(n, p)]
        rest = [p for n, p in trainable.items() if not tr.decays(n, p)]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=hp.lr,
            betas=(hp.beta1, hp.beta2),
            eps=hp.eps,
        )
        for step in range(hp.steps):
            parts, load = tr.batch_losses(theirs, b, hp, [])
            opt.zero_grad(set_to_none=False)
            for p in trainable.values():
                p.grad = torch.zeros_like(p)
            parts["loss"].backward()
            norm = float(torch.nn.utils.clip_grad_norm_(list(trainable.values()), hp.clip_norm))
            self.assertAlmostEqual(norm, records[step]["grad_norm"], delta=1e-12 * norm)
            opt.step()
            tr.update_biases(theirs, load, hp)
        for n, p in ours.params.items():
            self.assertLess(float((p - theirs.params[n]).abs().max()), 1e-12, n)

    def test_bias_update_moves_toward_the_mean_load(self):
        model = tr.TrainModel(self.dir)
        name = "model.layers.1.mlp.gate.e_score_correction_bias"
        before = model.params[name].clone()
        counts = [0] * 16
        counts[2], counts[5] = 10, 2  # mean 0.75: expert 2 and 5 overloaded, the rest underloaded
        tr.update_biases(model, {1: counts}, self.hp)
        delta = (model.params[name] - before) / self.hp.gamma_bias
        expect = torch.ones(16, dtype=torch.float64)
        expect[2] = expect[5] = -1
        self.assertLess(float((delta - expect).abs().max()), 1e-9)


if __name__ == "__main__":
    unittest.main()
