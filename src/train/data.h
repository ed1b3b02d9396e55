// Training data: the batch every data source fills and the trainer consumes.
//
// All buffers are row-major [n_seqs, seq_len], last index fastest.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace whale {

struct TokenBatch {
  int64_t n_seqs = 0, seq_len = 0;
  // [n_seqs, seq_len] token ids fed to the model
  std::vector<int32_t> inputs;
  // [n_seqs, seq_len] next-token targets; -1 = no loss here
  std::vector<int32_t> targets;
  // [n_seqs, seq_len] document index within its row; attention never crosses a segment boundary
  // and positions restart at 0 per segment
  std::vector<int32_t> segments;
  // Empty, or [n_seqs, seq_len] per-position loss weights: the main loss becomes
  // Σ_t w_t·CE_t over positions with target >= 0 instead of the mean (0 where target is -1).
  // Policy-gradient training sets w_t = −∂L/∂log p_t (train/grpo.h).
  std::vector<float> weights;
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  // Fills the batch with n_seqs x seq_len tokens (n_seqs and seq_len are set by the caller).
  virtual void Next(TokenBatch& batch) = 0;
  virtual std::string Describe() const = 0;
};

// Checks a filled batch: sizes match n_seqs x seq_len (weights: empty or that size, finite, 0 on
// ignored positions), targets are -1 or ids, segments start at 0 in every row and never decrease.
// Throws Error naming `where` and the first bad position.
void ValidateBatch(const TokenBatch& batch, int32_t vocab_size, const std::string& where);

// One document from a generator: the tokens and which of them are learned.
struct Document {
  std::vector<int32_t> tokens;
  // Empty (every token is a target), or one flag per token: nonzero where the token is a loss
  // target when predicted from the previous one (SFT: 1 on the answer, 0 on the prompt).
  std::vector<uint8_t> loss_mask;
};

// Fills `doc` with the next document; a callback so procedural task generators plug in.
using DocumentGenerator = std::function<void(Document& doc)>;

struct GeneratorSourceOptions {
  // Isolated (SFT-style packing): each row holds whole documents, each in its own segment; a
  // document that does not fit the rest of a row moves to the next row and the rest is padding
  // (input pad_id, target -1, a segment of its own); a document longer than a row is cut into
  // row-sized pieces, each its own segment.
  // Not isolated (pretraining-style): documents are concatenated into one stream and rows are
  // consecutive windows of seq_len + 1 tokens sharing one token; segments are all 0.
  bool isolate_documents = true;
  int32_t pad_id = 0;
  // Names the source in Describe().
  std::string name = "generator";
};

class GeneratorDataSource : public DataSource {
 public:
  GeneratorDataSource(DocumentGenerator generator, GeneratorSourceOptions options);

  void Next(TokenBatch& batch) override;
  std::string Describe() const override;

  int64_t documents_read() const { return documents_read_; }
  int64_t rows_filled() const { return rows_filled_; }

 private:
  // Makes sure the pending document has tokens left (pulls documents with fewer than 2 tokens
  // away: they hold no prediction).
  void Pull();
  void FillIsolatedRow(int64_t row, TokenBatch& batch);
  void FillStreamRow(int64_t row, TokenBatch& batch);

  DocumentGenerator generator_;
  GeneratorSourceOptions options_;
  Document doc_;       // the pending document
  size_t offset_ = 0;  // tokens of doc_ already consumed as inputs
  bool have_doc_ = false;
  // Stream mode: tokens not yet consumed, and whether each is a target.
  std::vector<int32_t> stream_;
  std::vector<uint8_t> stream_mask_;
  int64_t documents_read_ = 0;
  int64_t rows_filled_ = 0;
};

class Tokenizer;

struct TextSourceOptions {
  // Documents within a file are separated by this string (empty: one document per file).
  std::string separator;
  // Appended to every document (e.g. the tokenizer's EOS id).
  std::optional<int32_t> eos_id;
  bool isolate_documents = false;
};

// Tokenizes text files on the fly (document by document, cycling through the files forever) and
// feeds them through a GeneratorDataSource. `tokenizer` must outlive the source.
class TextDataSource : public DataSource {
 public:
  TextDataSource(const Tokenizer& tokenizer, std::vector<std::string> files,
                 TextSourceOptions options);
  ~TextDataSource() override;

  void Next(TokenBatch& batch) override;
  std::string Describe() const override;

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::unique_ptr<GeneratorDataSource> source_;
};

}  // namespace whale
