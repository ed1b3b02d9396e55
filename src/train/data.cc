#include "train/data.h"

#include <algorithm>
#include <cmath>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "train/token_shards.h"
#include "util/error.h"

namespace whale {

void ValidateBatch(const TokenBatch& batch, int32_t vocab_size, const std::string& where) {
  if (batch.n_seqs <= 0 || batch.seq_len <= 0) {
    Fail(where, ": batch shape ", batch.n_seqs, " x ", batch.seq_len, " is not positive");
  }
  size_t n = static_cast<size_t>(batch.n_seqs * batch.seq_len);
  if (batch.inputs.size() != n || batch.targets.size() != n || batch.segments.size() != n) {
    Fail(where, ": batch buffers hold ", batch.inputs.size(), "/", batch.targets.size(), "/",
         batch.segments.size(), " inputs/targets/segments, expected ", n);
  }
  if (!batch.weights.empty() && batch.weights.size() != n) {
    Fail(where, ": batch weights hold ", batch.weights.size(), " entries, expected 0 or ", n);
  }
  for (int64_t r = 0; r < batch.n_seqs; ++r) {
    for (int64_t i = 0; i < batch.seq_len; ++i) {
      size_t at = static_cast<size_t>(r * batch.seq_len + i);
      int32_t input = batch.inputs[at], target = batch.targets[at], segment = batch.segments[at];
      if (input < 0 || input >= vocab_size) {
        Fail(where, ": row ", r, " position ", i, ": input id ", input, " is not in [0, ",
             vocab_size, ")");
      }
      if (target < -1 || target >= vocab_size) {
        Fail(where, ": row ", r, " position ", i, ": target ", target, " is not -1 or in [0, ",
             vocab_size, ")");
      }
      if (!batch.weights.empty()) {
        const float w = batch.weights[at];
        if (!std::isfinite(w) || (target < 0 && w != 0)) {
          Fail(where, ": row ", r, " position ", i, ": weight ", w,
               " must be finite, and 0 where the target is -1 (target ", target, ")");
        }
      }
      int32_t previous = i == 0 ? 0 : batch.segments[at - 1];
      if (segment < previous || (i == 0 && segment != 0)) {
        Fail(where, ": row ", r, " position ", i, ": segment ", segment,
             " breaks the order (segments start at 0 and never decrease)");
      }
    }
  }
}

GeneratorDataSource::GeneratorDataSource(DocumentGenerator generator,
                                         GeneratorSourceOptions options)
    : generator_(std::move(generator)), options_(std::move(options)) {
  if (!generator_) Fail(options_.name, ": no document generator given");
}

void GeneratorDataSource::Pull() {
  // A generator that only ever yields empty documents would spin forever: give up after many.
  for (int attempt = 0; !have_doc_; ++attempt) {
    if (attempt == 1000) {
      Fail(options_.name, ": the generator yielded 1000 documents in a row with fewer than 2 ",
           "tokens; expected documents with at least one prediction");
    }
    doc_.tokens.clear();
    doc_.loss_mask.clear();
    generator_(doc_);
    ++documents_read_;
    if (!doc_.loss_mask.empty() && doc_.loss_mask.size() != doc_.tokens.size()) {
      Fail(options_.name, ": document ", documents_read_ - 1, " has ", doc_.tokens.size(),
           " tokens but ", doc_.loss_mask.size(), " loss-mask flags; expected one per token");
    }
    for (size_t i = 0; i < doc_.tokens.size(); ++i) {
      if (doc_.tokens[i] < 0) {
        Fail(options_.name, ": document ", documents_read_ - 1, " token ", i, " has id ",
             doc_.tokens[i], ", expected a non-negative id");
      }
    }
    if (doc_.loss_mask.empty()) doc_.loss_mask.assign(doc_.tokens.size(), 1);
    offset_ = 0;
    have_doc_ = doc_.tokens.size() >= 2;
  }
}

void GeneratorDataSource::FillIsolatedRow(int64_t row, TokenBatch& batch) {
  int64_t seq_len = batch.seq_len;
  int32_t* inputs = batch.inputs.data() + row * seq_len;
  int32_t* targets = batch.targets.data() + row * seq_len;
  int32_t* segments = batch.segments.data() + row * seq_len;
  int64_t used = 0;
  int32_t segment = 0;
  while (used < seq_len) {
    Pull();
    // Positions the rest of the document needs: every token but the last is an input.
    int64_t needed = static_cast<int64_t>(doc_.tokens.size() - 1 - offset_);
    int64_t space = seq_len - used;
    if (needed > space && used > 0) break;  // starts the next row; the rest is padding
    int64_t take = std::min(needed, space);
    for (int64_t i = 0; i < take; ++i) {
      size_t t = offset_ + static_cast<size_t>(i);
      inputs[used + i] = doc_.tokens[t];
      targets[used + i] = doc_.loss_mask[t + 1] ? doc_.tokens[t + 1] : -1;
      segments[used + i] = segment;
    }
    used += take;
    ++segment;
    offset_ += static_cast<size_t>(take);
    // A cut document goes on in the next row, in a new segment, from the token it last predicted.
    if (offset_ + 1 >= doc_.tokens.size()) have_doc_ = false;
  }
  for (int64_t i = used; i < seq_len; ++i) {
    inputs[i] = options_.pad_id;
    targets[i] = -1;
    segments[i] = segment;
  }
}

void GeneratorDataSource::FillStreamRow(int64_t row, TokenBatch& batch) {
  int64_t seq_len = batch.seq_len;
  while (static_cast<int64_t>(stream_.size()) < seq_len + 1) {
    Pull();
    stream_.insert(stream_.end(), doc_.tokens.begin(), doc_.tokens.end());
    stream_mask_.insert(stream_mask_.end(), doc_.loss_mask.begin(), doc_.loss_mask.end());
    have_doc_ = false;
  }
  int32_t* inputs = batch.inputs.data() + row * seq_len;
  int32_t* targets = batch.targets.data() + row * seq_len;
  int32_t* segments = batch.segments.data() + row * seq_len;
  for (int64_t i = 0; i < seq_len; ++i) {
    inputs[i] = stream_[i];
    targets[i] = stream_mask_[i + 1] ? stream_[i + 1] : -1;
    segments[i] = 0;
  }
  // Keep the last token: it is the first input of the next row.
  stream_.erase(stream_.begin(), stream_.begin() + seq_len);
  stream_mask_.erase(stream_mask_.begin(), stream_mask_.begin() + seq_len);
}

void GeneratorDataSource::Next(TokenBatch& batch) {
  if (batch.n_seqs <= 0 || batch.seq_len <= 0) {
    Fail(options_.name, ": batch shape ", batch.n_seqs, " x ", batch.seq_len,
         " is invalid, expected positive n_seqs and seq_len");
  }
  size_t n = static_cast<size_t>(batch.n_seqs * batch.seq_len);
  batch.inputs.resize(n);
  batch.targets.resize(n);
  batch.segments.resize(n);
  for (int64_t row = 0; row < batch.n_seqs; ++row) {
    if (options_.isolate_documents) {
      FillIsolatedRow(row, batch);
    } else {
      FillStreamRow(row, batch);
    }
    ++rows_filled_;
  }
}

std::string GeneratorDataSource::Describe() const {
  return Cat(options_.name, ": ",
             options_.isolate_documents ? "packed documents, isolated" : "document stream", ", ",
             documents_read_, " documents read");
}

struct TextDataSource::State {
  const Tokenizer& tokenizer;
  std::vector<std::string> files;
  TextSourceOptions options;
  size_t file = 0;
  std::string text;                         // the current file
  std::vector<std::string_view> documents;  // its documents
  size_t next_document = 0;
  int64_t passes = 0;

  void Generate(Document& doc) {
    size_t empty_files = 0;
    while (next_document >= documents.size()) {
      if (empty_files > files.size()) {
        Fail("text data source: no file holds any text (", files.front(), ", ...)");
      }
      text = ReadTextFile(files[file]);
      documents = SplitDocuments(text, options.separator);
      next_document = 0;
      if (documents.empty()) ++empty_files;
      if (++file == files.size()) {
        file = 0;
        ++passes;
      }
    }
    std::string_view source = documents[next_document++];
    try {
      doc.tokens = tokenizer.Encode(source, /*add_special_tokens=*/false);
    } catch (const Error& e) {
      Fail(files[(file + files.size() - 1) % files.size()], ": ", e.what());
    }
    if (options.eos_id) doc.tokens.push_back(*options.eos_id);
  }
};

TextDataSource::TextDataSource(const Tokenizer& tokenizer, std::vector<std::string> files,
                               TextSourceOptions options)
    : state_(std::make_unique<State>(State{tokenizer, std::move(files), std::move(options)})) {
  if (state_->files.empty()) Fail("text data source: no text files given");
  if (state_->options.eos_id &&
      (*state_->options.eos_id < 0 || *state_->options.eos_id >= tokenizer.vocab_size())) {
    Fail("text data source: EOS id ", *state_->options.eos_id, " is not in [0, ",
         tokenizer.vocab_size(), ")");
  }
  GeneratorSourceOptions generator_options;
  generator_options.isolate_documents = state_->options.isolate_documents;
  generator_options.pad_id = state_->options.eos_id.value_or(0);
  generator_options.name = "text";
  State* state = state_.get();
  source_ = std::make_unique<GeneratorDataSource>([state](Document& doc) { state->Generate(doc); },
                                                  generator_options);
}

TextDataSource::~TextDataSource() = default;

void TextDataSource::Next(TokenBatch& batch) {
  source_->Next(batch);
}

std::string TextDataSource::Describe() const {
  return Cat("text: ", state_->files.size(), " file(s), tokenized on the fly, ",
             state_->options.isolate_documents ? "documents isolated" : "document stream",
             ", pass ", state_->passes + 1);
}

}  // namespace whale
