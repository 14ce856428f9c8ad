#include "session/node.h"

#include <array>

#include "base/sha256.h"

namespace llmsync::session {

namespace {

constexpr std::array<std::string_view, kNodeKindCount> kKindNames = {
    "system", "user", "assistant", "reasoning", "tool_call", "tool_result", "summary", "template"};

constexpr std::string_view kNodeDomain = "llmsync/node/v1";
constexpr std::string_view kTenantDomain = "llmsync/tenant-root/v1";

void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBytes(std::string& out, std::string_view bytes) {
  PutU64(out, bytes.size());
  out.append(bytes);
}

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool U8(std::uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U32(std::uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i)
      *v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool U64(std::uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(std::string* out) {
    std::uint64_t n = 0;
    if (!U64(&n) || n > in_.size()) return false;
    out->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  std::size_t Remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

}  // namespace

std::string_view NodeKindName(NodeKind kind) {
  auto index = static_cast<std::size_t>(kind);
  return index < kKindNames.size() ? kKindNames[index] : "unknown";
}

Result<NodeKind> ParseNodeKind(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<NodeKind>(i);
  }
  return Status::InvalidArgument("unknown node kind '" + std::string(name) + "'");
}

std::string_view VisibilityName(Visibility visibility) {
  switch (visibility) {
    case Visibility::kPublic: return "public";
    case Visibility::kHidden: return "hidden";
  }
  return "unknown";
}

Result<Visibility> ParseVisibility(std::string_view name) {
  if (name == "public") return Visibility::kPublic;
  if (name == "hidden") return Visibility::kHidden;
  return Status::InvalidArgument("unknown visibility '" + std::string(name) + "'");
}

std::string EncodeContent(const NodeContent& content) {
  std::string out;
  out.reserve(2 + 8 + content.text.size() + 8 + 4 * content.tokens.size() + 16 + content.tool_name.size() +
              content.call_id.size());
  out.push_back(static_cast<char>(content.kind));
  out.push_back(static_cast<char>(content.visibility));
  PutBytes(out, content.text);
  PutU64(out, content.tokens.size());
  for (TokenId t : content.tokens) {
    auto v = static_cast<std::uint32_t>(t);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  PutBytes(out, content.tool_name);
  PutBytes(out, content.call_id);
  return out;
}

Result<NodeContent> DecodeContent(std::string_view bytes) {
  ByteReader r(bytes);
  NodeContent c;
  std::uint8_t kind = 0;
  std::uint8_t visibility = 0;
  std::uint64_t n_tokens = 0;
  bool ok = r.U8(&kind) && r.U8(&visibility) && r.Bytes(&c.text) && r.U64(&n_tokens);
  ok = ok && kind < kNodeKindCount && visibility <= 1 && n_tokens <= r.Remaining() / 4;
  if (ok) {
    c.kind = static_cast<NodeKind>(kind);
    c.visibility = static_cast<Visibility>(visibility);
    c.tokens.resize(n_tokens);
    for (std::uint64_t i = 0; ok && i < n_tokens; ++i) {
      std::uint32_t v = 0;
      ok = r.U32(&v);
      c.tokens[i] = static_cast<TokenId>(v);
    }
  }
  ok = ok && r.Bytes(&c.tool_name) && r.Bytes(&c.call_id) && r.Remaining() == 0;
  if (!ok) return Status::DataLoss("malformed node content encoding");
  return c;
}

Id TenantRootId(std::string_view tenant) {
  Sha256 h;
  h.Update(kTenantDomain);
  h.UpdateU64(tenant.size());
  h.Update(tenant);
  return Id(h.Finish());
}

Id ComputeNodeId(const Id& chain_parent, const NodeContent& content) {
  Sha256 h;
  h.Update(kNodeDomain);
  h.Update(chain_parent.RawBytes());
  h.Update(EncodeContent(content));
  return Id(h.Finish());
}

Id NodeIdFor(std::string_view tenant, const Id& parent, const NodeContent& content) {
  return ComputeNodeId(parent.IsZero() ? TenantRootId(tenant) : parent, content);
}

}  // namespace llmsync::session
