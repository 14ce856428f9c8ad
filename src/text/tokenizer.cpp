#include "text/tokenizer.h"

#include <cstdio>

#include "text/bpe/bpe.h"
#include "text/byte_unicode.h"
#include "text/spm.h"
#include "text/utf8.h"

namespace llmsync::text {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's "▁"

// What a normal (or unused / undefined) token decodes to.
std::string NormalPiece(VocabModel model, std::string_view text) {
  std::string piece;
  if (!IsValidUtf8(text)) {
    piece = text;  // not a spelling we can interpret; its bytes are the best answer
    return piece;
  }
  if (model == VocabModel::kBpe) {
    AppendByteLevelDecoded(text, &piece);
    return piece;
  }
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text.substr(pos, kSpaceMarker.size()) == kSpaceMarker) {
      piece.push_back(' ');
      pos += kSpaceMarker.size();
    } else {
      piece.push_back(text[pos++]);
    }
  }
  return piece;
}

std::string HexByte(std::uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", b);
  return buf;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)), matcher_(vocab_) {
  pieces_.resize(static_cast<std::size_t>(vocab_.Size()));
  for (TokenId id = 0; id < vocab_.Size(); ++id) {
    switch (vocab_.Type(id)) {
      case TokenType::kNormal:
      case TokenType::kUnused:
      case TokenType::kUndefined:
        pieces_[static_cast<std::size_t>(id)] = NormalPiece(vocab_.Model(), vocab_.Text(id));
        break;
      case TokenType::kByte:
        pieces_[static_cast<std::size_t>(id)] = std::string(1, static_cast<char>(*vocab_.ByteValue(id)));
        break;
      default:  // control, unknown and user-defined tokens decode to their text as stored
        pieces_[static_cast<std::size_t>(id)] = vocab_.Text(id);
        break;
    }
  }
  strips_space_prefix_ = vocab_.Model() == VocabModel::kSpm && vocab_.AddSpacePrefix();
}

Result<std::vector<TokenId>> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<TokenId> out;
  LLMSYNC_RETURN_IF_ERROR(EncodeAppend(text, options, &out));
  return out;
}

Status Tokenizer::EncodeAppend(std::string_view text, const EncodeOptions& options,
                               std::vector<TokenId>* out) const {
  if (text.size() > kMaxEncodeBytes) {
    return Status::ResourceExhausted("text of " + std::to_string(text.size()) + " bytes exceeds the " +
                                     std::to_string(kMaxEncodeBytes) + "-byte limit of one encode call");
  }
  if (std::optional<std::size_t> bad = FindInvalidUtf8(text)) {
    return Status::InvalidArgument("text is not valid UTF-8: byte " +
                                   HexByte(static_cast<std::uint8_t>(text[*bad])) + " at offset " +
                                   std::to_string(*bad));
  }
  const SpecialTokens& specials = vocab_.Specials();
  if (options.add_bos) {
    if (!specials.bos) return Status::InvalidArgument("add_bos: the vocabulary has no BOS token");
    out->push_back(*specials.bos);
  }
  std::vector<TextSegment> segments;
  matcher_.Partition(text, options.parse_special, options.match_user_defined, &segments);
  bool first = true;
  for (const TextSegment& segment : segments) {
    if (segment.IsToken()) {
      out->push_back(segment.token);
    } else {
      // A run after a matched token always starts a new SentencePiece "word", as in the model.
      LLMSYNC_RETURN_IF_ERROR(EncodeRun(segment.text, first ? options.space_prefix : true, out));
    }
    first = false;
  }
  if (options.add_eos) {
    if (!specials.eos) return Status::InvalidArgument("add_eos: the vocabulary has no EOS token");
    out->push_back(*specials.eos);
  }
  return Status::Ok();
}

Result<std::string> Tokenizer::Decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  std::string out;
  DecodeState state;
  for (TokenId id : ids) LLMSYNC_RETURN_IF_ERROR(DecodeAppend(id, options, &state, &out));
  return out;
}

Status Tokenizer::DecodeAppend(TokenId id, const DecodeOptions& options, DecodeState* state,
                               std::string* out) const {
  if (!vocab_.Contains(id)) {
    return Status::InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab_.Size()) + ")");
  }
  std::string_view piece = pieces_[static_cast<std::size_t>(id)];
  switch (vocab_.Type(id)) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      if (options.render_special) out->append(piece);
      state->at_run_start = true;
      return Status::Ok();
    case TokenType::kUserDefined:
      out->append(piece);
      state->at_run_start = true;
      return Status::Ok();
    case TokenType::kByte: break;
    default:
      if (state->at_run_start && strips_space_prefix_ && options.strip_space_prefix && !piece.empty() &&
          piece[0] == ' ') {
        piece.remove_prefix(1);
      }
      break;
  }
  out->append(piece);
  state->at_run_start = false;
  return Status::Ok();
}

Result<std::string_view> Tokenizer::TokenText(TokenId id) const {
  if (!vocab_.Contains(id)) {
    return Status::InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab_.Size()) + ")");
  }
  return vocab_.Text(id);
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const engine::GgufFile& file) {
  LLMSYNC_ASSIGN_OR_RETURN(std::string_view model, file.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    VocabDefaults defaults;
    defaults.add_bos = true;
    defaults.add_space_prefix = true;
    LLMSYNC_ASSIGN_OR_RETURN(Vocab vocab, Vocab::FromGguf(file, defaults));
    return SpmTokenizer::Create(std::move(vocab));
  }
  if (model == "gpt2") {
    std::string_view pre;
    if (file.Find("tokenizer.ggml.pre") != nullptr) {
      LLMSYNC_ASSIGN_OR_RETURN(pre, file.GetString("tokenizer.ggml.pre"));
    }
    LLMSYNC_ASSIGN_OR_RETURN(PreTokenizerSpec spec, FindPreTokenizerSpec(pre));
    VocabDefaults defaults;
    defaults.add_bos = spec.add_bos;
    LLMSYNC_ASSIGN_OR_RETURN(Vocab vocab, Vocab::FromGguf(file, defaults));
    return BpeTokenizer::Create(std::move(vocab), file, spec);
  }
  return Status::Unimplemented("tokenizer model '" + std::string(model) +
                               "' (tokenizer.ggml.model) is not supported; supported: gpt2, llama");
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizerFromFile(Env* env, const std::string& path) {
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::Open(env, path));
  Result<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(*file);
  if (!tokenizer.IsOk()) return tokenizer.GetStatus().WithContext(path);
  return tokenizer;
}

}  // namespace llmsync::text
