#include "text/vocab/vocab.h"

#include <algorithm>
#include <array>
#include <limits>

#include "base/logging.h"

namespace llmsync::text {
namespace {

constexpr std::string_view kPrefix = "tokenizer.ggml.";

std::string Key(std::string_view name) { return std::string(kPrefix) + std::string(name); }

// "<0xAB>" -> 0xAB.
std::optional<std::uint8_t> ParseByteTokenText(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return std::nullopt;
    }
  }
  return static_cast<std::uint8_t>(value);
}

// Reads an optional boolean key; a present key of another type is an error.
Result<std::optional<bool>> OptionalBool(const engine::GgufFile& file, std::string_view name) {
  const std::string key = Key(name);
  if (file.Find(key) == nullptr) return std::optional<bool>();
  LLMSYNC_ASSIGN_OR_RETURN(bool value, file.GetBool(key));
  return std::optional<bool>(value);
}

// The texts end-of-turn tokens carry when the file does not name one (llama.cpp's list).
constexpr std::array<std::string_view, 8> kEotTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek's fullwidth bars
};

}  // namespace

Result<Vocab> Vocab::FromGguf(const engine::GgufFile& file, const VocabDefaults& defaults) {
  Vocab vocab;
  LLMSYNC_ASSIGN_OR_RETURN(std::string_view model, file.GetString(Key("model")));
  if (model == "gpt2") {
    vocab.model_ = VocabModel::kBpe;
  } else if (model == "llama") {
    vocab.model_ = VocabModel::kSpm;
  } else {
    return Status::Unimplemented("tokenizer model '" + std::string(model) +
                                 "' is not supported (supported: gpt2, llama)");
  }
  if (file.Find(Key("pre")) != nullptr) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string_view pre, file.GetString(Key("pre")));
    vocab.pre_name_ = std::string(pre);
  }
  LLMSYNC_RETURN_IF_ERROR(vocab.ReadTokens(file));
  LLMSYNC_RETURN_IF_ERROR(vocab.ReadSpecials(file, defaults));
  return vocab;
}

Status Vocab::ReadTokens(const engine::GgufFile& file) {
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, file.GetStringArray(Key("tokens")));
  if (tokens.empty()) return Status::InvalidArgument(Key("tokens") + " is empty");
  if (tokens.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    return Status::InvalidArgument(Key("tokens") + " has too many entries");
  }
  const std::size_t n = tokens.size();

  scores_.assign(n, 0.0f);
  if (file.Find(Key("scores")) != nullptr) {
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<float> scores, file.GetFloatArray(Key("scores")));
    if (scores.size() < n) {
      return Status::InvalidArgument(Key("scores") + " has " + std::to_string(scores.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    scores.resize(n);
    scores_ = std::move(scores);
  }

  types_.assign(n, TokenType::kNormal);
  if (file.Find(Key("token_type")) != nullptr) {
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::int64_t> types, file.GetIntArray(Key("token_type")));
    if (types.size() < n) {
      return Status::InvalidArgument(Key("token_type") + " has " + std::to_string(types.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    for (std::size_t i = 0; i < n; ++i) {
      types_[i] = types[i] >= 0 && types[i] <= 6 ? static_cast<TokenType>(types[i]) : TokenType::kUndefined;
    }
  }

  texts_.reserve(n);
  for (std::string_view t : tokens) texts_.emplace_back(t);
  byte_values_.assign(n, -1);
  byte_tokens_.assign(256, -1);
  index_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string& text = texts_[i];
    if (text.empty()) continue;  // never matched; decodes to nothing
    auto [it, inserted] = index_.emplace(std::string_view(text), id);
    if (!inserted) {
      return Status::InvalidArgument("duplicate token text in " + Key("tokens") + ": ids " +
                                     std::to_string(it->second) + " and " + std::to_string(id));
    }
    if (std::optional<std::uint8_t> b = ParseByteTokenText(text)) {
      if (types_[i] == TokenType::kByte) byte_values_[i] = *b;
      byte_tokens_[*b] = id;
    } else if (types_[i] == TokenType::kByte) {
      types_[i] = TokenType::kNormal;  // a "byte" token that does not spell one is plain text
    }
  }
  return Status::Ok();
}

Status Vocab::ReadSpecials(const engine::GgufFile& file, const VocabDefaults& defaults) {
  const std::pair<std::string_view, std::optional<TokenId>*> ids[] = {
      {"bos_token_id", &specials_.bos},         {"eos_token_id", &specials_.eos},
      {"eot_token_id", &specials_.eot},         {"eom_token_id", &specials_.eom},
      {"unknown_token_id", &specials_.unk},     {"seperator_token_id", &specials_.sep},
      {"padding_token_id", &specials_.pad},     {"mask_token_id", &specials_.mask},
      {"fim_pre_token_id", &specials_.fim_pre}, {"fim_suf_token_id", &specials_.fim_suf},
      {"fim_mid_token_id", &specials_.fim_mid}, {"fim_pad_token_id", &specials_.fim_pad},
      {"fim_rep_token_id", &specials_.fim_rep}, {"fim_sep_token_id", &specials_.fim_sep},
  };
  for (const auto& [name, slot] : ids) {
    const std::string key = Key(name);
    if (file.Find(key) == nullptr) continue;
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t id, file.GetUint(key));
    if (id >= texts_.size()) {
      LLMSYNC_LOG(kWarning) << key << " = " << id << " is outside the vocabulary of " << texts_.size()
                            << " tokens; ignored";
      continue;
    }
    *slot = static_cast<TokenId>(id);
  }
  if (!specials_.eot) {
    for (std::string_view text : kEotTexts) {
      if (std::optional<TokenId> id = Find(text)) {
        specials_.eot = id;
        break;
      }
    }
  }

  // The stop set: the named ids, and control tokens with an end text (llama.cpp takes any token
  // with such a text and promotes it to control; we keep the file's types and take control ones).
  for (const std::optional<TokenId>& id : {specials_.eos, specials_.eot, specials_.eom}) {
    if (id) end_of_generation_.push_back(*id);
  }
  for (std::string_view text : kEotTexts) {
    if (std::optional<TokenId> id = Find(text); id && Type(*id) == TokenType::kControl)
      end_of_generation_.push_back(*id);
  }
  if (std::optional<TokenId> id = Find("<|eom_id|>"); id && Type(*id) == TokenType::kControl)
    end_of_generation_.push_back(*id);
  std::sort(end_of_generation_.begin(), end_of_generation_.end());
  end_of_generation_.erase(std::unique(end_of_generation_.begin(), end_of_generation_.end()),
                           end_of_generation_.end());

  LLMSYNC_ASSIGN_OR_RETURN(std::optional<bool> add_bos, OptionalBool(file, "add_bos_token"));
  LLMSYNC_ASSIGN_OR_RETURN(std::optional<bool> add_eos, OptionalBool(file, "add_eos_token"));
  LLMSYNC_ASSIGN_OR_RETURN(std::optional<bool> add_space_prefix, OptionalBool(file, "add_space_prefix"));
  LLMSYNC_ASSIGN_OR_RETURN(std::optional<bool> remove_ws, OptionalBool(file, "remove_extra_whitespaces"));
  // A file that asks for BOS/EOS must name it; a family default without the id is dropped.
  if (add_bos.value_or(false) && !specials_.bos) {
    return Status::InvalidArgument(Key("add_bos_token") + " is true but " + Key("bos_token_id") +
                                   " is unset");
  }
  if (add_eos.value_or(false) && !specials_.eos) {
    return Status::InvalidArgument(Key("add_eos_token") + " is true but " + Key("eos_token_id") +
                                   " is unset");
  }
  specials_.add_bos = add_bos.value_or(defaults.add_bos) && specials_.bos.has_value();
  specials_.add_eos = add_eos.value_or(defaults.add_eos) && specials_.eos.has_value();
  add_space_prefix_ = add_space_prefix.value_or(defaults.add_space_prefix);
  remove_extra_whitespaces_ = remove_ws.value_or(false);
  return Status::Ok();
}

std::optional<std::uint8_t> Vocab::ByteValue(TokenId id) const {
  const std::int16_t b = byte_values_[static_cast<std::size_t>(id)];
  if (b < 0) return std::nullopt;
  return static_cast<std::uint8_t>(b);
}

std::optional<TokenId> Vocab::Find(std::string_view text) const {
  auto it = index_.find(text);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::optional<TokenId> Vocab::ByteToken(std::uint8_t b) const {
  if (byte_tokens_[b] < 0) return std::nullopt;
  return byte_tokens_[b];
}

bool Vocab::IsEndOfGeneration(TokenId id) const {
  return std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), id);
}

}  // namespace llmsync::text
