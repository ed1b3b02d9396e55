// whale tokenize: text -> token ids (a JSON array), or with --decode ids -> text, using a
// checkpoint's tokenizer.json (and its tokenizer_config.json BOS rule with --model).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

struct TokenizeFlags {
  std::string model;
  std::string tokenizer;
  std::string text;
  std::string file;
  bool no_special = false;
  bool decode = false;
  bool skip_special = false;
};

// Ids for --decode: a JSON array, or integers separated by spaces or commas.
std::vector<int32_t> ParseIds(const std::string& input) {
  std::string trimmed = input;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.pop_back();
  size_t start = trimmed.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && trimmed[start] == '[') {
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(trimmed);
    } catch (const nlohmann::json::exception& e) {
      whale::Fail("--decode: the ids are not a valid JSON array: ", e.what());
    }
    std::vector<int32_t> ids;
    for (const auto& v : json) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
        whale::Fail("--decode: expected token ids (non-negative integers), found ", v.dump());
      }
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  }
  std::vector<int32_t> ids;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(token, &used);
    } catch (const std::exception&) {
    }
    if (used != token.size() || v < 0 || v > INT32_MAX) {
      whale::Fail("--decode: expected token ids (non-negative integers), found \"", token, "\"");
    }
    ids.push_back(static_cast<int32_t>(v));
    token.clear();
  };
  for (char c : trimmed) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',') {
      flush();
    } else {
      token += c;
    }
  }
  flush();
  return ids;
}

std::function<int()> Setup(CLI::App& sub) {
  auto flags = std::make_shared<TokenizeFlags>();
  auto* model = sub.add_option("--model", flags->model,
                               "model directory (tokenizer.json + tokenizer_config.json)");
  auto* tokenizer = sub.add_option("--tokenizer", flags->tokenizer, "a tokenizer.json file");
  model->excludes(tokenizer);
  auto* text = sub.add_option("--text", flags->text, "the text (or, with --decode, the ids)");
  auto* file = sub.add_option("--file", flags->file, "read the text (or ids) from this file");
  text->excludes(file);
  sub.add_flag("--no-special", flags->no_special,
               "do not add the special tokens of the post-processor (BOS/EOS)");
  sub.add_flag("--decode", flags->decode,
               "decode ids (a JSON array or integers separated by spaces/commas) to text");
  sub.add_flag("--skip-special", flags->skip_special, "with --decode: drop special tokens");
  return [flags, text, file] {
    if (flags->model.empty() == flags->tokenizer.empty()) {
      whale::Fail("whale tokenize: give exactly one of --model DIR or --tokenizer FILE");
    }
    if (text->count() == 0 && file->count() == 0) {
      whale::Fail("whale tokenize: give the input with --text or --file");
    }
    whale::Tokenizer t = flags->model.empty() ? whale::Tokenizer::FromFile(flags->tokenizer)
                                              : whale::Tokenizer::FromModelDir(flags->model);
    std::string input = file->count() ? whale::ReadTextFile(flags->file) : flags->text;
    if (flags->decode) {
      std::string decoded = t.Decode(ParseIds(input), flags->skip_special);
      std::fwrite(decoded.data(), 1, decoded.size(), stdout);
      std::fputc('\n', stdout);
      return 0;
    }
    std::vector<int32_t> ids = t.Encode(input, !flags->no_special);
    std::string out = nlohmann::json(ids).dump();
    std::printf("%s\n", out.c_str());
    return 0;
  };
}

}  // namespace

WHALE_COMMAND(tokenize, "text to token ids with a checkpoint's tokenizer (or --decode ids to text)",
              Setup);
