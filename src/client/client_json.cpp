#include "client/client_json.h"

#include <nlohmann/json.hpp>

namespace llmsync::client {
namespace {

using Json = nlohmann::json;

std::string Str(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

template <typename T>
T Num(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return T{};
  return j[key].get<T>();
}

}  // namespace

Result<SessionDelta> ParseSessionDelta(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("nodes") || !j["nodes"].is_array()) {
    return Status::DataLoss("bad session reply: " + body.substr(0, 200));
  }
  SessionDelta d;
  d.seq = Num<std::uint64_t>(j, "seq");
  d.head = Str(j, "head");
  d.more = j.value("more", false);
  if (j.contains("heads") && j["heads"].is_array()) {
    for (const Json& h : j["heads"]) {
      if (!h.is_object()) continue;
      d.heads.push_back({Str(h, "id"), Num<std::uint64_t>(h, "seq"), Num<std::int64_t>(h, "depth")});
    }
  }
  for (const Json& n : j["nodes"]) {
    if (!n.is_object() || !n.contains("id")) return Status::DataLoss("bad node in session reply");
    Node node;
    node.id = Str(n, "id");
    node.parent = Str(n, "parent");
    node.seq = Num<std::uint64_t>(n, "seq");
    node.depth = Num<std::int64_t>(n, "depth");
    node.kind = Str(n, "kind");
    node.text = Str(n, "text");
    node.n_tokens = Num<std::int64_t>(n, "n_tokens");
    d.nodes.push_back(std::move(node));
  }
  return d;
}

Result<AppendReply> ParseAppendReply(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("nodes") || !j["nodes"].is_array()) {
    return Status::DataLoss("bad append reply: " + body.substr(0, 200));
  }
  AppendReply r;
  r.head = Str(j, "head");
  r.replayed = j.value("replayed", false);
  for (const Json& n : j["nodes"]) {
    if (!n.is_object()) return Status::DataLoss("bad node in append reply");
    r.ids.push_back(Str(n, "id"));
    r.seqs.push_back(Num<std::uint64_t>(n, "seq"));
    r.n_tokens.push_back(Num<std::int64_t>(n, "n_tokens"));
  }
  return r;
}

Result<Cost> ParseCost(const std::string& json) {
  Json j = Json::parse(json, nullptr, false);
  if (!j.is_object() || !j.contains("prompt_tokens")) return Status::DataLoss("bad cost report");
  Cost c;
  c.prompt_tokens = Num<std::int64_t>(j, "prompt_tokens");
  if (j.contains("cached_tokens") && j["cached_tokens"].is_object()) {
    c.cached_ram = Num<std::int64_t>(j["cached_tokens"], "ram");
    c.cached_disk = Num<std::int64_t>(j["cached_tokens"], "disk");
  }
  c.recomputed = Num<std::int64_t>(j, "recomputed_tokens");
  c.generated = Num<std::int64_t>(j, "generated_tokens");
  c.request_bytes = Num<std::uint64_t>(j, "request_bytes");
  c.stateless_equivalent_bytes = Num<std::uint64_t>(j, "stateless_equivalent_bytes");
  c.ttft_ms = Num<double>(j, "ttft_ms");
  c.decode_tokens_per_s = Num<double>(j, "decode_tokens_per_s");
  return c;
}

std::string StringField(const std::string& json, const char* key) {
  Json j = Json::parse(json, nullptr, false);
  if (!j.is_object()) return "";
  return Str(j, key);
}

}  // namespace llmsync::client
