// The streaming splitter of generated text into reasoning, content and tool calls: fed whole or
// one byte at a time it gives the same channels, tags never leak, stop strings end content.
#include "runtime/chat_output.h"

#include <gtest/gtest.h>

#include <random>

namespace whale {
namespace {

// Feeds `text` in pieces cut at the given sizes (cycled) and joins every delta.
ChatDelta FeedInPieces(ChatOutputOptions options, const std::string& text,
                       const std::vector<size_t>& sizes) {
  options.id_seed = 7;
  ChatOutputParser parser(options);
  ChatDelta all;
  size_t i = 0, k = 0;
  while (i < text.size()) {
    const size_t n = std::min(sizes[k++ % sizes.size()], text.size() - i);
    all.Append(parser.Feed(std::string_view(text).substr(i, n)));
    i += n;
  }
  all.Append(parser.Finish());
  return all;
}

void ExpectSame(const ChatDelta& a, const ChatDelta& b) {
  EXPECT_EQ(a.reasoning, b.reasoning);
  EXPECT_EQ(a.content, b.content);
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size());
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].index, b.tool_calls[i].index);
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name);
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments);
  }
}

// Every split of the input must give what feeding it whole gives.
ChatDelta CheckAllSplits(const ChatOutputOptions& options, const std::string& text) {
  const ChatDelta whole = FeedInPieces(options, text, {text.size() + 1});
  ExpectSame(FeedInPieces(options, text, {1}), whole);
  ExpectSame(FeedInPieces(options, text, {2, 3}), whole);
  ExpectSame(FeedInPieces(options, text, {5, 1, 7}), whole);
  std::mt19937 rng(1);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<size_t> sizes;
    for (int j = 0; j < 8; ++j) sizes.push_back(1 + rng() % 9);
    ExpectSame(FeedInPieces(options, text, sizes), whole);
  }
  return whole;
}

TEST(ChatOutput, ReasoningThenContentWhenThePromptOpenedThink) {
  const ChatDelta d = CheckAllSplits({}, "Let me think.\nOK.</think>\n\nThe answer is 42.");
  EXPECT_EQ(d.reasoning, "Let me think.\nOK.");
  EXPECT_EQ(d.content, "\n\nThe answer is 42.");
  EXPECT_TRUE(d.tool_calls.empty());
}

TEST(ChatOutput, CutOffInsideReasoningHasNoContent) {
  const ChatDelta d = CheckAllSplits({}, "still thinking </thi");
  EXPECT_EQ(d.reasoning, "still thinking </thi");  // an unfinished tag is text at the end
  EXPECT_EQ(d.content, "");
}

TEST(ChatOutput, LeadingThinkTagOpensReasoningOtherwiseContent) {
  ChatOutputOptions options;
  options.start_in_reasoning = false;
  ChatDelta d = CheckAllSplits(options, "<think>hmm</think>yes");
  EXPECT_EQ(d.reasoning, "hmm");
  EXPECT_EQ(d.content, "yes");
  d = CheckAllSplits(options, "<thin and more");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "<thin and more");
}

TEST(ChatOutput, RawModeKeepsTags) {
  ChatOutputOptions options;
  options.raw = true;
  const std::string text = "a</think>b<｜tool▁calls▁begin｜>c";
  const ChatDelta d = CheckAllSplits(options, text);
  EXPECT_EQ(d.content, text);
  EXPECT_EQ(d.reasoning, "");
}

TEST(ChatOutput, StopStringsEndContentButNotReasoning) {
  ChatOutputOptions options;
  options.stop = {"STOP", "xyz", "\n\n"};
  ChatOutputParser parser(options);
  ChatDelta all;
  for (const char* piece : {"think STOP\n\n", "</think>", "ans", "wer S", "TO", "P more"})
    all.Append(parser.Feed(piece));
  all.Append(parser.Finish());
  EXPECT_EQ(all.reasoning, "think STOP\n\n");
  EXPECT_EQ(all.content, "answer ");
  EXPECT_TRUE(parser.stopped());
  EXPECT_EQ(parser.stop_matched(), "STOP");

  const ChatDelta d = CheckAllSplits(options, "r</think>one x two\n\nthree");
  EXPECT_EQ(d.content, "one x two");
  // The earliest match wins; a partial stop at the very end is text.
  EXPECT_EQ(CheckAllSplits(options, "</think>a xy").content, "a xy");
}

TEST(ChatOutput, StreamingNeverLeaksAPrefixOfAStopString) {
  ChatOutputOptions options;
  options.start_in_reasoning = false;
  options.stop = {"<END>"};
  ChatOutputParser parser(options);
  EXPECT_EQ(parser.Feed("abc<E").content, "abc");
  EXPECT_EQ(parser.Feed("N").content, "");
  EXPECT_EQ(parser.Feed("x").content, "<ENx");
  EXPECT_EQ(parser.Feed("<END>tail").content, "");
  EXPECT_TRUE(parser.stopped());
}

const std::string kTwoCalls =
    "I will "
    "check.</think>Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
    "get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>"
    "function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"a`b\",\n \"x\": [1,2]}\n```"
    "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

TEST(ChatOutput, ParsesDeepSeekToolCalls) {
  const ChatDelta d = CheckAllSplits({}, kTwoCalls);
  EXPECT_EQ(d.reasoning, "I will check.");
  EXPECT_EQ(d.content, "Checking.");
  ASSERT_EQ(d.tool_calls.size(), 2u);
  EXPECT_EQ(d.tool_calls[0].index, 0);
  EXPECT_EQ(d.tool_calls[0].name, "get_weather");
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(d.tool_calls[1].index, 1);
  EXPECT_EQ(d.tool_calls[1].name, "get_time");
  EXPECT_EQ(d.tool_calls[1].arguments, "{\"tz\": \"a`b\",\n \"x\": [1,2]}");
  EXPECT_EQ(d.tool_calls[0].id.size(), 29u);
  EXPECT_EQ(d.tool_calls[0].id.substr(0, 5), "call_");
  EXPECT_NE(d.tool_calls[0].id, d.tool_calls[1].id);
}

TEST(ChatOutput, ToolCallStreamsIdAndNameFirstThenArgumentPieces) {
  ChatOutputParser parser({});
  ChatDelta d =
      parser.Feed("</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f");
  EXPECT_TRUE(d.tool_calls.empty());  // the name is not complete before its newline
  d = parser.Feed("n\n```json\n{\"a\"");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].name, "fn");
  EXPECT_FALSE(d.tool_calls[0].id.empty());
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"a\"");
  d = parser.Feed(": 1}\n`");  // the start of the closing fence is held back
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_TRUE(d.tool_calls[0].id.empty());
  EXPECT_EQ(d.tool_calls[0].arguments, ": 1}");
  d = parser.Feed("``<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(parser.tool_call_count(), 1);
}

TEST(ChatOutput, ToolSyntaxIsContentWhenParsingIsOff) {
  ChatOutputOptions options;
  options.parse_tool_calls = false;
  const ChatDelta d = CheckAllSplits(options, kTwoCalls);
  EXPECT_TRUE(d.tool_calls.empty());
  EXPECT_EQ(d.content, kTwoCalls.substr(kTwoCalls.find("</think>") + 8));
}

TEST(ChatOutput, InReasoningTracksTheChannel) {
  ChatOutputParser parser({});
  EXPECT_TRUE(parser.in_reasoning());
  parser.Feed("abc</think>");
  EXPECT_FALSE(parser.in_reasoning());
}

}  // namespace
}  // namespace whale
