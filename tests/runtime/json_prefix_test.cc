// JsonPrefix against nlohmann::json: valid texts are accepted whole and every prefix of them is
// accepted and closable; invalid texts are refused at some byte; and a fuzz loop over random bytes
// checks the properties constrained decoding relies on: a text it calls complete parses, and the
// closing text it proposes is accepted byte by byte, one shorter each time, and ends complete.
#include "runtime/json_prefix.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace whale {
namespace {

bool Parses(const std::string& text) {
  return nlohmann::json::accept(text);
}

// Feeds the closing text byte by byte: each is accepted and shortens the closing by one.
void ExpectClosable(JsonPrefix json, const std::string& text) {
  const std::string closing = json.Closing();
  ASSERT_EQ(closing.size(), json.ClosingLength()) << text;
  size_t left = closing.size();
  for (char c : closing) {
    ASSERT_TRUE(json.Push(static_cast<uint8_t>(c)))
        << "closing byte '" << c << "' of '" << closing << "' refused after '" << text << "'";
    ASSERT_EQ(json.ClosingLength(), --left) << text << " + " << closing;
  }
  EXPECT_TRUE(json.complete()) << text << " + " << closing;
  EXPECT_TRUE(Parses(text + closing)) << text << " + " << closing;
}

TEST(JsonPrefix, AcceptsValidTextsAndEveryPrefix) {
  const std::vector<std::string> valid = {
      "{}",
      "[]",
      "0",
      "-0.5e+10",
      "12E-3",
      "true",
      "null",
      R"("plain")",
      R"({"a":1,"b":[true,false,null,{"c":"d"}],"e":-0.25})",
      " \t\n{ \"k\" : [ 1 , 2 ] } \n",
      R"(["esc \" \\ \/ \b \f \n \r \t", "\u00e9\u4E2D", "\ud83d\ude00"])",
      "\"caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80\"",
      R"({"deep":[[[[{"x":[[]]}]]]]})",
      R"([1.0, 2e5, -3E+2, 0.125, 10])",
  };
  for (const std::string& text : valid) {
    ASSERT_TRUE(Parses(text)) << "the test's own text must be valid: " << text;
    JsonPrefix json;
    for (size_t i = 0; i < text.size(); ++i) {
      ExpectClosable(json, text.substr(0, i));
      ASSERT_TRUE(json.Push(static_cast<uint8_t>(text[i])))
          << "byte " << i << " of " << text << " refused";
    }
    EXPECT_TRUE(json.complete()) << text;
    EXPECT_EQ(json.Closing(), "") << text;
  }
}

TEST(JsonPrefix, RefusesInvalidTexts) {
  const std::vector<std::string> invalid = {
      R"({"a":})",
      R"({,})",
      "[1,]",
      "01",
      "1.}",
      "-",
      "\"\x01\"",
      R"("\ud800")",
      R"("\udc00")",
      R"("\ud800\u0041")",
      "tru e",
      R"({"a" 1})",
      "\"\xC0\x80\"",
      "\"\xED\xA0\x80\"",
      "\"\xF5\x80\x80\x80\"",
      "{} {}",
      "[1] 2",
      R"({"a":1,})",
      R"("\x")",
      "nul",
      "{\"a\":1]",
      "[}",
      "+1",
      ".5",
      "1e",
      "\"\xE0\x80\x80\"",
      "1e999",
      "[1.3E469]",
  };
  for (const std::string& text : invalid) {
    ASSERT_FALSE(Parses(text)) << "the test's own text must be invalid: " << text;
    JsonPrefix json;
    bool refused = false;
    for (char c : text)
      if (!json.Push(static_cast<uint8_t>(c))) {
        refused = true;
        break;
      }
    // Some invalid texts are valid prefixes ("-", "nul", "1e"): then they are not complete.
    EXPECT_TRUE(refused || !json.complete()) << text;
  }
}

TEST(JsonPrefix, RefusedByteLeavesTheStateUnchanged) {
  JsonPrefix json;
  ASSERT_TRUE(json.PushAll(R"({"a":[1,)"));
  const std::string before = json.Closing();
  EXPECT_FALSE(json.Push(']'));
  EXPECT_FALSE(json.PushAll("2,]"));
  EXPECT_EQ(json.Closing(), before);
  EXPECT_TRUE(json.PushAll("2]}"));
  EXPECT_TRUE(json.complete());
}

TEST(JsonPrefix, ObjectOnlyAndDepthLimit) {
  JsonPrefix object(true);
  EXPECT_EQ(object.Closing(), "{}");
  EXPECT_FALSE(object.Push('['));
  EXPECT_FALSE(object.Push('1'));
  EXPECT_TRUE(object.PushAll("  {\"x\":[1]}"));
  EXPECT_TRUE(object.complete());
  JsonPrefix deep;
  for (int i = 0; i < JsonPrefix::kMaxDepth; ++i) ASSERT_TRUE(deep.Push('['));
  EXPECT_FALSE(deep.Push('['));
  EXPECT_EQ(deep.ClosingLength(), static_cast<size_t>(JsonPrefix::kMaxDepth));
  // Numbers are bounded so they stay finite doubles; a few valid spellings are refused with them.
  EXPECT_FALSE(JsonPrefix().PushAll("1e005"));
  EXPECT_FALSE(JsonPrefix().PushAll(std::string(201, '1')));
  std::string big(200, '9');
  big += ".5e99";
  EXPECT_TRUE(JsonPrefix().PushAll(big));
}

TEST(JsonPrefix, ClosesEveryKindOfOpenState) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "0"},
      {R"({"k)", R"(":0})"},
      {R"({"k")", ":0}"},
      {R"({"k":)", "0}"},
      {R"({"k":1,)", R"("":0})"},
      {R"(["a\)", R"(n"])"},
      {R"(["\u4)", R"(000"])"},
      {R"(["\ud8)", R"(00\udc00"])"},
      {R"(["\ud83d)", R"(\udc00"])"},
      {R"(["\ud83d\)", R"(udc00"])"},
      {R"(["\ud83d\u)", R"(dc00"])"},
      {R"(["\ud83d\ud)", R"(c00"])"},
      {"[\"\xE0", "\xA0\x80\"]"},
      {"[\"\xF0", "\x90\x80\x80\"]"},
      {"[-", "0]"},
      {"[1.", "0]"},
      {"[1e", "0]"},
      {"[1e+", "0]"},
      {"[fa", "lse]"},
      {"[1", "]"},
  };
  for (const auto& [text, closing] : cases) {
    JsonPrefix json;
    ASSERT_TRUE(json.PushAll(text)) << text;
    EXPECT_EQ(json.Closing(), closing) << text;
    ExpectClosable(json, text);
  }
}

// Random bytes, biased towards JSON's own characters so that deep and varied states are reached.
TEST(JsonPrefix, FuzzNeverCrashesAndCompleteTextsParse) {
  const std::string alphabet =
      "{}[]\":,0123456789-+.eEtrufalsn \\/ubfnrtdcDC\xC3\xA9\xE4\xF0\x9F\x80";
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    const bool object_only = round % 2 == 0;
    JsonPrefix json(object_only);
    std::string text;
    const int length = 1 + static_cast<int>(rng() % 80);
    for (int i = 0; i < length; ++i) {
      const uint8_t b = round % 5 == 0 ? static_cast<uint8_t>(rng() & 0xFF)
                                       : static_cast<uint8_t>(alphabet[rng() % alphabet.size()]);
      if (!json.Push(b)) continue;  // refused: the state stays as it was
      text += static_cast<char>(b);
      if (json.complete()) {
        ASSERT_TRUE(Parses(text)) << "complete but unparseable: " << text;
        if (object_only) {
          ASSERT_TRUE(nlohmann::json::parse(text).is_object()) << text;
        }
      }
    }
    ExpectClosable(json, text);
    if (object_only && !text.empty()) {
      EXPECT_TRUE(nlohmann::json::parse(text + json.Closing()).is_object()) << text;
    }
  }
}

}  // namespace
}  // namespace whale

namespace whale {
namespace {

TEST(JsonPrefix, WhitespaceRunLimit) {
  JsonPrefix limited(true, 3);
  EXPECT_TRUE(limited.PushAll("\n  {"));
  EXPECT_FALSE(limited.PushAll("    "));
  EXPECT_TRUE(limited.PushAll("\n  \"a  b    c\"   :1"));  // inside strings it does not apply
  EXPECT_FALSE(limited.PushAll("\n\n\n\n}"));
  EXPECT_TRUE(limited.PushAll("\n\n\n}"));
  EXPECT_TRUE(limited.complete());
  std::string spaced(100, ' ');  // no limit by default
  spaced.front() = '{';
  spaced.back() = '}';
  EXPECT_TRUE(JsonPrefix().PushAll(spaced));
}

}  // namespace
}  // namespace whale
