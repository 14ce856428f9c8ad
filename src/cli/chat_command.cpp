// `llmsync chat`: an interactive REPL over the client library. Tokens stream as they arrive;
// Ctrl-C cancels the run in progress (POST cancel), not the program; slash commands move around
// the session tree. With piped stdin there are no prompts or banners, so it can be scripted.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/logging.h"
#include "cli/client_util.h"
#include "cli/commands.h"

namespace llmsync::cli {
namespace {

struct ChatFlags {
  std::string server;
  std::string session;
  std::string model;
  std::string data_dir;
  std::int32_t max_tokens = 128;
  double temperature = 0.8;
  std::uint64_t seed = 0;
};

// Watches SIGINT on its own thread and cancels the current run, if any.
class InterruptWatcher {
 public:
  explicit InterruptWatcher(const client::Client* c) : client_(c) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~InterruptWatcher() {
    stop_ = true;
    thread_.join();
  }
  void SetRun(const std::string& run) {
    std::lock_guard<std::mutex> lock(mu_);
    run_ = run;
  }

 private:
  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    timespec tick{0, 100 * 1000 * 1000};
    while (!stop_) {
      if (sigtimedwait(&set, nullptr, &tick) != SIGINT) continue;
      std::string run;
      {
        std::lock_guard<std::mutex> lock(mu_);
        run = run_;
      }
      if (run.empty()) {
        std::cerr << "\n(Ctrl-C cancels a reply in progress; /quit or Ctrl-D exits)\n";
        continue;
      }
      Status s = client_->CancelRun(run);
      if (!s.IsOk()) std::cerr << "\ncancel failed: " << s.Message() << "\n";
    }
  }

  const client::Client* client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string run_;
  std::thread thread_;
};

struct Totals {
  int turns = 0;
  client::Cost cost;
  std::uint64_t bytes_sent = 0;
};

class ChatRepl {
 public:
  ChatRepl(client::Client* c, const ChatFlags& flags, bool tty)
      : client_(c), flags_(flags), tty_(tty), watcher_(c) {}

  // Prints the branch the head is on: what a resumed session has said so far.
  void PrintHistory() const {
    std::vector<client::Node> path = client_->PathTo(client_->Head());
    std::cout << "-- session " << client_->SessionId().substr(0, 12) << ": " << path.size()
              << " messages on this branch, " << client_->Heads().size() << " branches\n";
    for (const client::Node& n : path) std::cout << n.kind << ": " << n.text << "\n";
    std::cout << "--\n";
  }

  int Run(bool resumed) {
    if (resumed) PrintHistory();
    if (tty_) {
      std::cout << "llmsync chat — session " << client_->SessionId().substr(0, 12)
                << ". /help for commands, Ctrl-C cancels a reply, Ctrl-D exits.\n";
    }
    std::string line;
    while (Prompt("> "), std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!Command(line)) return ExitCode();
      } else {
        Turn(client_->Head(), line);
      }
    }
    // End of input (Ctrl-D at the prompt) is a normal way out, like /quit.
    if (tty_) std::cout << "\n";
    std::cin.clear();
    return ExitCode();
  }

 private:
  // Failed turns (a transport or server error) make a scripted chat exit 1; leaving is otherwise 0.
  int ExitCode() const { return errors_ > 0 ? 1 : 0; }

  void Prompt(const char* text) const {
    if (tty_) std::cout << text << std::flush;
  }
  void Fail(const Status& s) {
    std::cout << "error: " << s.Message() << "\n";
    ++errors_;
  }

  client::RunOptions Options() {
    client::RunOptions ro;
    ro.max_tokens = flags_.max_tokens;
    ro.temperature = flags_.temperature;
    ro.seed = flags_.seed + static_cast<std::uint64_t>(totals_.turns);
    return ro;
  }

  void Report(const Result<TurnResult>& r) {
    watcher_.SetRun("");
    std::cout << "\n";
    if (!r.IsOk()) return Fail(r.GetStatus());
    if (r->run.status == "cancelled") std::cout << "[cancelled]\n";
    if (r->run.status == "failed") std::cout << "[failed: " << r->run.error << "]\n";
    if (!r->run.node_id.empty() && client_->Head() != r->run.node_id) {
      Status s = client_->SetHead(r->run.node_id);
      if (!s.IsOk()) Fail(s);
    }
    if (!r->run.cost) return;
    ++totals_.turns;
    const client::Cost& c = *r->run.cost;
    totals_.cost.prompt_tokens += c.prompt_tokens;
    totals_.cost.recomputed += c.recomputed;
    totals_.cost.cached_ram += c.cached_ram;
    totals_.cost.cached_disk += c.cached_disk;
    totals_.cost.generated += c.generated;
    totals_.cost.stateless_equivalent_bytes += c.stateless_equivalent_bytes;
    totals_.bytes_sent += r->bytes_sent;
    std::cout << "[cost] " << CostLine(c, r->bytes_sent) << "\n";
  }

  std::function<void(std::string_view)> Printer() {
    return [](std::string_view t) { std::cout << t << std::flush; };
  }

  // Streams a run; the watcher learns the run id as soon as the run exists.
  void Turn(const std::string& parent, const std::string& text) {
    client::RunOptions ro = Options();
    auto appended = client_->Append(parent, {{"user", text}});
    if (!appended.IsOk()) return Fail(appended.GetStatus());
    std::uint64_t append_bytes = appended->bytes_sent;
    Result<TurnResult> r = Stream(appended->head, ro);
    if (r.IsOk()) r->bytes_sent += append_bytes;
    Report(r);
  }

  Result<TurnResult> Stream(const std::string& from, client::RunOptions ro) {
    ro.from = from;
    std::uint64_t before = client_->BytesSent();
    LLMSYNC_ASSIGN_OR_RETURN(std::string run_id, client_->StartRun(ro));
    watcher_.SetRun(run_id);
    TurnResult out;
    out.user_node = from;
    client::FollowCallbacks cb;
    cb.on_token = Printer();
    LLMSYNC_ASSIGN_OR_RETURN(out.run, client_->FollowRun(run_id, cb));
    out.bytes_sent = client_->BytesSent() - before;
    LLMSYNC_RETURN_IF_ERROR(client_->Sync());
    return out;
  }

  // The last user node on the head's path, or nullptr.
  const client::Node* LastUser() const {
    std::vector<client::Node> path = client_->PathTo(client_->Head());
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      if (it->kind == "user") return client_->Find(it->id);
    }
    return nullptr;
  }

  // Returns false to quit.
  bool Command(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::string arg;
    std::getline(in >> std::ws, arg);
    if (cmd == "/quit" || cmd == "/exit") return false;
    if (cmd == "/help") {
      Help();
    } else if (cmd == "/branch" || cmd == "/branches") {
      Branches();
    } else if (cmd == "/switch") {
      Switch(arg);
    } else if (cmd == "/rewind") {
      Rewind(arg);
    } else if (cmd == "/regen") {
      const client::Node* user = LastUser();
      if (user == nullptr) {
        std::cout << "nothing to regenerate\n";
      } else {
        Report(Stream(user->id, Options()));
      }
    } else if (cmd == "/edit") {
      Edit(arg);
    } else if (cmd == "/export") {
      Export(arg);
    } else if (cmd == "/usage") {
      Usage();
    } else if (cmd == "/session") {
      std::cout << client_->SessionId() << "\n";
    } else {
      std::cout << "unknown command " << cmd << " (/help lists them)\n";
    }
    return true;
  }

  void Help() const {
    std::cout << "/branch          list branch tips (* marks the current one)\n"
                 "/switch ID       move the head to a node (any unique id prefix)\n"
                 "/rewind N        move the head back N nodes\n"
                 "/regen           a new reply on a new branch from the last user message\n"
                 "/edit [TEXT]     a new branch with an edited last user message\n"
                 "/export FILE     write the session bundle (FILE.md: a markdown transcript)\n"
                 "/usage           this session's cost feedback\n"
                 "/session         print the session id\n"
                 "/quit            exit (also Ctrl-D)\n";
  }

  void Branches() {
    Status s = client_->Sync();
    if (!s.IsOk()) return Fail(s);
    std::vector<client::Node> head_path = client_->PathTo(client_->Head());
    for (const client::BranchTip& h : client_->Heads()) {
      bool current = !head_path.empty() && head_path.back().id == h.id;
      const client::Node* n = client_->Find(h.id);
      std::string text = n != nullptr ? n->text.substr(0, 48) : "";
      for (char& ch : text) ch = ch == '\n' ? ' ' : ch;
      std::cout << (current ? "* " : "  ") << h.id.substr(0, 12) << "  depth " << h.depth << "  "
                << (n != nullptr ? n->kind : "?") << ": " << text << "\n";
    }
    if (client_->Heads().empty()) std::cout << "(empty session)\n";
  }

  void Switch(const std::string& prefix) {
    Status s = client_->Sync();
    if (!s.IsOk()) return Fail(s);
    std::string match;
    std::vector<client::Node> all;
    for (const client::BranchTip& h : client_->Heads()) {
      for (const client::Node& n : client_->PathTo(h.id)) {
        if (!prefix.empty() && n.id.starts_with(prefix) && n.id != match) {
          if (!match.empty()) {
            std::cout << "ambiguous id prefix " << prefix << "\n";
            return;
          }
          match = n.id;
        }
      }
    }
    if (match.empty()) {
      std::cout << "no node " << prefix << " (see /branch)\n";
      return;
    }
    s = client_->SetHead(match);
    if (!s.IsOk()) return Fail(s);
    std::cout << "head -> " << match.substr(0, 12) << "\n";
  }

  void Rewind(const std::string& arg) {
    int n = 1;
    if (!arg.empty()) {
      try {
        n = std::stoi(arg);
      } catch (const std::exception&) {
        n = -1;
      }
    }
    if (n < 1) {
      std::cout << "usage: /rewind N (N >= 1)\n";
      return;
    }
    std::vector<client::Node> path = client_->PathTo(client_->Head());
    if (static_cast<std::size_t>(n) > path.size()) {
      std::cout << "error: cannot rewind " << n << " nodes: the head is " << path.size()
                << " nodes deep (/rewind " << path.size() << " goes to the top)\n";
      return;
    }
    std::string target = static_cast<std::size_t>(n) == path.size() ? "" : path[path.size() - 1 - n].id;
    Status s = client_->SetHead(target);
    if (!s.IsOk()) return Fail(s);
    std::cout << "head -> " << (target.empty() ? "(top)" : target.substr(0, 12)) << "\n";
  }

  void Edit(std::string text) {
    const client::Node* user = LastUser();
    if (user == nullptr) {
      std::cout << "no user message to edit\n";
      return;
    }
    if (text.empty()) {
      if (tty_) std::cout << "was: " << user->text << "\n";
      Prompt("edit> ");
      if (!std::getline(std::cin, text) || text.empty()) return;
    }
    Turn(user->parent, text);
  }

  void Export(const std::string& file) {
    if (file.empty()) {
      std::cout << "usage: /export FILE\n";
      return;
    }
    auto data = client_->Export(file.ends_with(".md") ? "markdown" : "");
    if (!data.IsOk()) return Fail(data.GetStatus());
    std::ofstream out(file, std::ios::binary);
    out << *data;
    if (!out.good()) return Fail(Status::Internal("cannot write " + file));
    std::cout << "exported " << FormatBytes(data->size()) << " to " << file << "\n";
  }

  void Usage() const {
    const client::Cost& c = totals_.cost;
    std::cout << "turns " << totals_.turns << " | prompt " << c.prompt_tokens << " tok: " << c.recomputed
              << " computed, " << c.Cached() << " cached (ram " << c.cached_ram << ", disk " << c.cached_disk
              << ") | generated " << c.generated << " | sent " << FormatBytes(totals_.bytes_sent) << " vs "
              << FormatBytes(c.stateless_equivalent_bytes) << " stateless\n";
  }

  client::Client* client_;
  ChatFlags flags_;
  bool tty_;
  InterruptWatcher watcher_;
  Totals totals_;
  int errors_ = 0;
};

int RunChat(const ChatFlags& flags) {
  // SIGINT is handled by the watcher thread only; block it everywhere before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);

  std::unique_ptr<EmbeddedServer> embedded;
  client::ClientOptions options;
  if (flags.server.empty()) {
    EmbeddedOptions eo;
    eo.data_dir = flags.data_dir;
    eo.model_path = flags.model;
    if (eo.model_path.empty()) std::cerr << api::kDemoModelNotice << "\n";
    auto started = EmbeddedServer::Start(eo);
    if (!started.IsOk()) {
      std::cerr << "llmsync chat: " << started.GetStatus().ToString() << "\n";
      return 1;
    }
    embedded = std::move(started).Value();
    options.port = embedded->Port();
  } else {
    Status s = client::ParseServerUrl(flags.server, &options);
    if (!s.IsOk()) {
      std::cerr << "llmsync chat: " << s.Message() << "\n";
      return 2;
    }
  }
  if (const char* key = std::getenv("LLMSYNC_API_KEY")) options.api_key = key;
  client::Client c(options);
  Status s = flags.session.empty() ? c.CreateSession() : c.OpenSession(flags.session);
  if (!s.IsOk()) {
    std::cerr << "llmsync chat: " << s.ToString() << "\n";
    return 1;
  }
  ChatRepl repl(&c, flags, ::isatty(STDIN_FILENO) == 1);
  return repl.Run(!flags.session.empty());
}

}  // namespace

void AddChatCommands(CLI::App& app, CliState& state) {
  auto flags = std::make_shared<ChatFlags>();
  CLI::App* chat = app.add_subcommand("chat", "Interactive chat with a local replica of a session");
  chat->add_option("--server", flags->server, "llmsync server URL (default: an embedded server)");
  chat->add_option("--session", flags->session, "Continue this session id (default: a new session)");
  chat->add_option("--model", flags->model, "GGUF model for the embedded server (default: the demo model)");
  chat->add_option("--data-dir", flags->data_dir,
                   "Data directory of the embedded server (default ~/.llmsync)");
  chat->add_option("--max-tokens", flags->max_tokens, "Tokens per reply")->check(CLI::PositiveNumber);
  chat->add_option("--temperature", flags->temperature, "Sampling temperature");
  chat->add_option("--seed", flags->seed, "Sampling seed (turn i uses seed + i)");
  chat->callback([flags, &state] { state.exit_code = RunChat(*flags); });
  AddDemoCommand(app, state);
  AddBenchTraceCommand(app, state);
  AddBenchSseCommand(app, state);
  AddBenchAppendCommand(app, state);
}

}  // namespace llmsync::cli
