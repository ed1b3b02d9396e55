// Hostile input never crashes: malformed tokenizer.json files get errors naming the field, invalid
// UTF-8 is rejected, random bytes, random ids, mutated tokenizer files and mutated templates end
// in a result or a whale::Error. (Run under ASan/UBSan in the sanitizer build.)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "fixture_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace whale {
namespace {

using testing::TokenizerData;

// A small but complete byte-level tokenizer.json (vocabulary: the bytes of "hello world" and three
// merges), used as the base for malformed variants.
nlohmann::json SmallTokenizer() {
  return nlohmann::json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 12, "content": "<s>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+|\\w+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [12], "tokens": ["<s>"]}}},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
      "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "he": 8, "ll": 9,
                "hell": 10, "hello": 11},
      "merges": ["h e", "l l", "he ll", "hell o"]}})");
}

std::string ErrorOf(const nlohmann::json& json) {
  try {
    Tokenizer::FromJsonText(json.dump(), "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Robustness, SmallTokenizerWorks) {
  Tokenizer t = Tokenizer::FromJsonText(SmallTokenizer().dump(), "small.json");
  EXPECT_EQ(t.Encode("hello world"), (std::vector<int32_t>{12, 11, 4, 5, 3, 6, 2, 7}));
  EXPECT_EQ(t.Decode(t.Encode("hello world"), true), "hello world");
}

TEST(Robustness, MalformedTokenizerJsonNamesTheProblem) {
  struct Case {
    std::function<void(nlohmann::json&)> mutate;
    std::vector<std::string> expected;  // substrings of the error
  };
  std::vector<Case> cases = {
      {[](auto& j) { j = nlohmann::json::array(); }, {"bad.json", "JSON object"}},
      {[](auto& j) { j.erase("model"); }, {"model", "missing"}},
      {[](auto& j) { j["model"]["type"] = "Unigram"; }, {"unsupported model type 'Unigram'"}},
      {[](auto& j) { j["model"]["vocab"] = nlohmann::json::array(); }, {"model.vocab", "object"}},
      {[](auto& j) { j["model"]["vocab"]["x"] = -3; }, {"vocab[\"x\"]", "-3"}},
      {[](auto& j) { j["model"]["vocab"]["x"] = "7"; }, {"vocab[\"x\"]", "token id"}},
      {[](auto& j) { j["model"]["merges"].push_back("q z"); },
       {"merges[4]", "\"q\"", "not in the vocabulary"}},
      {[](auto& j) { j["model"]["merges"].push_back("h e l"); }, {"merges[4]", "two tokens"}},
      {[](auto& j) { j["model"]["merges"].push_back("o w"); },
       {"merges[4]", "\"ow\"", "not in the vocabulary"}},
      {[](auto& j) { j["model"]["merges"].push_back(5); }, {"merges[4]"}},
      {[](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Foo"; },
       {"pre_tokenizer.pretokenizers[0]", "unsupported pre_tokenizer type 'Foo'"}},
      {[](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(ab"; },
       {"pretokenizers[0].pattern.Regex", "invalid regex", "(ab"}},
      {[](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "[a-z&&[^b]]"; },
       {"unsupported"}},
      {[](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Weird"; },
       {"behavior", "'Weird'"}},
      {[](auto& j) {
         j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Other", "x"}};
       },
       {"pattern", "String"}},
      {[](auto& j) { j["normalizer"]["type"] = "Precompiled"; }, {"normalizer", "'Precompiled'"}},
      {[](auto& j) { j["decoder"]["type"] = "CTC"; }, {"decoder", "'CTC'"}},
      {[](auto& j) { j["post_processor"]["type"] = "Mystery"; }, {"post_processor", "'Mystery'"}},
      {[](auto& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<t>"; },
       {"post_processor.single", "\"<t>\"", "special_tokens"}},
      {[](auto& j) { j["added_tokens"] = 3; }, {"added_tokens", "array"}},
      {[](auto& j) { j["added_tokens"][0].erase("content"); },
       {"added_tokens[0].content", "missing"}},
      {[](auto& j) { j["added_tokens"][0]["special"] = "yes"; },
       {"added_tokens[0].special", "true or false"}},
      {[](auto& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
       },
       {"replacement", "one character"}},
      {[](auto& j) {
         std::string nested = "{\"type\": \"NFC\"}";
         for (int i = 0; i < 200; ++i) {
           nested.insert(0, "{\"type\": \"Sequence\", \"normalizers\": [");
           nested += "]}";
         }
         j["normalizer"] = nlohmann::json::parse(nested);
       },
       {"nested"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    nlohmann::json json = SmallTokenizer();
    cases[i].mutate(json);
    std::string error = ErrorOf(json);
    ASSERT_FALSE(error.empty()) << "case " << i << " loaded";
    for (const auto& part : cases[i].expected) {
      EXPECT_NE(error.find(part), std::string::npos) << "case " << i << ": " << error;
    }
  }
  EXPECT_THROW(Tokenizer::FromJsonText("{\"model\": ", "cut.json"), Error);
  EXPECT_THROW(Tokenizer::FromFile(TokenizerData("no/such/tokenizer.json")), Error);
  std::string truncated = ReadTextFile(TokenizerData("qwen2-style/tokenizer.json"));
  truncated.resize(truncated.size() / 2);
  EXPECT_THROW(Tokenizer::FromJsonText(truncated, "truncated.json"), Error);
}

TEST(Robustness, RandomBytesAreEncodedOrRejected) {
  Tokenizer t = Tokenizer::FromFile(TokenizerData("deepseek-v3/tokenizer.json"));
  std::mt19937 rng(7);
  for (int i = 0; i < 400; ++i) {
    std::string s;
    size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) {
      // Mostly bytes that form (or break) multi-byte sequences.
      uint32_t r = rng() % 10;
      s += static_cast<char>(r < 3   ? rng() % 0x80
                             : r < 8 ? 0x80 + rng() % 0x80
                                     : "<｜User｜>"[rng() % 12]);
    }
    bool valid = utf8::FindInvalid(s) == utf8::kValid;
    if (valid) {
      EXPECT_EQ(t.Decode(t.Encode(s)), s);
    } else {
      EXPECT_THROW(t.Encode(s), Error);
    }
  }
}

TEST(Robustness, RandomIdsDecodeAndStream) {
  Tokenizer t = Tokenizer::FromFile(TokenizerData("deepseek-v3/tokenizer.json"));
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    std::vector<int32_t> ids;
    for (size_t k = rng() % 20; k > 0; --k) ids.push_back(static_cast<int32_t>(rng() % 130000));
    std::string text = t.Decode(ids);
    EXPECT_EQ(utf8::FindInvalid(text), utf8::kValid);
    StreamDecoder stream(t);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.Next(id);
    streamed += stream.Finish();
    EXPECT_EQ(streamed, text);
  }
  EXPECT_EQ(t.Decode(std::vector<int32_t>{-1, 1 << 30}), "");
}

TEST(Robustness, MutatedTokenizerJsonLoadsOrFails) {
  std::string base = SmallTokenizer().dump();
  std::mt19937 rng(3);
  int loaded = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string s = base;
    for (int m = 0; m < 1 + static_cast<int>(rng() % 3); ++m) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          s.erase(at, 1 + rng() % 8);
          break;
        case 2:
          s.insert(at, 1, "{}[]\",:0\\"[rng() % 9]);
          break;
        default:
          s.insert(at, s.substr(rng() % s.size(), rng() % 16));
          break;
      }
    }
    try {
      Tokenizer t = Tokenizer::FromJsonText(s, "mutated.json");
      ++loaded;
      for (const char* text : {"hello world", "", "héllo  wörld\n\t😀"}) {
        std::vector<int32_t> ids = t.Encode(text);
        t.Decode(ids);
      }
    } catch (const Error&) {
    }
  }
  EXPECT_GT(loaded, 0);
}

TEST(Robustness, MutatedTemplatesRenderOrFail) {
  std::vector<std::string> sources = {
      testing::LoadJson(TokenizerData("deepseek-v3/tokenizer_config.json"))["chat_template"],
      ReadTextFile(TokenizerData("chat/qwen-style.jinja")),
      ReadTextFile(TokenizerData("chat/llama3-style.jinja"))};
  auto messages = testing::LoadOrderedJson(
      TokenizerData("chat/fixtures.json"))["conversations"]["tool_round_trip"];
  std::mt19937 rng(5);
  int rendered = 0;
  for (int i = 0; i < 600; ++i) {
    std::string s = sources[i % sources.size()];
    for (int m = 0; m < 1 + static_cast<int>(rng() % 3); ++m) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[at] = "{}%#-+()[]|.'\"~ \n"[rng() % 17];
          break;
        case 1:
          s.erase(at, 1 + rng() % 12);
          break;
        case 2:
          s.insert(at, 1, "{}%#-+()[]|.'\""[rng() % 14]);
          break;
        default:
          s.insert(at, s.substr(rng() % s.size(), rng() % 40));
          break;
      }
    }
    try {
      ChatTemplate t = ChatTemplate::FromSource(s, "mutated");
      t.Render(messages, true);
      ++rendered;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(rendered, 0);
}

TEST(Robustness, DeepNestingAndRecursionFailCleanly) {
  std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
  EXPECT_THROW(ChatTemplate::FromSource("{{ " + deep + " }}", "deep"), ChatTemplateError);
  std::string nots;
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_THROW(ChatTemplate::FromSource("{{ " + nots + "x }}", "deep"), ChatTemplateError);
  std::string blocks;
  for (int i = 0; i < 3000; ++i) blocks += "{% if true %}";
  EXPECT_THROW(ChatTemplate::FromSource(blocks, "deep"), ChatTemplateError);
  ChatTemplate recursive =
      ChatTemplate::FromSource("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "rec");
  EXPECT_THROW(recursive.Render(nlohmann::ordered_json::array(), false), ChatTemplateError);
  ChatTemplate nest = ChatTemplate::FromSource(
      "{% set ns = namespace(x=[]) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}{% endfor "
      "%}{{ ns.x }}",
      "nest");
  EXPECT_THROW(nest.Render(nlohmann::ordered_json::array(), false), ChatTemplateError);
  // Parsed rather than built by nesting copies (nlohmann copies recursively).
  auto deep_json =
      nlohmann::ordered_json::parse(std::string(3000, '[') + "1" + std::string(3000, ']'));
  ChatTemplate plain = ChatTemplate::FromSource("{{ messages|length }}", "plain");
  EXPECT_THROW(plain.Render(deep_json, false), ChatTemplateError);
}

TEST(Robustness, RegexTranslation) {
  // Oniguruma's \s excludes U+180E and includes U+0085; \h is a hex digit; {,n} means {0,n}.
  EXPECT_EQ(TranslateOnigurumaPattern("\\s+", "t"), "[\\t-\\r\\x{85}\\p{Z}]+");
  EXPECT_EQ(TranslateOnigurumaPattern("[^\\s\\p{L}]", "t"), "[^\\t-\\r\\x{85}\\p{Z}\\p{L}]");
  EXPECT_EQ(TranslateOnigurumaPattern("\\h{,2}", "t"), "[0-9a-fA-F]{0,2}");
  EXPECT_EQ(TranslateOnigurumaPattern("(?m:a.)", "t"), "(?s:a.)");
  EXPECT_EQ(TranslateOnigurumaPattern("[]a]", "t"), "[\\]a]");
  EXPECT_THROW(TranslateOnigurumaPattern("[\\S]", "t"), Error);
  EXPECT_THROW(TranslateOnigurumaPattern("[a[b]]", "t"), Error);
  EXPECT_THROW(TranslateOnigurumaPattern("[ab", "t"), Error);
  Regex space("\\s", "t");
  std::vector<std::pair<size_t, size_t>> matches;
  space.FindAll("a\u180eb\u0085c\u3000d\u200be", matches);
  EXPECT_EQ(matches.size(), 2u);
}

TEST(Utf8, LossyDecodingUsesMaximalSubparts) {
  EXPECT_EQ(utf8::DecodeLossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");  // truncated 4-byte: one U+FFFD
  EXPECT_EQ(utf8::DecodeLossy("\xE2\x82x"), "\xEF\xBF\xBDx");      // maximal subpart E2 82
  EXPECT_EQ(utf8::DecodeLossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: two
  EXPECT_EQ(utf8::DecodeLossy("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(
      utf8::DecodeLossy("\xF4\x90\x80\x80"),
      std::string(4 * 3, '\0').replace(0, 12, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
  EXPECT_EQ(utf8::StablePrefixLength("ab\xE6\x97"), 2u);
  EXPECT_EQ(utf8::StablePrefixLength("ab\xE6\x97\xA5"), 5u);
  EXPECT_EQ(utf8::StablePrefixLength("ab\xFF"), 3u);
  EXPECT_EQ(utf8::StablePrefixLength("\xE6x\xE6"), 2u);
}

}  // namespace
}  // namespace whale
