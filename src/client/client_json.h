// JSON shapes of the native API as the client reads them: session deltas, append replies and run
// event payloads. Parsing never throws: malformed replies are kDataLoss.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "llmsync/client.h"

namespace llmsync::client {

struct SessionDelta {
  std::uint64_t seq = 0;
  std::string head;
  std::vector<BranchTip> heads;
  std::vector<Node> nodes;
  bool more = false;
};

struct AppendReply {
  std::vector<std::string> ids;
  std::vector<std::uint64_t> seqs;
  std::vector<std::int64_t> n_tokens;
  std::string head;
  bool replayed = false;
};

Result<SessionDelta> ParseSessionDelta(const std::string& body);
Result<AppendReply> ParseAppendReply(const std::string& body);
// The run.usage payload (also the "usage" object of GET /v1/runs/{id} once the run finished).
Result<Cost> ParseCost(const std::string& json);
// A string field of a JSON object payload ("" when absent or not a string).
std::string StringField(const std::string& json, const char* key);

}  // namespace llmsync::client
