// whale tokenizer train: learns a byte-level BPE tokenizer from text files and writes a Hugging
// Face tokenizer.json. whale tokenizer shard: tokenizes text files into a token shard for training.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "train/bpe_trainer.h"
#include "train/token_shards.h"
#include "util/error.h"
#include "util/progress.h"

namespace {

struct TrainFlags {
  int32_t vocab = 0;
  std::vector<std::string> inputs;
  std::string out;
  std::vector<std::string> specials;
  bool split_digits = false;
  int64_t min_frequency = 2;
};

struct ShardFlags {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string out;
  std::string separator;
  std::string eos;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int RunTrain(const TrainFlags& flags) {
  auto start = std::chrono::steady_clock::now();
  whale::BpeTrainerOptions options;
  options.vocab_size = flags.vocab;
  options.special_tokens = flags.specials;
  options.split_digits = flags.split_digits;
  options.min_frequency = flags.min_frequency;
  options.show_progress = true;
  whale::BpeTrainer trainer(options);
  size_t bytes = 0;
  whale::ProgressLine progress("counting words", static_cast<double>(flags.inputs.size()), "files");
  for (size_t i = 0; i < flags.inputs.size(); ++i) {
    std::string text = whale::ReadTextFile(flags.inputs[i]);
    bytes += text.size();
    trainer.AddText(text, flags.inputs[i]);
    progress.Update(static_cast<double>(i + 1));
  }
  progress.Finish();
  whale::WordCounts words = trainer.Words();
  std::fprintf(stderr, "counted %zu distinct words in %zu bytes (%.2f s)\n", words.size(), bytes,
               Seconds(start));
  whale::BpeVocabulary vocabulary = whale::LearnBpe(words, options);
  std::string json = whale::BpeTokenizerJson(vocabulary, flags.split_digits).dump(1);
  whale::WriteTextFile(flags.out, json + "\n");
  // Load what was written: the file must be one whale itself can use.
  whale::Tokenizer::FromFile(flags.out);
  std::fprintf(stderr, "wrote %s: %zu tokens (%d special), %zu merges (%.2f s)\n",
               flags.out.c_str(), vocabulary.tokens.size(), vocabulary.n_special,
               vocabulary.merges.size(), Seconds(start));
  if (static_cast<int64_t>(vocabulary.tokens.size()) < flags.vocab) {
    std::fprintf(stderr,
                 "note: stopped below --vocab %d: no pair left with at least %lld occurrences\n",
                 flags.vocab, static_cast<long long>(flags.min_frequency));
  }
  return 0;
}

int RunShard(const ShardFlags& flags) {
  auto start = std::chrono::steady_clock::now();
  whale::Tokenizer tokenizer = whale::Tokenizer::FromFile(flags.tokenizer);
  int32_t eos_id = -1;
  if (!flags.eos.empty()) {
    auto id = tokenizer.TokenId(flags.eos);
    if (!id) whale::Fail("--eos: token \"", flags.eos, "\" is not in ", flags.tokenizer);
    eos_id = *id;
  }
  whale::ShardHeader header =
      whale::WriteTextShard(tokenizer, flags.inputs, flags.separator, eos_id, flags.out, true);
  std::fprintf(stderr, "wrote %s: %llu documents, %llu tokens, %u-byte ids (%.2f s)\n",
               flags.out.c_str(), static_cast<unsigned long long>(header.n_documents),
               static_cast<unsigned long long>(header.n_tokens), header.token_width,
               Seconds(start));
  return 0;
}

std::function<int()> Setup(CLI::App& sub) {
  sub.require_subcommand(1);
  auto train_flags = std::make_shared<TrainFlags>();
  CLI::App* train = sub.add_subcommand("train", "learn a byte-level BPE tokenizer from text files");
  train
      ->add_option("--vocab", train_flags->vocab,
                   "vocabulary size: special tokens + 256 bytes + merged tokens")
      ->required();
  train->add_option("--input", train_flags->inputs, "UTF-8 text files")
      ->required()
      ->check(CLI::ExistingFile);
  train->add_option("--out", train_flags->out, "the tokenizer.json to write")->required();
  train->add_option("--special", train_flags->specials,
                    "a special token (repeatable; ids 0, 1, ... in order)");
  train->add_flag("--split-digits", train_flags->split_digits,
                  "one token per digit (default: runs of up to three digits)");
  train
      ->add_option("--min-frequency", train_flags->min_frequency,
                   "never merge a pair seen fewer times")
      ->capture_default_str();

  auto shard_flags = std::make_shared<ShardFlags>();
  CLI::App* shard = sub.add_subcommand("shard", "tokenize text files into a token shard");
  shard->add_option("--tokenizer", shard_flags->tokenizer, "a tokenizer.json")
      ->required()
      ->check(CLI::ExistingFile);
  shard->add_option("--input", shard_flags->inputs, "UTF-8 text files")
      ->required()
      ->check(CLI::ExistingFile);
  shard->add_option("--out", shard_flags->out, "the shard file to write")->required();
  shard->add_option("--separator", shard_flags->separator,
                    "documents within a file are separated by this string (default: one "
                    "document per file); \\n is a newline");
  shard->add_option("--eos", shard_flags->eos, "the token appended after every document");

  return [train, train_flags, shard_flags] {
    if (train->parsed()) return RunTrain(*train_flags);
    // Let "\n" on the command line mean a newline (blank-line-separated documents: "\n\n").
    std::string separator;
    const std::string& raw = shard_flags->separator;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n') {
        separator += '\n';
        ++i;
      } else {
        separator += raw[i];
      }
    }
    shard_flags->separator = separator;
    return RunShard(*shard_flags);
  };
}

}  // namespace

WHALE_COMMAND(tokenizer, "train a BPE tokenizer, or tokenize text into training shards", Setup);
