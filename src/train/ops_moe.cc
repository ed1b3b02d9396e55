#include "train/ops_moe.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/activation.h"
#include "train/ops_check.h"

namespace whale {
namespace {

// scores[E] = sigmoid or softmax of logits[E] in T (double: the formulas; float: the kernels).
template <typename T>
void Score(T* scores, const T* logits, int64_t n_experts, RouterScoring scoring) {
  if constexpr (std::is_same_v<T, float>) {
    std::span<float> out(scores, static_cast<size_t>(n_experts));
    if (scoring == RouterScoring::kSigmoid) {
      Sigmoid(out, std::span<const float>(logits, static_cast<size_t>(n_experts)));
    } else {
      std::copy_n(logits, n_experts, scores);
      Softmax(out);
    }
  } else {
    if (scoring == RouterScoring::kSigmoid) {
      for (int64_t i = 0; i < n_experts; ++i) scores[i] = 1 / (1 + std::exp(-logits[i]));
    } else {
      const T max = *std::max_element(logits, logits + n_experts);
      T sum = 0;
      for (int64_t i = 0; i < n_experts; ++i) sum += scores[i] = std::exp(logits[i] - max);
      for (int64_t i = 0; i < n_experts; ++i) scores[i] /= sum;
    }
  }
}

void CheckBalanceArgs(std::string_view op, int64_t n_seqs, int64_t seq_len, int64_t n_experts,
                      int64_t top_k) {
  CheckNonNegative(op, "n_seqs", n_seqs);
  CheckNonNegative(op, "seq_len", seq_len);
  if (n_experts < 1 || top_k < 1 || top_k > n_experts)
    Fail(op, ": n_experts = ", n_experts, ", top_k = ", top_k,
         "; expected 1 <= top_k <= n_experts");
}

// counts[E] = how often each expert is selected in sequence `seq`.
void CountSelections(std::vector<int64_t>& counts, std::span<const int32_t> expert_ids, int64_t seq,
                     int64_t seq_len, int64_t n_experts, int64_t top_k) {
  counts.assign(static_cast<size_t>(n_experts), 0);
  for (int64_t i = seq * seq_len * top_k; i < (seq + 1) * seq_len * top_k; ++i) {
    const int32_t e = expert_ids[i];
    if (e < 0 || e >= n_experts)
      Fail("balance loss: expert id ", e, " at ", i, " is outside [0, ", n_experts, ")");
    ++counts[e];
  }
}

}  // namespace

template <typename T>
void RouterForward(std::span<int32_t> expert_ids, std::span<T> weights, std::span<T> scores,
                   std::span<const T> logits, std::span<const float> bias, const RouterParams& p,
                   int64_t n) {
  ValidateRouterParams(p);
  CheckNonNegative("RouterForward", "n", n);
  const int64_t e = p.n_experts, k = p.top_k;
  CheckSpan("RouterForward", "expert_ids", expert_ids, n * k);
  CheckSpan("RouterForward", "weights", weights, n * k);
  CheckSpan("RouterForward", "scores", scores, n * e);
  CheckSpan("RouterForward", "logits", logits, n * e);
  std::vector<float> scratch(static_cast<size_t>(RouterScratchSize(p)));
  std::vector<float> logits32(static_cast<size_t>(e)), weights32(static_cast<size_t>(k));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < e; ++i) logits32[i] = static_cast<float>(logits[t * e + i]);
    std::span<int32_t> ids = expert_ids.subspan(t * k, k);
    RouteToken(ids, weights32, logits32, bias, p, scratch);
    T* s = scores.data() + t * e;
    Score<T>(s, logits.data() + t * e, e, p.scoring);
    T* w = weights.data() + t * k;
    if constexpr (std::is_same_v<T, float>) {
      std::copy(weights32.begin(), weights32.end(), w);
    } else {
      T sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += w[j] = s[ids[j]];
      for (int64_t j = 0; j < k; ++j) {
        if (p.norm_topk_prob) w[j] /= sum;
        w[j] *= static_cast<T>(p.routed_scaling_factor);
      }
    }
  }
}

template <typename T>
void RouterBackward(std::span<T> dlogits, std::span<const T> dweights, std::span<const T> dscores,
                    std::span<const T> scores, std::span<const int32_t> expert_ids,
                    const RouterParams& p, int64_t n) {
  ValidateRouterParams(p);
  CheckNonNegative("RouterBackward", "n", n);
  const int64_t e = p.n_experts, k = p.top_k;
  CheckSpan("RouterBackward", "dlogits", dlogits, n * e);
  CheckSpan("RouterBackward", "dweights", dweights, n * k);
  CheckOptionalSpan("RouterBackward", "dscores", dscores, n * e);
  CheckSpan("RouterBackward", "scores", scores, n * e);
  CheckSpan("RouterBackward", "expert_ids", expert_ids, n * k);
  const T scaling = static_cast<T>(p.routed_scaling_factor);
  for (int64_t t = 0; t < n; ++t) {
    const T* s = scores.data() + t * e;
    const T* dw = dweights.data() + t * k;
    const int32_t* ids = expert_ids.data() + t * k;
    T* ds = dlogits.data() + t * e;  // ∂L/∂s first, then turned into ∂L/∂logits in place
    if (dscores.empty())
      std::fill(ds, ds + e, T{0});
    else
      std::copy_n(dscores.data() + t * e, e, ds);
    for (int64_t j = 0; j < k; ++j)
      if (ids[j] < 0 || ids[j] >= e)
        Fail("RouterBackward: expert id ", ids[j], " at row ", t, " is outside [0, ", e, ")");
    if (p.norm_topk_prob) {
      // w_j = c·s_j / S with S = Σ_selected s: ∂L/∂s_j = c·(dw_j − Σ_i dw_i·s_i / S) / S.
      T sum = 0, weighted = 0;
      for (int64_t j = 0; j < k; ++j) {
        sum += s[ids[j]];
        weighted += dw[j] * s[ids[j]];
      }
      for (int64_t j = 0; j < k; ++j) ds[ids[j]] += scaling * (dw[j] - weighted / sum) / sum;
    } else {
      for (int64_t j = 0; j < k; ++j) ds[ids[j]] += scaling * dw[j];
    }
    if (p.scoring == RouterScoring::kSigmoid) {
      for (int64_t i = 0; i < e; ++i) ds[i] *= s[i] * (1 - s[i]);
    } else {
      T dot = 0;
      for (int64_t i = 0; i < e; ++i) dot += s[i] * ds[i];
      for (int64_t i = 0; i < e; ++i) ds[i] = s[i] * (ds[i] - dot);
    }
  }
}

template <typename T>
T BalanceLossForward(std::span<const T> scores, std::span<const int32_t> expert_ids, int64_t n_seqs,
                     int64_t seq_len, int64_t n_experts, int64_t top_k, double alpha) {
  CheckBalanceArgs("BalanceLossForward", n_seqs, seq_len, n_experts, top_k);
  CheckSpan("BalanceLossForward", "scores", scores, n_seqs * seq_len * n_experts);
  CheckSpan("BalanceLossForward", "expert_ids", expert_ids, n_seqs * seq_len * top_k);
  if (n_seqs == 0 || seq_len == 0) return T{0};
  std::vector<int64_t> counts;
  std::vector<double> mean_share(static_cast<size_t>(n_experts));  // P_i
  double total = 0;
  for (int64_t seq = 0; seq < n_seqs; ++seq) {
    CountSelections(counts, expert_ids, seq, seq_len, n_experts, top_k);
    std::fill(mean_share.begin(), mean_share.end(), 0.0);
    for (int64_t t = seq * seq_len; t < (seq + 1) * seq_len; ++t) {
      const T* s = scores.data() + t * n_experts;
      double sum = 0;
      for (int64_t i = 0; i < n_experts; ++i) sum += s[i];
      for (int64_t i = 0; i < n_experts; ++i) mean_share[i] += s[i] / sum;
    }
    const double f_scale = static_cast<double>(n_experts) / static_cast<double>(top_k * seq_len);
    double loss = 0;
    for (int64_t i = 0; i < n_experts; ++i)
      loss +=
          f_scale * static_cast<double>(counts[i]) * mean_share[i] / static_cast<double>(seq_len);
    total += alpha * loss;
  }
  return static_cast<T>(total / static_cast<double>(n_seqs));
}

template <typename T>
void BalanceLossBackward(std::span<T> dscores, T dloss, std::span<const T> scores,
                         std::span<const int32_t> expert_ids, int64_t n_seqs, int64_t seq_len,
                         int64_t n_experts, int64_t top_k, double alpha) {
  CheckBalanceArgs("BalanceLossBackward", n_seqs, seq_len, n_experts, top_k);
  CheckSpan("BalanceLossBackward", "dscores", dscores, n_seqs * seq_len * n_experts);
  CheckSpan("BalanceLossBackward", "scores", scores, n_seqs * seq_len * n_experts);
  CheckSpan("BalanceLossBackward", "expert_ids", expert_ids, n_seqs * seq_len * top_k);
  std::vector<int64_t> counts;
  std::vector<T> g(static_cast<size_t>(n_experts));  // ∂L/∂s'_{i,t}, the same for every t
  for (int64_t seq = 0; seq < n_seqs; ++seq) {
    CountSelections(counts, expert_ids, seq, seq_len, n_experts, top_k);
    // L = (1/n_seqs)·Σ_seq α·Σ_i f_i·(1/T)·Σ_t s'_{i,t}.
    const double f_scale = static_cast<double>(n_experts) / static_cast<double>(top_k * seq_len);
    for (int64_t i = 0; i < n_experts; ++i)
      g[i] = static_cast<T>(static_cast<double>(dloss) * alpha * f_scale *
                            static_cast<double>(counts[i]) /
                            (static_cast<double>(seq_len) * static_cast<double>(n_seqs)));
    for (int64_t t = seq * seq_len; t < (seq + 1) * seq_len; ++t) {
      const T* s = scores.data() + t * n_experts;
      T* ds = dscores.data() + t * n_experts;
      T sum = 0;
      for (int64_t i = 0; i < n_experts; ++i) sum += s[i];
      // s'_i = s_i / S: ∂L/∂s_j = (g_j − Σ_i g_i·s'_i) / S.
      T weighted = 0;
      for (int64_t i = 0; i < n_experts; ++i) weighted += g[i] * s[i] / sum;
      for (int64_t j = 0; j < n_experts; ++j) ds[j] += (g[j] - weighted) / sum;
    }
  }
}

#define WHALE_INSTANTIATE_MOE(T)                                                                   \
  template void RouterForward<T>(std::span<int32_t>, std::span<T>, std::span<T>,                   \
                                 std::span<const T>, std::span<const float>, const RouterParams&,  \
                                 int64_t);                                                         \
  template void RouterBackward<T>(std::span<T>, std::span<const T>, std::span<const T>,            \
                                  std::span<const T>, std::span<const int32_t>,                    \
                                  const RouterParams&, int64_t);                                   \
  template T BalanceLossForward<T>(std::span<const T>, std::span<const int32_t>, int64_t, int64_t, \
                                   int64_t, int64_t, double);                                      \
  template void BalanceLossBackward<T>(std::span<T>, T, std::span<const T>,                        \
                                       std::span<const int32_t>, int64_t, int64_t, int64_t,        \
                                       int64_t, double);
WHALE_INSTANTIATE_MOE(float)
WHALE_INSTANTIATE_MOE(double)
#undef WHALE_INSTANTIATE_MOE

}  // namespace whale
