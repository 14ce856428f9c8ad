#include "remote/upstream_report.h"

namespace llmsync::remote {
namespace {

using Json = nlohmann::json;

std::optional<std::uint64_t> Count(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key)) return std::nullopt;
  const Json& v = obj[key];
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return std::nullopt;
}

bool ReadIds(const Json& v, std::vector<std::int32_t>* out) {
  if (!v.is_array()) return false;
  for (const Json& t : v) {
    if (!t.is_number_integer()) return false;
  }
  for (const Json& t : v) out->push_back(t.get<std::int32_t>());
  return true;
}

}  // namespace

std::optional<CacheReport> ReadCacheReport(const Json& body) {
  if (!body.is_object()) return std::nullopt;
  CacheReport r;
  const Json* usage = body.contains("usage") && body["usage"].is_object() ? &body["usage"] : nullptr;
  if (usage != nullptr) r.prompt_tokens = Count(*usage, "prompt_tokens");
  const Json* timings = body.contains("timings") && body["timings"].is_object() ? &body["timings"] : nullptr;
  std::optional<std::uint64_t> tokens_cached = Count(body, "tokens_cached");
  if (timings != nullptr) {
    if (std::optional<std::uint64_t> computed = Count(*timings, "prompt_n")) {
      // llama-server: prompt_n is what it prefilled; the rest of the prompt came from its cache.
      if (!r.prompt_tokens && tokens_cached) r.prompt_tokens = *computed + *tokens_cached;
      if (r.prompt_tokens) {
        r.cached_tokens = *r.prompt_tokens > *computed ? *r.prompt_tokens - *computed : 0;
        r.field = "timings.prompt_n";
        return r;
      }
    }
  }
  if (usage != nullptr && usage->contains("prompt_tokens_details") &&
      (*usage)["prompt_tokens_details"].is_object()) {
    if (std::optional<std::uint64_t> c = Count((*usage)["prompt_tokens_details"], "cached_tokens")) {
      r.cached_tokens = c;
      r.field = "usage.prompt_tokens_details.cached_tokens";
      return r;
    }
  }
  if (tokens_cached) {
    r.cached_tokens = r.prompt_tokens ? std::min(*tokens_cached, *r.prompt_tokens) : *tokens_cached;
    r.field = "tokens_cached";
    return r;
  }
  if (r.prompt_tokens) return r;  // a prompt count without any cache figure
  return std::nullopt;
}

CompletionPiece ReadCompletionPiece(const Json& chunk) {
  CompletionPiece p;
  if (!chunk.is_object()) return p;
  if (chunk.contains("error")) {
    const Json& e = chunk["error"];
    p.error = e.is_object() ? e.value("message", e.dump()) : e.dump();
    return p;
  }
  if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
    const Json& c = chunk["choices"][0];
    if (c.is_object()) {
      if (c.contains("text") && c["text"].is_string()) p.text = c["text"].get<std::string>();
      if (c.contains("token_ids")) p.has_token_ids = ReadIds(c["token_ids"], &p.token_ids);
      if (!p.has_token_ids && c.contains("tokens")) p.has_token_ids = ReadIds(c["tokens"], &p.token_ids);
      if (c.contains("finish_reason") && c["finish_reason"].is_string())
        p.finish_reason = c["finish_reason"].get<std::string>();
    }
  }
  if (!p.has_token_ids && chunk.contains("tokens")) p.has_token_ids = ReadIds(chunk["tokens"], &p.token_ids);
  return p;
}

}  // namespace llmsync::remote
