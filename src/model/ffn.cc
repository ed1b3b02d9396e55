// The feed-forward half of a block: dense SwiGLU, and DeepSeekMoE (spec section 5).
#include <algorithm>
#include <cstring>

#include "kernels/activation.h"
#include "kernels/matmul.h"
#include "kernels/router.h"
#include "model/model.h"

namespace whale {

void Model::Mlp(const MlpWeights& w, int64_t inter, int64_t n, std::span<const float> x,
                std::span<float> out, float* gate_scratch, float* up_scratch, ThreadPool* pool) {
  const std::span<float> gate(gate_scratch, n * inter);  // [n, inter]
  const std::span<float> up(up_scratch, n * inter);      // [n, inter]
  MatMul(gate, x, n, w.gate, pool);
  MatMul(up, x, n, w.up, pool);
  SiluMul(gate, gate, up);
  MatMul(out, gate, n, w.down, pool);
}

void Model::Moe(const MoeWeights& w, int64_t n, std::span<const float> x, std::span<float> out) {
  const int64_t d = config_.hidden_size;
  const int64_t experts = config_.n_routed_experts;
  const int64_t k = config_.num_experts_per_tok;

  StageTimer router_time(Stage(&ForwardProfile::router));
  // Route: router logits [n, experts] (F32), then each token's top-k experts and weights.
  const std::span<float> logits(router_logits_, n * experts);
  MatMul(logits, x, n, w.router, &pool_);
  const std::span<const float> bias =
      w.bias ? std::span<const float>(w.bias, experts) : std::span<const float>();
  const std::span<float> scratch(router_scratch_, RouterScratchSize(router_));
  for (int64_t t = 0; t < n; ++t)
    RouteToken(std::span<int32_t>(expert_ids_.data() + t * k, k),
               std::span<float>(expert_weights_.data() + t * k, k),
               logits.subspan(t * experts, experts), bias, router_, scratch);
  router_time.Pause();
  StageTimer experts_time(Stage(&ForwardProfile::experts));

  // Group the (token, slot) pairs by expert, tokens in order within an expert (counting sort),
  // so each expert runs one matrix product over all of its tokens.
  std::fill(expert_count_.begin(), expert_count_.end(), 0);
  for (int64_t i = 0; i < n * k; ++i) ++expert_count_[expert_ids_[i] + 1];
  for (int64_t e = 0; e < experts; ++e) expert_count_[e + 1] += expert_count_[e];
  std::vector<int32_t>& offsets = expert_count_;  // offsets[e] = first slot of expert e
  for (int64_t i = 0; i < n * k; ++i)
    expert_slots_[offsets[expert_ids_[i]]++] = static_cast<int32_t>(i);
  // offsets[e] now ends expert e; shift back to starts.
  for (int64_t e = experts; e > 0; --e) offsets[e] = offsets[e - 1];
  offsets[0] = 0;

  // y = Σ_k w_k · Expert_k(x) over experts in index order (so a token's sum is the same in any
  // batch), then + SharedExpert(x). MatMul's results do not depend on threads, so both paths
  // below give the same bits.
  std::fill(out.begin(), out.end(), 0.0f);
  const int64_t inter = config_.moe_intermediate_size;
  active_experts_.clear();
  for (int64_t e = 0; e < experts; ++e)
    if (offsets[e + 1] > offsets[e]) active_experts_.push_back(static_cast<int32_t>(e));
  routed_experts_read_ += static_cast<int64_t>(active_experts_.size());
  const int64_t n_tasks = static_cast<int64_t>(active_experts_.size()) + (w.shared ? 1 : 0);
  if (n * k <= kExpertParallelSlots && n_tasks >= pool_.size()) {
    // Few tokens (decode): each expert has a token or two, and row-splitting its three small
    // products would cost a fork/join each. One task per expert instead (the shared expert is
    // one more), each on one thread over its grouped slots. Tasks are claimed largest first: the
    // shared expert (every token, n_shared_experts times a routed expert's width), then experts
    // by token count, so the threads finish together. In index order the shared expert came last
    // and ran alone while the other threads waited (V2-Lite int8, 2 threads: decode 16.0 -> 17.4
    // tok/s).
    expert_tasks_.clear();
    if (w.shared) expert_tasks_.push_back(-1);
    expert_tasks_.insert(expert_tasks_.end(), active_experts_.begin(), active_experts_.end());
    std::stable_sort(expert_tasks_.begin() + (w.shared ? 1 : 0), expert_tasks_.end(),
                     [&](int32_t a, int32_t b) {
                       return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
                     });
    for (int64_t p = 0; p < n * k; ++p)
      std::memcpy(slot_in_ + p * d, x.data() + (expert_slots_[p] / k) * d, d * sizeof(float));
    pool_.ParallelFor(static_cast<size_t>(n_tasks), 1, [&](size_t begin, size_t end, int) {
      for (size_t task = begin; task < end; ++task) {
        const int64_t e = expert_tasks_[task];
        if (e < 0) {  // the shared expert, over every token
          Mlp(*w.shared, config_.shared_intermediate_size(), n, x,
              std::span<float>(expert_out_, n * d), gate_, up_, nullptr);
          continue;
        }
        const int64_t first = offsets[e], m = offsets[e + 1] - first;
        Mlp(w.experts[e], inter, m, std::span<const float>(slot_in_ + first * d, m * d),
            std::span<float>(slot_out_ + first * d, m * d), slot_gate_ + first * inter,
            slot_up_ + first * inter, nullptr);
      }
    });
    for (int64_t p = 0; p < n * k; ++p) {
      const int32_t slot = expert_slots_[p];
      const float weight = expert_weights_[slot];
      float* dst = out.data() + (slot / k) * d;
      const float* src = slot_out_ + p * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += weight * src[j];
    }
  } else {
    // Many tokens (prefill): each expert's products are large enough to split by rows.
    for (int64_t e : active_experts_) {
      const int64_t first = offsets[e];
      const int64_t m = offsets[e + 1] - first;
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(expert_in_ + i * d, x.data() + (expert_slots_[first + i] / k) * d,
                    d * sizeof(float));
      Mlp(w.experts[e], inter, m, std::span<const float>(expert_in_, m * d),
          std::span<float>(expert_out_, m * d), gate_, up_, &pool_);
      for (int64_t i = 0; i < m; ++i) {
        const int32_t slot = expert_slots_[first + i];
        const float weight = expert_weights_[slot];
        float* dst = out.data() + (slot / k) * d;
        const float* src = expert_out_ + i * d;
        for (int64_t j = 0; j < d; ++j) dst[j] += weight * src[j];
      }
    }
    if (w.shared)
      Mlp(*w.shared, config_.shared_intermediate_size(), n, x, std::span<float>(expert_out_, n * d),
          gate_, up_, &pool_);
  }
  if (w.shared)
    for (int64_t i = 0; i < n * d; ++i) out[i] += expert_out_[i];
}

}  // namespace whale
