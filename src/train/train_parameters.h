// Trainable parameters: one tensor per Hugging Face name of the checkpoint layout (model/layout.h),
// with its gradient, so that checkpoints, gradients and fixtures share one key space.
//
// The MTP module's stored copies of the embedding and output head (layout `shared_copy`) are not
// parameters of their own: training shares the main model's, and a checkpoint writes them twice.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/layout.h"

namespace whale {

template <typename T>
struct Parameter {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::kLinear;
  std::vector<T> value;  // [numel], row-major
  std::vector<T> grad;   // [numel]; stays zero for the balancing bias
  int64_t numel() const { return static_cast<int64_t>(value.size()); }
  // The balancing bias is updated by the load rule, never by gradient (training.md section 2).
  bool trainable() const { return role != TensorRole::kRouterBias; }
  // Decoupled weight decay applies to matrices only: not to norms, biases or the balancing bias.
  bool decays() const { return shape.size() >= 2; }
};

template <typename T>
class ParameterSet {
 public:
  // Every parameter of `config`'s layout, zero-filled, in layout order.
  explicit ParameterSet(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  std::vector<Parameter<T>>& all() { return params_; }
  const std::vector<Parameter<T>>& all() const { return params_; }
  // Throws Error naming the parameter when absent.
  Parameter<T>& at(const std::string& name);
  const Parameter<T>& at(const std::string& name) const;
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  void ZeroGrad();
  int64_t numel() const;

  // The same values in another scalar type (gradients zeroed).
  template <typename U>
  ParameterSet<U> Cast() const {
    ParameterSet<U> out(config_);
    for (size_t i = 0; i < params_.size(); ++i)
      for (int64_t j = 0; j < params_[i].numel(); ++j)
        out.all()[i].value[j] = static_cast<U>(params_[i].value[j]);
    return out;
  }

 private:
  ModelConfig config_;
  std::vector<Parameter<T>> params_;
  std::map<std::string, size_t> index_;
};

// The name a layout tensor is trained as: the main embedding / head for MTP's shared copies (the
// embedding when word embeddings are tied), else the tensor's own name.
std::string ParameterNameFor(const ModelConfig& config, const TensorSpec& spec);

// Deterministic initialization from (seed, name, index): norms 1, balancing bias 0, embedding
// N-like uniform with unit variance, other matrices uniform with variance 1/fan_in; the output
// projections of each block (o_proj, down_proj) further scaled by 1/sqrt(2 * layers) so the
// residual stream grows slowly with depth.
void InitializeParameters(ParameterSet<float>& params, uint64_t seed);

// Loads every parameter from a checkpoint directory in HF layout (any stored dtype: F32, BF16,
// F16, FP8 with block scales), converted to F32. Throws Error naming the directory and tensor on
// a missing or misshaped tensor.
void LoadParameters(ParameterSet<float>& params, const std::string& model_dir);

}  // namespace whale
