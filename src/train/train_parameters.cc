#include "train/train_parameters.h"

#include <cmath>

#include "io/safetensors.h"
#include "kernels/matmul.h"
#include "model/weights.h"
#include "util/error.h"
#include "util/split_mix.h"

namespace whale {

std::string ParameterNameFor(const ModelConfig& config, const TensorSpec& spec) {
  if (!spec.shared_copy) return spec.name;
  if (spec.role == TensorRole::kOutputHead && !config.tie_word_embeddings) return "lm_head.weight";
  return "model.embed_tokens.weight";
}

template <typename T>
ParameterSet<T>::ParameterSet(const ModelConfig& config) : config_(config) {
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    if (spec.shared_copy) continue;
    Parameter<T> p;
    p.name = spec.name;
    p.shape = spec.shape;
    p.role = spec.role;
    p.value.assign(spec.numel(), T(0));
    p.grad.assign(spec.numel(), T(0));
    index_[p.name] = params_.size();
    params_.push_back(std::move(p));
  }
}

template <typename T>
Parameter<T>& ParameterSet<T>::at(const std::string& name) {
  const auto it = index_.find(name);
  if (it == index_.end()) Fail("no parameter named ", name);
  return params_[it->second];
}

template <typename T>
const Parameter<T>& ParameterSet<T>::at(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) Fail("no parameter named ", name);
  return params_[it->second];
}

template <typename T>
void ParameterSet<T>::ZeroGrad() {
  for (auto& p : params_) std::fill(p.grad.begin(), p.grad.end(), T(0));
}

template <typename T>
int64_t ParameterSet<T>::numel() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.numel();
  return n;
}

template class ParameterSet<float>;
template class ParameterSet<double>;

namespace {

uint64_t NameStream(const std::string& name, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ULL ^ SplitMix64(seed ^ 0x7472'6169'6E00ULL);
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001B3ULL;
  return SplitMix64(h);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void InitializeParameters(ParameterSet<float>& params, uint64_t seed) {
  const ModelConfig& c = params.config();
  const double depth_scale = 1.0 / std::sqrt(2.0 * static_cast<double>(c.num_stored_layers()));
  for (Parameter<float>& p : params.all()) {
    double std_dev = 0;
    switch (p.role) {
      case TensorRole::kNorm:
        std::fill(p.value.begin(), p.value.end(), 1.0f);
        continue;
      case TensorRole::kRouterBias:
        std::fill(p.value.begin(), p.value.end(), 0.0f);
        continue;
      case TensorRole::kEmbedding:
        std_dev = 1.0;
        break;
      default:
        std_dev = 1.0 / std::sqrt(static_cast<double>(p.shape.back()));
        if (EndsWith(p.name, "o_proj.weight") || EndsWith(p.name, "down_proj.weight"))
          std_dev *= depth_scale;
        break;
    }
    // Uniform with the given standard deviation: half-width std * sqrt(3).
    const double half_width = std_dev * std::sqrt(3.0);
    const uint64_t stream = NameStream(p.name, seed);
    for (int64_t i = 0; i < p.numel(); ++i) {
      const double u =
          static_cast<double>(SplitMix64(stream + static_cast<uint64_t>(i)) >> 11) * 0x1.0p-53;
      p.value[i] = static_cast<float>(half_width * (2.0 * u - 1.0));
    }
  }
}

void LoadParameters(ParameterSet<float>& params, const std::string& model_dir) {
  const Checkpoint checkpoint = Checkpoint::Open(model_dir);
  ValidateCheckpoint(params.config(), checkpoint);
  for (Parameter<float>& p : params.all()) {
    const Tensor t = checkpoint.Get(p.name);
    const SafetensorsEntry& entry = checkpoint.Entry(p.name);
    if (entry.shape != p.shape)
      Fail(model_dir, ": tensor ", p.name, " has shape ", t.ShapeString(), "; expected ",
           p.shape.size(), "-d of ", p.numel(), " elements");
    if (entry.dtype == DType::F8_E4M3) {
      const std::string scale = ScaleName(p.name);
      WeightMatrix w{entry.dtype, t.data(), p.shape[0], p.shape[1],
                     checkpoint.Get(scale).data_as<float>()};
      DequantizeRows(std::span<float>(p.value), w, 0, p.shape[0]);
    } else {
      ConvertToF32(entry.dtype, t.data(), std::span<float>(p.value));
    }
  }
}

}  // namespace whale
