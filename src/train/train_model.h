// TrainModel: the DeepSeek-V3 layer stack for training — forward with saved activations, then the
// backward read in reverse, op by op (src/train/ops_*.h), into the gradients of a ParameterSet.
//
// Shapes: a batch is n_seqs rows of seq_len tokens, N = n_seqs * seq_len token rows ordered
// [seq, position]. Every buffer is row-major (last index fastest). The MTP module runs on the
// N' = n_seqs * (seq_len - 1) pairs (i, i + 1) of each row.
//
// Losses (training.md section 1 and the team's conventions):
//   main    = mean CE over positions with target >= 0; with per-position weights w (the batch's
//             or a LogitWeights callback's), Σ_t w_t·CE_t over those positions instead
//   mtp     = lambda · mean CE of the MTP head at position i predicting targets[i + 1], counted
//             where segments[i] == segments[i + 1] and targets[i + 1] >= 0
//   balance = Σ over the main model's MoE layers of BalanceLossForward (alpha inside)
//   total   = main + mtp + balance
// With lambda = 0 the MTP module is skipped (it adds nothing to the loss or the gradients).
// Templated on the scalar type: float trains (F32 master weights); double serves the
// finite-difference test of the whole model.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "kernels/router.h"
#include "model/model.h"
#include "train/data.h"
#include "train/fp8_recipe.h"
#include "train/ops_profile.h"
#include "train/train_config.h"
#include "train/train_parameters.h"
#include "util/thread_pool.h"

namespace whale {

struct LossWeights {
  double mtp_lambda = 0.3;
  double balance_alpha = 1e-4;
  // The main CE reads logits · scale (1 / the sampling temperature in RL, so that log π is the
  // sampled policy's); its gradient carries the factor back. 1 in pretraining.
  double main_logit_scale = 1.0;
};

struct LossParts {
  double total = 0, main = 0, mtp = 0, balance = 0;  // mtp and balance include their weights
  int64_t main_count = 0, mtp_count = 0;             // positions counted by each CE
};

template <typename T>
class TrainModel {
 public:
  // params must outlive the model. precision kFP8 needs T = float.
  TrainModel(ParameterSet<T>& params, ThreadPool* pool, Precision precision = Precision::kF32);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  // Runs the forward over `batch`; with `backward`, adds grad_scale · ∂total/∂θ into every
  // parameter's grad (+=; callers zero them per optimizer step, and accumulation over
  // micro-batches uses grad_scale = 1 / micro-batches). Throws Error on a malformed batch
  // (sizes, token ids outside the vocabulary, targets outside [-1, vocab)).
  LossParts Step(const TokenBatch& batch, const LossWeights& weights, double grad_scale,
                 bool backward);

  // Called between the forward and the backward with the main logits [N, vocab] (times
  // main_logit_scale); fills the
  // per-position loss weights [N] (0 where the target is -1). One forward then serves an objective
  // whose weights depend on the current log-probabilities (GRPO's ratios). Overrides
  // batch.weights.
  using LogitWeights = std::function<void(std::span<const T> logits, std::span<float> weights)>;
  LossParts Step(const TokenBatch& batch, const LossWeights& weights, double grad_scale,
                 bool backward, const LogitWeights& logit_weights);

  // After Step: the main logits [N, vocab] and the MTP logits [N', vocab] (empty when the MTP
  // module was skipped: lambda 0).
  const std::vector<T>& logits() const;
  const std::vector<T>& mtp_logits() const;
  // After Step: tokens routed to each expert, [moe layer][expert], main layers in order, then
  // the MTP layer when it has MoE; and those layers' indices in the checkpoint.
  const std::vector<std::vector<int64_t>>& expert_load() const;
  const std::vector<int64_t>& expert_load_layers() const;

  // Times every later Step's ops into `profile` (see ops_profile.h); nullptr stops timing.
  // profile must outlive its use.
  void set_profile(OpProfile* profile);

 private:
  struct State;
  State* state_;
};

// Positions within their segment (restart at 0 per segment), [n_seqs * seq_len].
std::vector<int32_t> SegmentPositions(const TokenBatch& batch);

}  // namespace whale
