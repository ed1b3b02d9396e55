#include "train/token_shards.h"

#include <cerrno>
#include <cstring>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/split_mix.h"

namespace whale {
namespace {

constexpr char kMagic[8] = {'W', 'H', 'L', 'S', 'H', 'A', 'R', 'D'};

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

ShardWriter::ShardWriter(const std::string& path, int32_t vocab_size, int32_t eos_id)
    : path_(path) {
  if (vocab_size <= 0) Fail(path, ": shard vocab size must be positive, got ", vocab_size);
  if (eos_id >= vocab_size) {
    Fail(path, ": EOS id ", eos_id, " is not below the vocab size ", vocab_size);
  }
  header_.vocab_size = static_cast<uint32_t>(vocab_size);
  header_.token_width = vocab_size <= 65536 ? 2 : 4;
  header_.eos_id = eos_id < 0 ? kShardNoEos : static_cast<uint32_t>(eos_id);
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) Fail(path, ": cannot create the shard file: ", std::strerror(errno));
  uint8_t zeros[kShardHeaderBytes] = {};
  if (std::fwrite(zeros, 1, sizeof zeros, file_) != sizeof zeros) {
    Fail(path, ": write failed: ", std::strerror(errno));
  }
}

ShardWriter::~ShardWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(path_.c_str());
  }
}

void ShardWriter::Put(int32_t id) {
  uint8_t bytes[4];
  PutU32(bytes, static_cast<uint32_t>(id));
  if (std::fwrite(bytes, 1, header_.token_width, file_) != header_.token_width) {
    Fail(path_, ": write failed: ", std::strerror(errno));
  }
  ++header_.n_tokens;
}

void ShardWriter::AddDocument(std::span<const int32_t> ids) {
  WHALE_ASSERT(file_ != nullptr, "AddDocument after Finish");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<uint32_t>(ids[i]) >= header_.vocab_size) {
      Fail(path_, ": document ", header_.n_documents, " token ", i, " has id ", ids[i],
           ", expected an id in [0, ", header_.vocab_size, ")");
    }
    Put(ids[i]);
  }
  if (header_.eos_id != kShardNoEos) Put(static_cast<int32_t>(header_.eos_id));
  ++header_.n_documents;
}

void ShardWriter::Finish() {
  WHALE_ASSERT(file_ != nullptr, "Finish twice");
  uint8_t bytes[kShardHeaderBytes] = {};
  std::memcpy(bytes, kMagic, 8);
  PutU32(bytes + 8, header_.version);
  PutU32(bytes + 12, header_.token_width);
  PutU32(bytes + 16, header_.vocab_size);
  PutU32(bytes + 20, header_.eos_id);
  PutU64(bytes + 24, header_.n_tokens);
  PutU64(bytes + 32, header_.n_documents);
  bool ok = std::fseek(file_, 0, SEEK_SET) == 0 &&
            std::fwrite(bytes, 1, sizeof bytes, file_) == sizeof bytes;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) Fail(path_, ": writing the shard failed: ", std::strerror(errno));
}

TokenShard::TokenShard(const std::string& path)
    : path_(path), file_(std::make_unique<MappedFile>(path)) {
  auto bytes = file_->bytes();
  if (bytes.size() < kShardHeaderBytes) {
    Fail(path, ": not a token shard: ", bytes.size(), " bytes, expected at least a ",
         kShardHeaderBytes, "-byte header");
  }
  if (std::memcmp(bytes.data(), kMagic, 8) != 0) {
    Fail(path, ": not a token shard: the magic is not \"WHLSHARD\"");
  }
  const uint8_t* p = bytes.data();
  header_.version = GetU32(p + 8);
  header_.token_width = GetU32(p + 12);
  header_.vocab_size = GetU32(p + 16);
  header_.eos_id = GetU32(p + 20);
  header_.n_tokens = GetU64(p + 24);
  header_.n_documents = GetU64(p + 32);
  if (header_.version != kShardVersion) {
    Fail(path, ": shard version ", header_.version, " is not supported, expected ", kShardVersion);
  }
  if (header_.token_width != 2 && header_.token_width != 4) {
    Fail(path, ": shard token width ", header_.token_width, " is invalid, expected 2 or 4");
  }
  if (header_.vocab_size == 0) Fail(path, ": shard vocab size is 0");
  if (header_.eos_id != kShardNoEos && header_.eos_id >= header_.vocab_size) {
    Fail(path, ": shard EOS id ", header_.eos_id, " is not below the vocab size ",
         header_.vocab_size);
  }
  uint64_t payload = bytes.size() - kShardHeaderBytes;
  if (header_.n_tokens > payload / header_.token_width ||
      header_.n_tokens * header_.token_width != payload) {
    Fail(path, ": shard size mismatch: the header says ", header_.n_tokens, " tokens of ",
         header_.token_width, " bytes, the file holds ", payload, " bytes after the header");
  }
}

TokenShard::~TokenShard() = default;
TokenShard::TokenShard(TokenShard&&) noexcept = default;

void TokenShard::Read(int64_t begin, std::span<int32_t> out) const {
  int64_t count = static_cast<int64_t>(out.size());
  if (begin < 0 || begin > size() || count > size() - begin) {
    Fail(path_, ": token range [", begin, ", ", begin + count, ") is outside the shard's ", size(),
         " tokens");
  }
  const uint8_t* p = file_->bytes().data() + kShardHeaderBytes + begin * header_.token_width;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t id = header_.token_width == 2 ? static_cast<uint32_t>(p[2 * i] | (p[2 * i + 1] << 8))
                                           : GetU32(p + 4 * i);
    if (id >= header_.vocab_size) {
      Fail(path_, ": token ", begin + i, " has id ", id, ", not below the vocab size ",
           header_.vocab_size, " (corrupt shard)");
    }
    out[i] = static_cast<int32_t>(id);
  }
}

bool IsTokenShard(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return false;
  char magic[8] = {};
  bool is_shard = std::fread(magic, 1, 8, file) == 8 && std::memcmp(magic, kMagic, 8) == 0;
  std::fclose(file);
  return is_shard;
}

std::vector<std::string_view> SplitDocuments(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> documents;
  auto add = [&](std::string_view doc) {
    if (!doc.empty()) documents.push_back(doc);
  };
  if (separator.empty()) {
    add(text);
    return documents;
  }
  size_t pos = 0;
  while (true) {
    size_t at = text.find(separator, pos);
    if (at == std::string_view::npos) {
      add(text.substr(pos));
      return documents;
    }
    add(text.substr(pos, at - pos));
    pos = at + separator.size();
  }
}

ShardHeader WriteTextShard(const Tokenizer& tokenizer, const std::vector<std::string>& text_files,
                           const std::string& separator, int32_t eos_id,
                           const std::string& out_path, bool show_progress) {
  ShardWriter writer(out_path, tokenizer.vocab_size(), eos_id);
  std::unique_ptr<ProgressLine> progress;
  if (show_progress) {
    progress =
        std::make_unique<ProgressLine>("shard", static_cast<double>(text_files.size()), "files");
  }
  for (size_t f = 0; f < text_files.size(); ++f) {
    std::string text = ReadTextFile(text_files[f]);
    for (std::string_view doc : SplitDocuments(text, separator)) {
      std::vector<int32_t> ids;
      try {
        ids = tokenizer.Encode(doc, /*add_special_tokens=*/false);
      } catch (const Error& e) {
        Fail(text_files[f], ": ", e.what());
      }
      writer.AddDocument(ids);
    }
    if (progress) progress->Update(static_cast<double>(f + 1));
  }
  if (progress) progress->Finish();
  writer.Finish();
  return writer.header();
}

void FillRowFromWindow(std::span<const int32_t> window, std::optional<int32_t> eos_id, int64_t row,
                       TokenBatch& batch) {
  int64_t seq_len = batch.seq_len;
  WHALE_ASSERT(static_cast<int64_t>(window.size()) == seq_len + 1, "window ", window.size());
  int32_t* inputs = batch.inputs.data() + row * seq_len;
  int32_t* targets = batch.targets.data() + row * seq_len;
  int32_t* segments = batch.segments.data() + row * seq_len;
  int32_t segment = 0;
  for (int64_t i = 0; i < seq_len; ++i) {
    inputs[i] = window[i];
    targets[i] = window[i + 1];
    segments[i] = segment;
    if (eos_id && window[i] == *eos_id) {
      targets[i] = -1;
      ++segment;
    }
  }
}

ShardDataSource::ShardDataSource(const std::vector<std::string>& shard_paths,
                                 ShardSourceOptions options)
    : options_(options) {
  if (shard_paths.empty()) Fail("shard data source: no shard files given");
  for (const auto& path : shard_paths) {
    shards_.emplace_back(path);
    const ShardHeader& h = shards_.back().header();
    const ShardHeader& first = shards_.front().header();
    if (h.vocab_size != first.vocab_size || h.eos_id != first.eos_id) {
      Fail(path, ": shard vocab size ", h.vocab_size, " / EOS id ", h.eos_id, " differ from ",
           shards_.front().path(), "'s ", first.vocab_size, " / ", first.eos_id);
    }
  }
  vocab_size_ = shards_.front().header().vocab_size;
  uint32_t eos = shards_.front().header().eos_id;
  if (eos != kShardNoEos) eos_id_ = static_cast<int32_t>(eos);
  if (options_.isolate_documents && !eos_id_) {
    Fail(shard_paths.front(), ": document isolation needs an EOS id, the shard has none");
  }
}

ShardDataSource::~ShardDataSource() = default;

int64_t ShardDataSource::total_tokens() const {
  int64_t total = 0;
  for (const auto& shard : shards_) total += shard.size();
  return total;
}

std::pair<size_t, int64_t> ShardDataSource::WindowStart(int64_t index, int64_t window) const {
  // Number of window starts each shard offers: every offset when random, multiples of
  // window - 1 (consecutive windows share one token: the last target is the next first input).
  auto starts = [&](const TokenShard& shard) -> int64_t {
    if (shard.size() < window) return 0;
    int64_t room = shard.size() - window;
    return options_.random ? room + 1 : room / (window - 1) + 1;
  };
  int64_t total = 0;
  for (const auto& shard : shards_) total += starts(shard);
  if (total == 0) {
    Fail("shard data source: no shard holds a window of ", window, " tokens (seq_len + 1); ",
         "the largest has ", [&] {
           int64_t m = 0;
           for (const auto& s : shards_) m = std::max(m, s.size());
           return m;
         }());
  }
  uint64_t pick = options_.random
                      ? SplitMix64(options_.seed ^ SplitMix64(static_cast<uint64_t>(index))) %
                            static_cast<uint64_t>(total)
                      : static_cast<uint64_t>(index % total);
  int64_t k = static_cast<int64_t>(pick);
  for (size_t s = 0; s < shards_.size(); ++s) {
    int64_t n = starts(shards_[s]);
    if (k < n) return {s, options_.random ? k : k * (window - 1)};
    k -= n;
  }
  WHALE_ASSERT(false, "window ", index, " not located");
  return {0, 0};
}

void ShardDataSource::Next(TokenBatch& batch) {
  if (batch.n_seqs <= 0 || batch.seq_len <= 0) {
    Fail("shard data source: batch shape ", batch.n_seqs, " x ", batch.seq_len,
         " is invalid, expected positive n_seqs and seq_len");
  }
  size_t n = static_cast<size_t>(batch.n_seqs * batch.seq_len);
  batch.inputs.resize(n);
  batch.targets.resize(n);
  batch.segments.resize(n);
  window_.resize(static_cast<size_t>(batch.seq_len + 1));
  std::optional<int32_t> eos = options_.isolate_documents ? eos_id_ : std::nullopt;
  for (int64_t row = 0; row < batch.n_seqs; ++row) {
    auto [shard, offset] = WindowStart(position_++, batch.seq_len + 1);
    shards_[shard].Read(offset, window_);
    FillRowFromWindow(window_, eos, row, batch);
  }
}

std::string ShardDataSource::Describe() const {
  return Cat("shards: ", shards_.size(), " file(s), ", total_tokens(), " tokens, vocab ",
             vocab_size_, ", ", options_.random ? "random windows (seed " : "sequential windows",
             options_.random ? Cat(options_.seed, ")") : std::string(),
             options_.isolate_documents ? ", documents isolated" : "");
}

}  // namespace whale
