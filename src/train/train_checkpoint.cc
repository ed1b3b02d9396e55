#include "train/train_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/safetensors.h"
#include "model/layout.h"
#include "util/error.h"

namespace whale {
namespace {

namespace fs = std::filesystem;

PendingTensor Pending(const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                      const std::vector<float>* values) {
  return {name, dtype, shape, [values, dtype](std::span<uint8_t> out) {
            ConvertFromF32(dtype, std::span<const float>(*values), out.data());
          }};
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) Fail("cannot write ", path);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open ", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

void SaveModelCheckpoint(const std::string& dir, const ParameterSet<float>& params, DType dtype,
                         const std::string& tokenizer_json) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    Fail("training checkpoints are written as F32 or BF16, not ", Name(dtype));
  fs::create_directories(dir);
  ModelConfig config = params.config();
  config.torch_dtype = dtype == DType::F32 ? "float32" : "bfloat16";
  config.quantization.reset();
  WriteText(dir + "/config.json", ModelConfigToJson(config));
  std::vector<PendingTensor> tensors;
  for (const TensorSpec& spec : CheckpointLayout(config)) {
    const Parameter<float>& p = params.at(ParameterNameFor(config, spec));
    tensors.push_back(Pending(spec.name, spec.shape,
                              spec.role == TensorRole::kRouterBias ? DType::F32 : dtype, &p.value));
  }
  WriteCheckpoint(dir, tensors, uint64_t{4} << 30);
  if (!tokenizer_json.empty()) {
    const fs::path source(tokenizer_json);
    const auto copy = [&](const fs::path& from, const std::string& name) {
      const fs::path to = fs::path(dir) / name;
      if (fs::exists(to) && fs::equivalent(from, to)) return;
      fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    };
    copy(source, "tokenizer.json");
    for (const char* extra : {"tokenizer_config.json", "chat_template.jinja"}) {
      const fs::path beside = source.parent_path() / extra;
      if (fs::exists(beside)) copy(beside, extra);
    }
  }
}

void SaveTrainerState(const std::string& dir, const TrainerState& state, AdamW& optimizer,
                      const ParameterSet<float>& params, bool save_master) {
  fs::create_directories(dir);
  std::vector<PendingTensor> tensors;
  const auto& list = params.all();
  for (size_t i = 0; i < list.size(); ++i) {
    tensors.push_back(Pending("m." + list[i].name, list[i].shape, DType::F32, &optimizer.m(i)));
    tensors.push_back(Pending("v." + list[i].name, list[i].shape, DType::F32, &optimizer.v(i)));
    if (save_master)
      tensors.push_back(
          Pending("master." + list[i].name, list[i].shape, DType::F32, &list[i].value));
  }
  WriteSafetensors(dir + "/optimizer.safetensors", tensors);
  nlohmann::json j = {{"format", "whale-trainer-state"},
                      {"version", 1},
                      {"step", state.step},
                      {"adam_step", optimizer.step()},
                      {"batches_drawn", state.batches_drawn},
                      {"elapsed_s", state.elapsed_s},
                      {"master_weights", save_master},
                      {"config", state.config}};
  WriteText(dir + "/trainer_state.json", j.dump(2) + "\n");
}

TrainerState LoadTrainerState(const std::string& dir, AdamW& optimizer,
                              ParameterSet<float>& params) {
  const std::string path = dir + "/trainer_state.json";
  if (!fs::exists(path)) Fail("--resume: ", path, " not found (no earlier run in this directory)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadText(path));
  } catch (const nlohmann::json::exception& e) {
    Fail(path, ": not valid JSON: ", e.what());
  }
  if (!j.is_object() || j.value("format", "") != "whale-trainer-state" ||
      j.value("version", 0) != 1)
    Fail(path, ": not a whale trainer state (version 1)");
  TrainerState state;
  try {
    state.step = j.at("step").get<int64_t>();
    state.batches_drawn = j.at("batches_drawn").get<int64_t>();
    state.elapsed_s = j.at("elapsed_s").get<double>();
    state.config = j.at("config");
    optimizer.set_step(j.at("adam_step").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    Fail(path, ": ", e.what());
  }
  const bool master = j.value("master_weights", false);
  const std::string opt_path = dir + "/optimizer.safetensors";
  const SafetensorsFile file(opt_path);
  auto& list = params.all();
  const auto read = [&](const std::string& name, const Parameter<float>& p,
                        std::vector<float>& out) {
    const SafetensorsEntry* e = file.Find(name);
    if (e == nullptr || e->dtype != DType::F32 || e->shape != p.shape)
      Fail(opt_path, ": tensor ", name, " is missing or not F32 of the parameter's shape");
    const Tensor t = file.Get(name);
    std::memcpy(out.data(), t.data(), out.size() * sizeof(float));
  };
  for (size_t i = 0; i < list.size(); ++i) {
    read("m." + list[i].name, list[i], optimizer.m(i));
    read("v." + list[i].name, list[i], optimizer.v(i));
    if (master) read("master." + list[i].name, list[i], list[i].value);
  }
  return state;
}

}  // namespace whale
