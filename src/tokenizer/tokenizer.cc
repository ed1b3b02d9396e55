#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

namespace jf = json_fields;
using Json = nlohmann::json;

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedVocabulary added;
  TokenizerConfig config;

  void EncodeSegment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const;
  // The string an id decodes from, or nullptr for unknown ids.
  const std::string* IdString(int32_t id) const {
    if (const std::string* s = added.IdToString(id)) return s;
    return model->IdToToken(id);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::FromJsonText(std::string_view json_text, const std::string& source,
                                  TokenizerConfig config) {
  Json json;
  try {
    json = Json::parse(json_text);
  } catch (const Json::exception& e) {
    Fail(source, ": not valid JSON: ", e.what());
  }
  if (!json.is_object()) jf::WrongType(source, json, "a JSON object");
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  auto field = [&](const char* name) -> const Json& {
    static const Json null_json;
    auto it = json.find(name);
    return it == json.end() ? null_json : *it;
  };
  std::string where = source + ":";
  impl->normalizer = Normalizer::FromJson(field("normalizer"), Cat(where, " normalizer"));
  impl->pre_tokenizer =
      PreTokenizer::FromJson(field("pre_tokenizer"), Cat(where, " pre_tokenizer"));
  impl->model =
      std::make_unique<BpeModel>(jf::Require(json, "model", source), Cat(where, " model"));
  impl->post_processor =
      PostProcessor::FromJson(field("post_processor"), Cat(where, " post_processor"));
  impl->decoder = Decoder::FromJson(field("decoder"), Cat(where, " decoder"));
  impl->added = AddedVocabulary(field("added_tokens"), *impl->model, impl->normalizer.get(),
                                Cat(where, " added_tokens"));
  impl->config = std::move(config);

  // transformers (LlamaTokenizerFast in v4, TokenizersBackend in v5 when the flags are explicit)
  // replaces the post-processor by `[bos] $A [eos]`.
  const TokenizerConfig& c = impl->config;
  if (c.add_bos_token || c.add_eos_token) {
    std::vector<int32_t> prefix, suffix;
    auto add = [&](const char* name, std::vector<int32_t>& target) {
      auto content = c.SpecialToken(name);
      if (!content) return;  // no such token: the flag has no effect (transformers v5)
      auto id = impl->added.TokenToId(*content);
      if (!id) id = impl->model->TokenToId(*content);
      if (!id) {
        Fail(c.source.empty() ? "tokenizer_config.json" : c.source, ": ", name, " \"", *content,
             "\" is not a token of ", source);
      }
      target.push_back(*id);
    };
    if (c.add_bos_token.value_or(false)) add("bos_token", prefix);
    if (c.add_eos_token.value_or(false)) add("eos_token", suffix);
    impl->post_processor = PostProcessor::Wrap(std::move(prefix), std::move(suffix));
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::FromFile(const std::string& path) {
  MappedFile file(path);
  auto bytes = file.bytes();
  return FromJsonText(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                      path);
}

Tokenizer Tokenizer::FromModelDir(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path path = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(path)) Fail(dir, ": no tokenizer.json in the model directory");
  TokenizerConfig config = TokenizerConfig::FromModelDir(dir);
  MappedFile file(path.string());
  auto bytes = file.bytes();
  return FromJsonText(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                      path.string(), std::move(config));
}

void Tokenizer::Impl::EncodeSegment(std::string_view text, bool at_start,
                                    std::vector<int32_t>& ids) const {
  if (text.empty()) return;  // empty pieces vanish before pre-tokenization
  thread_local PieceArena arena;
  thread_local std::vector<Piece> pieces;
  arena.Clear();
  pieces.clear();
  pieces.push_back({text, false, at_start});
  if (pre_tokenizer) pre_tokenizer->Apply(pieces, arena);
  for (const Piece& piece : pieces) model->Tokenize(piece.text, piece.raw_bytes, ids);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  size_t bad = utf8::FindInvalid(text);
  if (bad != utf8::kValid) {
    Fail("cannot tokenize: the text is not valid UTF-8 (byte 0x", std::hex,
         static_cast<int>(static_cast<uint8_t>(text[bad])), std::dec, " at offset ", bad, ")");
  }
  const Impl& impl = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  std::vector<AddedVocabulary::Segment> raw_segments, normalized_segments;
  impl.added.Split(text, /*normalized_pass=*/false, raw_segments);
  std::string normalized;
  for (const auto& segment : raw_segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    std::string_view piece = text.substr(segment.begin, segment.end - segment.begin);
    if (impl.normalizer) {
      normalized.assign(piece);
      impl.normalizer->Normalize(normalized);
      piece = normalized;
    }
    impl.added.Split(piece, /*normalized_pass=*/true, normalized_segments);
    for (const auto& sub : normalized_segments) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
        continue;
      }
      impl.EncodeSegment(piece.substr(sub.begin, sub.end - sub.begin),
                         segment.begin == 0 && sub.begin == 0, ids);
    }
  }
  if (impl.post_processor) impl.post_processor->Process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* token = impl.IdString(id);
    if (!token) continue;
    if (skip_special_tokens && impl.added.IsSpecial(*token)) continue;
    tokens.push_back(*token);
  }
  if (!impl.decoder) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  impl.decoder->DecodeChain(tokens);
  std::string out;
  for (const std::string& token : tokens) out += token;
  return out;
}

int32_t Tokenizer::vocab_size() const {
  return impl_->added.id_end();
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  if (auto id = impl_->added.TokenToId(token)) return id;
  return impl_->model->TokenToId(token);
}

std::optional<std::string> Tokenizer::TokenString(int32_t id) const {
  if (const std::string* s = impl_->IdString(id)) return *s;
  return std::nullopt;
}

bool Tokenizer::IsSpecialToken(int32_t id) const {
  const std::string* s = impl_->IdString(id);
  return s && impl_->added.IsSpecial(*s);
}

const TokenizerConfig& Tokenizer::config() const {
  return impl_->config;
}

std::optional<int32_t> Tokenizer::bos_id() const {
  auto token = bos_token();
  return token ? TokenId(*token) : std::nullopt;
}

std::optional<int32_t> Tokenizer::eos_id() const {
  auto token = eos_token();
  return token ? TokenId(*token) : std::nullopt;
}

bool Tokenizer::has_byte_level_decoder() const {
  return impl_->decoder && impl_->decoder->IsByteLevel();
}

void Tokenizer::AppendTokenBytes(int32_t id, bool skip_special_tokens, std::string& out) const {
  WHALE_ASSERT(has_byte_level_decoder(), "AppendTokenBytes needs a ByteLevel decoder");
  const std::string* token = impl_->IdString(id);
  if (!token || (skip_special_tokens && impl_->added.IsSpecial(*token))) return;
  AppendByteLevelTokenBytes(out, *token);
}

}  // namespace whale
