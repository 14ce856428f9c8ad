// `llmsync demo`: the first command a newcomer runs. Makes the demo model, starts an embedded
// server, plays a coding agent's session (demo_script.h: a long system prompt and tool list, 20+
// turns, a dropped stream that resumes with Last-Event-ID, and a branch), and prints what each turn
// cost against a stateless client that resends the whole history. A temporary data directory is
// removed at the end.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "base/env.h"
#include "base/logging.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "cli/demo_script.h"
#include "client/http_client.h"

namespace llmsync::cli {
namespace {

// The agent session grows past 4,096 tokens; the demo model's context holds 16,384.
constexpr std::int64_t kDemoContext = 16384;

struct DemoFlags {
  std::string model;
  std::string data_dir;
  std::int32_t max_tokens = 24;
  int threads = 0;
};

struct Row {
  std::string label;
  client::Cost cost;
  std::uint64_t bytes_sent = 0;
};

void PrintTable(const std::vector<Row>& rows) {
  std::printf("\n%-4s  %-26s  %7s  %8s  %6s  %10s  %10s  %8s\n", "turn", "what", "prompt", "computed",
              "cached", "bytes sent", "stateless", "ttft ms");
  std::uint64_t sent = 0;
  std::uint64_t stateless = 0;
  std::int64_t prompt = 0;
  std::int64_t computed = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::printf("%-4zu  %-26s  %7lld  %8lld  %6lld  %10llu  %10llu  %8.1f\n", i + 1, r.label.c_str(),
                static_cast<long long>(r.cost.prompt_tokens), static_cast<long long>(r.cost.recomputed),
                static_cast<long long>(r.cost.Cached()), static_cast<unsigned long long>(r.bytes_sent),
                static_cast<unsigned long long>(r.cost.stateless_equivalent_bytes), r.cost.ttft_ms);
    sent += r.bytes_sent;
    stateless += r.cost.stateless_equivalent_bytes;
    prompt += r.cost.prompt_tokens;
    computed += r.cost.recomputed;
  }
  std::printf(
      "\n%zu turns. Prompt tokens: %lld in all, %lld computed (only what was new), %lld from cache.\n",
      rows.size(), static_cast<long long>(prompt), static_cast<long long>(computed),
      static_cast<long long>(prompt - computed));
  std::printf("A stateless server computes all %lld: %.1fx the work.\n", static_cast<long long>(prompt),
              computed > 0 ? static_cast<double>(prompt) / static_cast<double>(computed) : 0.0);
  std::printf("total bytes sent %s, a stateless client would have sent %s: %.1fx less with sync.\n",
              FormatBytes(sent).c_str(), FormatBytes(stateless).c_str(),
              sent > 0 ? static_cast<double>(stateless) / static_cast<double>(sent) : 0.0);
}

// A message's first line, with "..." when there is more: the transcript stays readable.
std::string FirstLine(const std::string& text) {
  std::size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl) + " ...";
}

class Demo {
 public:
  Demo(client::Client* c, const DemoFlags& flags) : client_(c), flags_(flags) {}

  Status Run() {
    LLMSYNC_RETURN_IF_ERROR(client_->CreateSession());
    std::cout << "session " << client_->SessionId() << "\n";
    std::cout << "\n[system prompt: " << DemoSystemPrompt().size() << " bytes, an agent with 10 tools]\n";
    const std::vector<DemoTurn>& turns = DemoMainTurns();
    std::string branch_parent;  // the parent of the message the branch edits
    for (std::size_t i = 0; i < turns.size(); ++i) {
      const DemoTurn& t = turns[i];
      if (i == kDemoBranchTurn) branch_parent = client_->Head();
      if (i == kDemoDroppedTurn) {
        LLMSYNC_RETURN_IF_ERROR(DroppedTurn(std::string(t.label) + " (dropped)", std::string(t.text)));
        continue;
      }
      std::vector<client::NewNode> nodes;
      if (i == 0) nodes.push_back({"system", std::string(DemoSystemPrompt())});
      nodes.push_back({"user", std::string(t.text)});
      LLMSYNC_RETURN_IF_ERROR(Turn(std::string(t.label), "", nodes));
    }
    std::cout << "\n-- branch: editing turn " << kDemoBranchTurn + 1
              << "'s message (a new branch; nothing is rewritten)\n";
    std::string parent = branch_parent;
    for (const DemoTurn& t : DemoBranchTurns()) {
      LLMSYNC_RETURN_IF_ERROR(Turn(std::string(t.label), parent, {{"user", std::string(t.text)}}));
      parent = "";
    }
    LLMSYNC_RETURN_IF_ERROR(client_->Sync());
    std::cout << "\nthe session now has " << client_->NodeCount() << " nodes on " << client_->Heads().size()
              << " branches\n";
    PrintTable(rows_);
    return Status::Ok();
  }

 private:
  client::RunOptions Options() const {
    client::RunOptions ro;
    ro.max_tokens = flags_.max_tokens;
    ro.seed = 42 + rows_.size();
    return ro;
  }

  Status Turn(const std::string& label, const std::string& parent,
              const std::vector<client::NewNode>& nodes) {
    std::cout << "\n> " << FirstLine(nodes.back().text) << "\n";
    auto print = [](std::string_view t) { std::cout << t << std::flush; };
    LLMSYNC_ASSIGN_OR_RETURN(TurnResult r, RunTurn(*client_, parent, nodes, Options(), print));
    std::cout << "\n";
    return Record(label, r.run, r.bytes_sent);
  }

  Status Record(const std::string& label, const client::RunResult& run, std::uint64_t bytes_sent) {
    if (run.status != "succeeded") return Status::Internal("run " + run.run_id + " ended " + run.status);
    if (!run.cost) return Status::Internal("run " + run.run_id + " reported no cost");
    std::cout << "[cost] " << CostLine(*run.cost, bytes_sent) << "\n";
    rows_.push_back({label, *run.cost, bytes_sent});
    return Status::Ok();
  }

  // Reads the run's stream on a raw connection, hangs up after a few tokens, then resumes through
  // the client with Last-Event-ID and checks the pieces add up to the stored reply.
  Status DroppedTurn(const std::string& label, const std::string& text) {
    std::cout << "\n> " << FirstLine(text) << "\n";
    std::uint64_t before = client_->BytesSent();
    LLMSYNC_ASSIGN_OR_RETURN(client::AppendResult appended,
                             client_->Append(client_->Head(), {{"user", text}}));
    client::RunOptions ro = Options();
    ro.from = appended.head;
    LLMSYNC_ASSIGN_OR_RETURN(std::string run_id, client_->StartRun(ro));

    client::HttpClient raw(client_->Options().host, client_->Options().port);
    std::string first_part;
    std::uint64_t last_id = 0;
    int tokens = 0;
    int status = 0;
    const int cut_after = std::max(1, flags_.max_tokens / 3);
    LLMSYNC_RETURN_IF_ERROR(raw.Stream(
        "/v1/runs/" + run_id + "/events", {},
        [&](const client::SseEvent& e) {
          last_id = std::strtoull(e.id.c_str(), nullptr, 10);
          if (e.event != "token") return true;
          first_part += client::TokenEventText(e.data);
          return ++tokens < cut_after;  // false closes the connection mid-run
        },
        &status));
    std::cout << first_part << std::flush;
    std::cout << " [connection dropped after event " << last_id
              << "; resuming with Last-Event-ID: " << last_id << "] " << std::flush;
    client::FollowCallbacks cb;
    cb.on_token = [](std::string_view t) { std::cout << t << std::flush; };
    LLMSYNC_ASSIGN_OR_RETURN(client::RunResult rest, client_->FollowRun(run_id, cb, last_id));
    std::cout << "\n";
    LLMSYNC_RETURN_IF_ERROR(client_->Sync());
    const client::Node* stored = client_->Find(rest.node_id);
    bool same = stored != nullptr && stored->text == first_part + rest.text;
    std::cout << "resumed: " << tokens << " tokens before the drop + " << rest.tokens
              << " after = " << tokens + rest.tokens << "; the stored reply "
              << (same ? "matches them exactly (nothing lost or repeated)" : "DIFFERS") << "\n";
    if (!same) return Status::Internal("the resumed stream does not match the stored reply");
    return Record(label, rest, client_->BytesSent() - before);
  }

  client::Client* client_;
  DemoFlags flags_;
  std::vector<Row> rows_;
};

int RunDemo(const DemoFlags& flags) {
  if (GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);
  EmbeddedOptions eo;
  eo.model_path = flags.model;
  if (eo.model_path.empty()) {
    eo.model_path = DefaultDataDir() + "/models/demo.gguf";
    std::cout << api::kDemoModelNotice << "\ndemo model: " << eo.model_path << "\n";
    Status s = api::EnsureDemoModel(Env::Default(), eo.model_path);
    if (!s.IsOk()) {
      std::cerr << "llmsync demo: " << s.ToString() << "\n";
      return 1;
    }
  }
  const bool temporary = flags.data_dir.empty();
  auto dir = temporary ? MakeTempDir("demo") : Result<std::string>(flags.data_dir);
  if (!dir.IsOk()) {
    std::cerr << "llmsync demo: " << dir.GetStatus().ToString() << "\n";
    return 1;
  }
  eo.data_dir = *dir;
  eo.engine_threads = flags.threads;
  eo.max_context = kDemoContext;
  Status s = [&]() -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddedServer> server, EmbeddedServer::Start(eo));
    std::cout << "embedded server on " << server->Url() << ", data in " << *dir
              << (temporary ? " (removed at the end)" : "") << "\n";
    client::ClientOptions options;
    options.port = server->Port();
    client::Client c(options);
    Demo demo(&c, flags);
    return demo.Run();
  }();  // the server stops here, before its directory goes
  if (temporary) {
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
    if (ec) std::cerr << "llmsync demo: cannot remove " << *dir << ": " << ec.message() << "\n";
  }
  if (!s.IsOk()) {
    std::cerr << "llmsync demo: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void AddDemoCommand(CLI::App& app, CliState& state) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* demo = app.add_subcommand(
      "demo", "An agent session on the demo model: sync, a resumed stream, a branch, costs");
  demo->add_option("--model", flags->model, "GGUF model (default: the demo model, made once)");
  demo->add_option("--data-dir", flags->data_dir, "Server data directory (default: a fresh temp directory)");
  demo->add_option("--max-tokens", flags->max_tokens, "Tokens per reply")->check(CLI::Range(3, 4096));
  demo->add_option("--threads", flags->threads, "Engine threads")->check(CLI::PositiveNumber);
  demo->callback([flags, &state] { state.exit_code = RunDemo(*flags); });
}

}  // namespace llmsync::cli
