// whale quantize: rewrite a checkpoint with int8 or int4 block-quantized linear weights.
#include <cstdio>
#include <memory>

#include "command.h"
#include "kernels/quant.h"
#include "model/quantize.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace {

struct Options {
  std::string model, type, out;
  int threads = 2;
};

std::function<int()> Setup(CLI::App& sub) {
  auto o = std::make_shared<Options>();
  sub.add_option("--model", o->model, "input model directory (F32, BF16 or FP8 safetensors)")
      ->required();
  sub.add_option("--type", o->type, "int8 (groups of 32, F16 scale) or int4")
      ->required()
      ->check(CLI::IsMember({"int8", "int4"}));
  sub.add_option("--out", o->out, "output directory")->required();
  sub.add_option("--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
  return [o] {
    const whale::QuantFormat format =
        o->type == "int8" ? whale::QuantFormat::kInt8 : whale::QuantFormat::kInt4;
    whale::ThreadPool pool(o->threads);
    whale::QuantizeCheckpoint(o->model, o->out, format, pool, /*show_progress=*/true);
    std::printf("wrote %s (%s)\n", o->out.c_str(), whale::QuantFormatName(format));
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(quantize, "rewrite a checkpoint with int8 / int4 block-quantized linear weights",
              Setup);
