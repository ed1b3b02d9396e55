// Encode throughput of whale's tokenizer on one thread (Google Benchmark).
//
//   tokenizer_bench --tokenizer FILE.json --text FILE [--check-ids IDS.json] [--benchmark_* flags]
//
// --check-ids compares the ids of the whole text with a JSON array (hf_bench.js writes Hugging
// Face's ids for the same text).
// Prints the first (cold-cache) encode of the whole text, then the steady-state rate that Google
// Benchmark measures (bytes_per_second). bench/tokenizer/run.sh runs it next to the same
// measurement of Hugging Face's Rust library (hf_bench.js) on the same text.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

const whale::Tokenizer* g_tokenizer = nullptr;
std::string g_text;

void BM_EncodeWholeText(benchmark::State& state) {
  size_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = g_tokenizer->Encode(g_text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_EncodeWholeText)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Line by line, as a server sees many short requests.
void BM_EncodeLines(benchmark::State& state) {
  std::vector<std::string_view> lines;
  std::string_view rest = g_text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    size_t len = nl == std::string_view::npos ? rest.size() : nl + 1;
    lines.push_back(rest.substr(0, len));
    rest.remove_prefix(len);
  }
  for (auto _ : state) {
    for (std::string_view line : lines) {
      std::vector<int32_t> ids = g_tokenizer->Encode(line, false);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_text.size()));
}
BENCHMARK(BM_EncodeLines)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_Decode(benchmark::State& state) {
  std::vector<int32_t> ids = g_tokenizer->Encode(g_text, false);
  for (auto _ : state) {
    std::string text = g_tokenizer->Decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_text.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

}  // namespace

static int Main(int argc, char** argv) {
  std::string tokenizer_path, text_path, check_ids_path;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
      tokenizer_path = argv[++i];
    } else if (std::strcmp(argv[i], "--text") == 0 && i + 1 < argc) {
      text_path = argv[++i];
    } else if (std::strcmp(argv[i], "--check-ids") == 0 && i + 1 < argc) {
      check_ids_path = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (tokenizer_path.empty() || text_path.empty()) {
    std::fprintf(stderr, "usage: %s --tokenizer FILE.json --text FILE [--benchmark_* flags]\n",
                 argv[0]);
    return 2;
  }
  try {
    auto load_start = std::chrono::steady_clock::now();
    static whale::Tokenizer tokenizer = whale::Tokenizer::FromFile(tokenizer_path);
    double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    g_tokenizer = &tokenizer;
    g_text = whale::ReadTextFile(text_path);
    auto start = std::chrono::steady_clock::now();
    std::vector<int32_t> ids = tokenizer.Encode(g_text, false);
    double cold_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("whale: load %.3f s; first encode of %zu bytes: %zu tokens in %.3f s = %.2f MB/s\n",
                load_s, g_text.size(), ids.size(), cold_s, g_text.size() / 1e6 / cold_s);
    if (!check_ids_path.empty()) {
      auto expected =
          nlohmann::json::parse(whale::ReadTextFile(check_ids_path)).get<std::vector<int32_t>>();
      size_t first_diff = 0;
      while (first_diff < ids.size() && first_diff < expected.size() &&
             ids[first_diff] == expected[first_diff]) {
        ++first_diff;
      }
      bool same = ids == expected;
      std::printf("whale: ids %s Hugging Face's (%zu vs %zu tokens%s)\n",
                  same ? "identical to" : "DIFFER from", ids.size(), expected.size(),
                  same ? "" : whale::Cat(", first difference at token ", first_diff).c_str());
      if (!same) return 1;
    }
  } catch (const whale::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  int bench_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&bench_argc, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
}
