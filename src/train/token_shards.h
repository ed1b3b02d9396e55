// Token shards: pre-tokenized training text on disk, read through a memory map.
//
// A shard is one file, little-endian:
//   offset  size  field
//        0     8  magic "WHLSHARD"
//        8     4  version (1)
//       12     4  token width in bytes: 2 (uint16 ids) or 4 (uint32 ids)
//       16     4  vocab size (every id is below it)
//       20     4  EOS id (appended after every document; 0xffffffff = none)
//       24     8  token count
//       32     8  document count
//       40    24  reserved (zero)
//       64     -  token ids, `token count` x `width` bytes; nothing follows
// Documents are packed back to back, each followed by the EOS id. The width is 2 whenever the
// vocabulary fits in 16 bits.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "train/data.h"

namespace whale {

class Tokenizer;
class MappedFile;

inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 64;
inline constexpr uint32_t kShardNoEos = 0xffffffffu;

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_width = 2;
  uint32_t vocab_size = 0;
  uint32_t eos_id = kShardNoEos;
  uint64_t n_tokens = 0;
  uint64_t n_documents = 0;
};

// Writes one shard: documents are appended as they come, the header is completed by Finish().
class ShardWriter {
 public:
  // eos_id < 0: documents are not separated. Throws Error if the file cannot be created.
  ShardWriter(const std::string& path, int32_t vocab_size, int32_t eos_id);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends the document's ids and then EOS. Throws Error for ids outside [0, vocab_size).
  void AddDocument(std::span<const int32_t> ids);
  // Writes the header and closes the file; the destructor discards an unfinished shard.
  void Finish();
  const ShardHeader& header() const { return header_; }

 private:
  void Put(int32_t id);
  std::string path_;
  std::FILE* file_ = nullptr;
  ShardHeader header_;
};

// A read-only view of a shard; validates the header and the size, and every id it hands out.
class TokenShard {
 public:
  explicit TokenShard(const std::string& path);
  ~TokenShard();
  TokenShard(TokenShard&&) noexcept;

  const std::string& path() const { return path_; }
  const ShardHeader& header() const { return header_; }
  int64_t size() const { return static_cast<int64_t>(header_.n_tokens); }
  // Copies tokens [begin, begin + out.size()); throws Error if the range is outside the shard or
  // a stored id is not below the vocab size (a corrupt file).
  void Read(int64_t begin, std::span<int32_t> out) const;

 private:
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  ShardHeader header_;
};

// True if the file starts with the shard magic (lets `--data` take shards and text files alike).
bool IsTokenShard(const std::string& path);

// Splits text into documents at every occurrence of `separator` (the whole text when empty);
// empty documents are dropped.
std::vector<std::string_view> SplitDocuments(std::string_view text, std::string_view separator);

// Tokenizes text files (documents split by `separator`, see SplitDocuments) into one shard.
// Special tokens in the text are encoded as such; no BOS/EOS from the post-processor. Returns the
// header written.
ShardHeader WriteTextShard(const Tokenizer& tokenizer, const std::vector<std::string>& text_files,
                           const std::string& separator, int32_t eos_id,
                           const std::string& out_path, bool show_progress);

struct ShardSourceOptions {
  // Random windows (seeded) or consecutive ones (stride seq_len, so every token is a target once
  // per pass; wraps around).
  bool random = true;
  uint64_t seed = 0;
  // Segments restart after every EOS and the target at an EOS (the next document's first token,
  // unpredictable from the previous document) is masked; otherwise segments are all 0.
  bool isolate_documents = false;
};

// Windows of seq_len + 1 tokens from a set of shards (a window never spans two shards): inputs are
// the first seq_len tokens, targets the last seq_len. The position is a window counter, so a run
// resumes exactly by restoring it.
class ShardDataSource : public DataSource {
 public:
  ShardDataSource(const std::vector<std::string>& shard_paths, ShardSourceOptions options);
  ~ShardDataSource() override;

  void Next(TokenBatch& batch) override;
  std::string Describe() const override;

  // Windows handed out so far; Restore(position()) continues where a run stopped.
  int64_t position() const { return position_; }
  void Restore(int64_t position) { position_ = position; }
  int64_t total_tokens() const;
  uint32_t vocab_size() const { return vocab_size_; }

  // The start (shard, offset) of window number `index` for windows of `window` tokens.
  std::pair<size_t, int64_t> WindowStart(int64_t index, int64_t window) const;

 private:
  std::vector<TokenShard> shards_;
  ShardSourceOptions options_;
  uint32_t vocab_size_ = 0;
  std::optional<uint32_t> eos_id_;
  int64_t position_ = 0;
  std::vector<int32_t> window_;  // [seq_len + 1]
};

// Fills row `row` of a batch from a window of seq_len + 1 tokens; with `eos_id`, segments restart
// after each EOS and targets at EOS positions are -1. Shared by the shard and text sources.
void FillRowFromWindow(std::span<const int32_t> window, std::optional<int32_t> eos_id, int64_t row,
                       TokenBatch& batch);

}  // namespace whale
