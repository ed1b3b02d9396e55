// Task mixes, the sampler, and chat-formatted task documents (train/task_documents.h).
#include "train/task_documents.h"

#include <gtest/gtest.h>

#include <map>

#include "util/error.h"

namespace whale {
namespace {

const std::string kServe = std::string(WHALE_TEST_DATA) + "/serve";

TEST(TaskMix, ParsesNamesRangesAndWeights) {
  const std::vector<TaskMixEntry> mix = ParseTaskMix("add:1-3, sub:2 ,mul*0.5,countdown:3-4*2");
  ASSERT_EQ(mix.size(), 4u);
  EXPECT_EQ(mix[0].task, "add");
  EXPECT_EQ(mix[0].min_difficulty, 1);
  EXPECT_EQ(mix[0].max_difficulty, 3);
  EXPECT_EQ(mix[1].min_difficulty, 2);
  EXPECT_EQ(mix[1].max_difficulty, 2);
  EXPECT_EQ(mix[2].task, "mul");  // no range: the task's whole range
  EXPECT_EQ(mix[2].min_difficulty, MakeTask("mul")->min_difficulty());
  EXPECT_EQ(mix[2].max_difficulty, MakeTask("mul")->max_difficulty());
  EXPECT_DOUBLE_EQ(mix[2].weight, 0.5);
  EXPECT_DOUBLE_EQ(mix[3].weight, 2);
  // The canonical text reads back to the same mix.
  const std::vector<TaskMixEntry> again = ParseTaskMix(TaskMixToString(mix));
  ASSERT_EQ(again.size(), mix.size());
  for (size_t i = 0; i < mix.size(); ++i) {
    EXPECT_EQ(again[i].task, mix[i].task);
    EXPECT_EQ(again[i].min_difficulty, mix[i].min_difficulty);
    EXPECT_EQ(again[i].max_difficulty, mix[i].max_difficulty);
    EXPECT_DOUBLE_EQ(again[i].weight, mix[i].weight);
  }
}

TEST(TaskMix, RejectsBadEntriesNamingThem) {
  const auto message = [](const std::string& spec) {
    try {
      ParseTaskMix(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("add:1-3,divide:2").find("divide"), std::string::npos);
  EXPECT_NE(message("add:0-3").find("add:0-3"), std::string::npos);
  EXPECT_NE(message("add:3-1").find("3-1"), std::string::npos);
  EXPECT_NE(message("add:x").find("'x'"), std::string::npos);
  EXPECT_NE(message("add*0").find("weight"), std::string::npos);
  EXPECT_NE(message("add*-1").find("weight"), std::string::npos);
  EXPECT_NE(message("add,,sub").find("empty entry"), std::string::npos);
  EXPECT_NE(message("").find("empty entry"), std::string::npos);
}

TEST(TaskSampler, DeterministicWeightedAndWithinRanges) {
  const std::vector<TaskMixEntry> mix = ParseTaskMix("add:2-3*3,sort:1");
  TaskSampler a(mix, Split::kTrain, 5), b(mix, Split::kTrain, 5), c(mix, Split::kTrain, 6);
  std::map<std::string, int> counts;
  bool differs = false;
  for (int i = 0; i < 4000; ++i) {
    const TaskSampler::Draw x = a.Next(), y = b.Next(), z = c.Next();
    EXPECT_EQ(x.problem.prompt, y.problem.prompt);
    differs |= x.problem.prompt != z.problem.prompt;
    ASSERT_EQ(x.task->name(), x.problem.task);
    ++counts[x.problem.task];
    if (x.problem.task == "add") {
      EXPECT_GE(x.problem.difficulty, 2);
      EXPECT_LE(x.problem.difficulty, 3);
    } else {
      EXPECT_EQ(x.problem.difficulty, 1);
    }
  }
  EXPECT_TRUE(differs);
  // add is drawn with probability 3/4: 3000 expected, standard deviation ~27; 200 is > 7 sigma.
  EXPECT_NEAR(counts["add"], 3000, 200);
  EXPECT_EQ(a.task("sort").name(), "sort");
  EXPECT_THROW(a.task("mul"), Error);
}

TEST(TaskSampler, TestSplitNeverYieldsATrainProblem) {
  const std::vector<TaskMixEntry> mix = ParseTaskMix("add:2,sub:2");
  TaskSampler test(mix, Split::kTest, 1);
  for (int i = 0; i < 300; ++i) {
    const TaskSampler::Draw draw = test.Next();
    const std::vector<int64_t>& o = draw.problem.operands;
    const bool commutative = draw.problem.task == "add";
    const std::vector<int64_t> key = {o[1], commutative ? std::min(o[0], o[2]) : o[0],
                                      commutative ? std::max(o[0], o[2]) : o[2]};
    EXPECT_EQ(SplitOfKey(key), Split::kTest) << draw.problem.prompt;
  }
}

class TaskFormatterTest : public ::testing::Test {
 protected:
  Tokenizer tokenizer_ = Tokenizer::FromModelDir(kServe);
  ChatTemplate template_ = ChatTemplate::FromModelDir(kServe);
};

TEST_F(TaskFormatterTest, PromptEndsInTheOpenThinkAndDecodesToTheTemplate) {
  const TaskFormatter formatter(tokenizer_, template_);
  TaskSampler sampler(ParseTaskMix("add:3"), Split::kTrain, 2);
  const Problem problem = sampler.Next().problem;
  const std::string text = formatter.PromptText(problem);
  const std::string expected_tail = problem.prompt + "<｜Assistant｜><think>\n";
  ASSERT_GE(text.size(), expected_tail.size());
  EXPECT_EQ(text.substr(text.size() - expected_tail.size()), expected_tail);
  const std::vector<int32_t> tokens = formatter.PromptTokens(problem);
  EXPECT_EQ(tokenizer_.Decode(tokens), text);
  // Exactly one BOS: the template writes it, and encoding must not add another.
  ASSERT_TRUE(tokenizer_.bos_id().has_value());
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), *tokenizer_.bos_id()), 1);
  EXPECT_EQ(tokens.front(), *tokenizer_.bos_id());
}

TEST_F(TaskFormatterTest, WorkedDocumentIsPromptSolutionEosWithTheAssistantMask) {
  const TaskFormatter formatter(tokenizer_, template_);
  TaskSampler sampler(ParseTaskMix("sub:3"), Split::kTrain, 3);
  const TaskSampler::Draw draw = sampler.Next();
  const std::vector<int32_t> prompt = formatter.PromptTokens(draw.problem);
  const Document sft = formatter.WorkedDocument(*draw.task, draw.problem, true);
  const Document full = formatter.WorkedDocument(*draw.task, draw.problem, false);
  EXPECT_EQ(sft.tokens, full.tokens);
  EXPECT_TRUE(full.loss_mask.empty());
  ASSERT_EQ(sft.loss_mask.size(), sft.tokens.size());
  ASSERT_GT(sft.tokens.size(), prompt.size() + 1);
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), sft.tokens.begin()));
  EXPECT_EQ(sft.tokens.back(), formatter.eos_id());
  for (size_t i = 0; i < sft.tokens.size(); ++i) {
    EXPECT_EQ(sft.loss_mask[i], i >= prompt.size() ? 1 : 0) << "position " << i;
  }
  // The completion decodes to the worked solution, which the task's own verifier accepts.
  const std::vector<int32_t> completion(sft.tokens.begin() + static_cast<long>(prompt.size()),
                                        sft.tokens.end() - 1);
  const std::string text = tokenizer_.Decode(completion);
  EXPECT_EQ(text, draw.task->WorkedSolution(draw.problem));
  EXPECT_TRUE(draw.task->Verify(draw.problem, text).correct);
}

TEST_F(TaskFormatterTest, GeneratorFeedsIsolatedSftRowsWithPromptsMasked) {
  const TaskFormatter formatter(tokenizer_, template_);
  TaskSampler sampler(ParseTaskMix("add:1-2"), Split::kTrain, 4);
  GeneratorSourceOptions options;
  options.isolate_documents = true;
  options.pad_id = formatter.eos_id();
  GeneratorDataSource source(TaskDocumentGenerator(sampler, formatter, true), options);
  TokenBatch batch;
  batch.n_seqs = 2;
  batch.seq_len = 160;
  source.Next(batch);
  ValidateBatch(batch, tokenizer_.vocab_size(), "task documents");
  // Every segment starts with BOS, whose prediction and the prompt's are not learned; each
  // segment's learned targets end with EOS.
  const int32_t bos = *tokenizer_.bos_id();
  int64_t learned = 0, segments_seen = 0;
  for (int64_t row = 0; row < batch.n_seqs; ++row) {
    for (int64_t i = 0; i < batch.seq_len; ++i) {
      const int64_t at = row * batch.seq_len + i;
      const bool starts = i == 0 || batch.segments[at] != batch.segments[at - 1];
      if (starts && batch.inputs[at] == bos) {
        ++segments_seen;
        EXPECT_EQ(batch.targets[at], -1);  // BOS predicts the first prompt token: not learned
      }
      learned += batch.targets[at] >= 0;
    }
  }
  EXPECT_GE(segments_seen, 2);
  EXPECT_GT(learned, 0);
  EXPECT_GT(source.documents_read(), 1);
}

TEST(TaskFormatter, RefusesATokenizerWithoutEos) {
  const Tokenizer tokenizer =
      Tokenizer::FromFile(std::string(WHALE_TEST_DATA) + "/train_data/default/tokenizer.json");
  const ChatTemplate chat = ChatTemplate::BuiltinDeepSeek();
  ASSERT_FALSE(tokenizer.eos_id().has_value());  // a bare tokenizer.json without a config
  EXPECT_THROW(TaskFormatter(tokenizer, chat), Error);
}

}  // namespace
}  // namespace whale
