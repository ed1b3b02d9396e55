#include "tokenizer/post_processor.h"

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include "tokenizer/json_fields.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

// Special ids before and after the sequence; covers TemplateProcessing's single template (whose
// pieces are special tokens and one $A) as well as Bert/Roberta processing.
class WrapProcessor : public PostProcessor {
 public:
  WrapProcessor(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void Process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens || (prefix_.empty() && suffix_.empty())) return;
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void Process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->Process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

class NoOpProcessor : public PostProcessor {
 public:
  void Process(std::vector<int32_t>&, bool) const override {}
};

struct TemplatePiece {
  bool is_sequence;
  std::string id;  // "A"/"B" for sequences, the special token name otherwise
};

// A template piece from its JSON object form or its string shorthand ("$A", "$B:1", "[CLS]:0").
TemplatePiece ParseTemplatePiece(const Json& piece, const std::string& where) {
  if (piece.is_string()) {
    std::string text = piece.get<std::string>();
    size_t colon = text.rfind(':');
    if (colon != std::string::npos && colon + 1 < text.size() &&
        text.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      text = text.substr(0, colon);
    }
    if (text.starts_with('$')) {
      std::string rest = text.substr(1);
      if (rest.empty() || rest == "A" || rest == "a" ||
          std::isdigit(static_cast<unsigned char>(rest[0]))) {
        return {true, "A"};
      }
      if (rest == "B" || rest == "b") return {true, "B"};
      Fail(where, ": invalid sequence reference \"", text, "\" (expected $A or $B)");
    }
    return {false, text};
  }
  if (jf::Has(piece, "Sequence")) {
    return {true, jf::String(jf::Require(piece, "Sequence", where), "id", where + ".Sequence")};
  }
  if (jf::Has(piece, "SpecialToken")) {
    return {false,
            jf::String(jf::Require(piece, "SpecialToken", where), "id", where + ".SpecialToken")};
  }
  jf::WrongType(where, piece, "{\"Sequence\": ...} or {\"SpecialToken\": ...}");
}

std::unique_ptr<PostProcessor> TemplateFromJson(const Json& config, const std::string& where) {
  std::map<std::string, std::vector<int32_t>> special_ids;
  if (jf::Has(config, "special_tokens")) {
    const Json& specials = config.at("special_tokens");
    if (!specials.is_object()) jf::WrongType(where + ".special_tokens", specials, "an object");
    for (auto it = specials.begin(); it != specials.end(); ++it) {
      std::string token_where = Cat(where, ".special_tokens[\"", it.key(), "\"]");
      const Json& ids = jf::Require(it.value(), "ids", token_where);
      if (!ids.is_array()) jf::WrongType(token_where + ".ids", ids, "an array of ids");
      std::vector<int32_t> list;
      for (size_t i = 0; i < ids.size(); ++i) {
        list.push_back(jf::TokenIdValue(ids[i], Cat(token_where, ".ids[", i, "]")));
      }
      std::string name = jf::StringOr(it.value(), "id", it.key(), token_where);
      special_ids[name] = std::move(list);
    }
  }
  std::string single_where = where + ".single";
  const Json& single = jf::Require(config, "single", where);
  std::vector<TemplatePiece> pieces;
  if (single.is_string()) {
    std::string text = single.get<std::string>();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start = text.find_first_not_of(' ', pos);
      if (start == std::string::npos) break;
      size_t end = text.find(' ', start);
      if (end == std::string::npos) end = text.size();
      pieces.push_back(ParseTemplatePiece(Json(text.substr(start, end - start)), single_where));
      pos = end;
    }
  } else if (single.is_array()) {
    for (size_t i = 0; i < single.size(); ++i) {
      pieces.push_back(ParseTemplatePiece(single[i], Cat(single_where, "[", i, "]")));
    }
  } else {
    jf::WrongType(single_where, single, "a template string or array");
  }
  std::vector<int32_t> prefix, suffix;
  int sequences = 0;
  for (const TemplatePiece& piece : pieces) {
    if (piece.is_sequence) {
      if (piece.id != "A") Fail(single_where, ": the single template may only use $A");
      if (++sequences > 1) Fail(single_where, ": $A appears more than once");
      continue;
    }
    auto it = special_ids.find(piece.id);
    if (it == special_ids.end()) {
      Fail(single_where, ": special token \"", piece.id, "\" is missing from special_tokens");
    }
    auto& target = sequences == 0 ? prefix : suffix;
    target.insert(target.end(), it->second.begin(), it->second.end());
  }
  if (sequences == 0) Fail(single_where, ": template has no $A");
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}

// Bert/Roberta processing: {"cls": [token, id], "sep": [token, id]}.
int32_t PairId(const Json& config, const char* key, const std::string& where) {
  const Json& pair = jf::Require(config, key, where);
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
    jf::WrongType(Cat(where, ".", key), pair, "[token, id]");
  }
  return jf::TokenIdValue(pair[1], Cat(where, ".", key, "[1]"));
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::FromJson(const Json& config,
                                                       const std::string& where) {
  jf::NestingGuard guard(where);
  if (config.is_null()) return nullptr;
  std::string type = jf::String(config, "type", where);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();  // offsets only
  if (type == "TemplateProcessing") return TemplateFromJson(config, where);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    return std::make_unique<WrapProcessor>(std::vector<int32_t>{PairId(config, "cls", where)},
                                           std::vector<int32_t>{PairId(config, "sep", where)});
  }
  if (type == "Sequence") {
    const Json& list = jf::Require(config, "processors", where);
    if (!list.is_array()) jf::WrongType(where + ".processors", list, "an array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = FromJson(list[i], Cat(where, ".processors[", i, "]"));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  Fail(where, ".type: unsupported post_processor type '", type,
       "' (supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)");
}

std::unique_ptr<PostProcessor> PostProcessor::Wrap(std::vector<int32_t> prefix,
                                                   std::vector<int32_t> suffix) {
  return std::make_unique<WrapProcessor>(std::move(prefix), std::move(suffix));
}

}  // namespace whale
