// ConversationIndex: places stateless OpenAI requests on the session tree, so that a client that
// re-sends its whole history gets the prefix it already computed from the cache.
//
// Every tenant has one OpenAI session per model, with a deterministic id (SHA-256 of the server's
// secret, tenant and model fingerprint: not computable from public data), created on first use.
// All of the tenant's chat completions and Responses without previous_response_id live in that one
// tree: conversations that share a system prompt share its node, and a resent history walks down
// the tree message by message. One tree per tenant (rather than one session per conversation)
// gives the most node reuse — any two requests share the nodes of their common message prefix —
// and the KV radix index shares the tokens beneath.
//
// Matching is by content, not by recomputing ids: the index keeps, per (session, parent), the
// children's kind, tool metadata and a digest of their text. Text (not frozen tokens) is what a
// client re-sends; an assistant node written by a run holds generation prompt + sampled tokens,
// which no re-tokenization of its text would reproduce, yet the client's copy of that message must
// match it. The index is filled from the store (DiffSince from the last seq it saw) before every
// placement, so nodes appended by runs, the native API or an earlier process are all found.
//
// When the request leaves the tree under a node that already has children, the placement reports
// a divergence: the message index, and the character (code point) and byte offset where the
// message first differs from the closest existing child of the same kind (longest common prefix).
// Children of other kinds are other conversations, not this message changed: no report.
//
// Compacted histories: a summary node names the last node it folds (api/compaction.h). When the
// walk reaches such a node and the request goes on, it continues under the summary (the
// compacted branch holds copies of the turns after the folded ones, then the turns run there),
// so a client that re-sends its whole original history lands on the compacted branch and its
// cached prefix instead of compacting again; the deepest such walk wins.
//
// Thread safety: all methods are safe for concurrent use; one mutex guards the maps.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/openai/openai_messages.h"
#include "api/server_context.h"
#include "api/tools/tool_format.h"
#include "api/tools/tool_template.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::api {

// What a re-sent history does with the reasoning of earlier turns (docs/PROTOCOL.md,
// "reasoning_history"). kKeep: a re-sent assistant message matches the node the run wrote, whose
// tokens hold the reasoning as generated, so the next prompt is the previous one plus the new
// messages (a cache hit). kStrip (template-faithful): it never matches a node with reasoning; the
// message is appended as the template renders it (no reasoning), a branch from that turn on.
enum class ReasoningHistory { kKeep, kStrip };

struct MessageDivergence {
  std::size_t message_index = 0;
  std::size_t char_offset = 0;  // code points into the message text
  std::size_t byte_offset = 0;
  Id node;  // the existing node the message was compared to
};

// A continuation that this tool list's session lacks but another list's session holds: the tool
// list changed between turns, and `tool` names the first tool that differs.
struct ToolsDivergence {
  std::string tool;
  std::size_t index = 0;  // its position in the request's list (in the earlier list for "removed")
  std::string change;     // "changed" | "added" | "removed" | "moved"
  Id session;             // the session of the earlier list
};

struct Placement {
  Id session;
  Id node;                          // the last node of the request's path (a run starts here)
  std::size_t reused_nodes = 0;     // nodes that already existed
  std::size_t appended_nodes = 0;   // nodes this request added
  std::uint64_t reused_tokens = 0;  // frozen tokens of the reused nodes
  std::optional<MessageDivergence> divergence;
  std::vector<session::Node> path;  // root first, `node` last
  ReasoningHistory reasoning_history = ReasoningHistory::kKeep;
  std::size_t reasoning_turns = 0;     // earlier turns whose reasoning was kept (keep) or stripped
  std::uint64_t reasoning_tokens = 0;  // the tokens of that reasoning, kept in or left out of the prompt
  std::optional<ToolsDivergence> tools_divergence;
  Id summary;  // the summary the walk continued under, the last one (zero: the request's own history)
};

class ConversationIndex {
 public:
  // REQUIRES: ctx outlives the index; its components are set.
  // `family` parses the tool calls in assistant nodes written by runs (see Place).
  ConversationIndex(ServerContext* ctx, ToolFamily family) : ctx_(ctx), family_(family) {}

  // The tenant's OpenAI session, created when missing. `tools` (ToolListDigest; zero for none)
  // selects one session per distinct tool list: every node of a session is frozen with the same
  // tools, so its prefix renders the same tokens on every turn.
  Result<Id> SessionFor(const std::string& tenant, const Id& tools = Id());
  // Walks `drafts` down from `parent` (zero: the root) in `session`, reusing matching nodes and
  // appending the rest (frozen with the session's conversation and `tools`, the template's tools
  // variable). Appends never move the head.
  // An assistant node a run wrote holds the model's own call markup; the client re-sends it as an
  // assistant message with tool_calls (or Responses function_call items), whose drafts are an
  // optional assistant draft and tool_call drafts. Such a group matches the node when its calls
  // (call id, name, arguments) are the ones the views parsed from the node's text, so the whole
  // previous prompt, generated tokens included, is reused.
  // `reasoning` decides whether such a match may reuse a node whose text holds reasoning (a
  // re-sent assistant message matches a run's node by its parsed content, or its calls).
  // `dry_run`: nothing is appended; the path ends with the unappended nodes (frozen, no ids).
  Result<Placement> Place(const std::string& tenant, const Id& session, const Id& parent,
                          std::vector<MessageDraft> drafts,
                          const text::jinja::Value& tools = text::jinja::Value::None(),
                          ReasoningHistory reasoning = ReasoningHistory::kKeep, bool dry_run = false);
  // Records the tool list of a tool session (every session SessionFor returns, the no-tools one
  // with an empty list): a continuation placed in one session that another of the tenant's
  // sessions holds further is reported as a ToolsDivergence naming the first differing tool.
  // Kept in memory: lists this process has not seen are not compared.
  void RememberTools(const std::string& tenant, const Id& session, std::vector<ToolDigest> tools);
  // The first difference between two tool lists (nullopt when equal).
  static std::optional<ToolsDivergence> ToolListChange(const std::vector<ToolDigest>& before,
                                                       const std::vector<ToolDigest>& now);
  // The digest of calls as a client re-sends them: (call id, name, arguments) per call.
  static Id CallsDigest(const std::vector<std::array<std::string, 3>>& calls);

 private:
  struct Child {
    Id id;
    session::NodeKind kind;
    Id digest;   // of tool_name, call_id and text
    Id calls;    // assistant nodes with parsed tool calls: CallsDigest of them (zero otherwise)
    Id content;  // assistant nodes with reasoning and no calls: Digest of the parsed content
    std::uint64_t reasoning_tokens = 0;  // the node's reasoning, tokenized (0: none)
  };
  struct SessionIndex {
    std::uint64_t seen_seq = 0;
    std::unordered_map<Id, std::vector<Child>> children;  // parent (zero: root) -> children
    std::unordered_map<Id, std::vector<Id>> summaries;    // last folded node -> summaries folding to it
  };

  Status CatchUp(const std::string& tenant, const Id& session);
  // The child `drafts[matched]` (with the tool_call drafts after it) matches, or null;
  // `consumed` drafts it takes; `by_content` a node that matches only by parsed content or calls
  // (a node with reasoning, which `keep` takes and `strip` does not).
  static const Child* MatchStep(const std::vector<Child>& kids, const std::vector<MessageDraft>& drafts,
                                std::size_t matched, bool keep, std::size_t* consumed,
                                const Child** by_content);
  // How many drafts match from the root (read-only), going on under summaries (the deepest walk
  // counts). REQUIRES: mu_ held. `from` drafts are taken as matched up to node `start`;
  // `jump_at_start` false: not under the summaries that fold to `start` itself.
  struct Walk {
    bool under_summary = false;  // the deepest walk went on under a summary
    bool at_leaf = false;        // the walk without summaries ended at a node without children
  };
  static std::size_t MatchedDrafts(SessionIndex& index, const std::vector<MessageDraft>& drafts,
                                   std::size_t from = 0, const Id& start = Id(), bool jump_at_start = true,
                                   Walk* walk = nullptr);
  // The summary to continue under at `at` with drafts[matched...] left: the one linked to `at`
  // whose walk matches the most drafts (at least one), when that is at least as many as going on
  // past `at` (which may reach a later fold), or when it matches every copy on its branch (the
  // original's later turns are then appended there); zero when none. REQUIRES: mu_ held.
  static Id CompactedAt(SessionIndex& index, const Id& at, const std::vector<MessageDraft>& drafts,
                        std::size_t matched);
  // A request that continues `path` (previous_response_id): its copy on the newest compacted
  // branch that folded a prefix of it and copied the rest, else its last node. REQUIRES: mu_ held.
  static Id CompactedCopy(SessionIndex& index, const std::vector<session::Node>& path, Id* summary);
  Status FindToolsDivergence(const std::string& tenant, const Id& session,
                             const std::vector<MessageDraft>& drafts, std::size_t matched, Placement* out);
  static Id Digest(const session::NodeContent& content);
  Result<std::optional<MessageDivergence>> Compare(const std::string& tenant, const Id& session,
                                                   const std::vector<Child>& children,
                                                   const MessageDraft& message);

  ServerContext* ctx_;
  ToolFamily family_;
  std::mutex mu_;
  std::unordered_map<Id, SessionIndex> sessions_;  // GUARDED_BY(mu_)
  struct ToolList {
    std::string tenant;
    std::vector<ToolDigest> tools;
    std::uint64_t order = 0;  // first seen: on a tie the oldest list (the conversation's own) wins
  };
  std::unordered_map<Id, ToolList> tool_lists_;  // GUARDED_BY(mu_)
  std::uint64_t next_order_ = 0;                 // GUARDED_BY(mu_)
};

}  // namespace llmsync::api
