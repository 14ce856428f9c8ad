// The child process of the crash test: appends nodes and run events to an existing session and
// run as fast as it can, and after each acknowledged write prints one line to stdout:
//   N <seq> <node id>      an acknowledged node
//   E <event id>           an acknowledged run event (blocking or asynchronous append)
// The parent kills it with SIGKILL at a random moment and checks that everything printed
// survived. Usage: session_crash_helper DB TENANT SESSION RUN SEED
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "session/session_service.h"
#include "store/sqlite/sqlite_store.h"

namespace {

std::mutex out_mu;

// One write(2) per line: a line is either fully in the pipe or absent when the process dies.
void Emit(char tag, const std::string& a, const std::string& b = "") {
  std::string l(1, tag);
  l += ' ';
  l += a;
  if (!b.empty()) {
    l += ' ';
    l += b;
  }
  l += '\n';
  std::lock_guard<std::mutex> lock(out_mu);
  if (::write(1, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::_Exit(3);
}

int Fail(const llmsync::Status& s) {
  std::fprintf(stderr, "crash helper: %s\n", s.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace llmsync;
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DB TENANT SESSION RUN SEED\n", argv[0]);
    return 2;
  }
  store::SqliteStoreOptions options;
  options.path = argv[1];
  options.create_if_missing = false;
  auto store = store::OpenSqliteStore(options);
  if (!store.IsOk()) return Fail(store.GetStatus());
  session::SessionOptions session_options;
  session_options.seal_key = session::SealKey::FromSecretForTesting("crash test");
  session::SessionService service(store->get(), Env::Default(), session_options);
  const std::string tenant = argv[2];
  auto session_id = Id::FromHex(argv[3]);
  auto run_id = Id::FromHex(argv[4]);
  if (!session_id.IsOk() || !run_id.IsOk()) return 2;
  std::mt19937 rng(static_cast<unsigned>(std::stoul(argv[5])));

  std::atomic<bool> stop{false};
  std::thread events([&] {
    for (int i = 0; !stop.load(); ++i) {
      std::vector<store::RunEventDraft> drafts;
      for (int k = 0; k < 1 + i % 4; ++k) drafts.push_back({tenant, *run_id, "token", std::to_string(i)});
      auto ids = (*store)->AppendRunEvents(drafts);
      if (!ids.IsOk()) std::_Exit(Fail(ids.GetStatus()));
      for (std::uint64_t id : *ids) Emit('E', std::to_string(id));
    }
  });

  for (int i = 0; i < 200000; ++i) {
    auto info = service.GetSession(tenant, *session_id);
    if (!info.IsOk()) return Fail(info.GetStatus());
    session::AppendRequest req;
    req.tenant = tenant;
    req.session = *session_id;
    req.parent = info->head;
    req.expect_head = info->head;
    std::size_t n = 1 + rng() % 3;
    for (std::size_t k = 0; k < n; ++k) {
      session::NodeDraft d;
      d.kind = k % 2 == 0 ? session::NodeKind::kUser : session::NodeKind::kReasoning;
      d.visibility = k % 2 == 0 ? session::Visibility::kPublic : session::Visibility::kHidden;
      d.text = std::string(1 + rng() % 2000, static_cast<char>('a' + (i + k) % 26)) + std::to_string(i);
      for (std::size_t t = 0; t < d.text.size(); t += 4) d.tokens.push_back(static_cast<int>(t));
      req.nodes.push_back(std::move(d));
    }
    auto r = service.Append(req);
    if (!r.IsOk()) return Fail(r.GetStatus());
    for (std::size_t k = 0; k < r->ids.size(); ++k) {
      Emit('N', std::to_string(r->seqs[k]), r->ids[k].ToHex());
    }
    (*store)->AppendRunEventsAsync({{tenant, *run_id, "async", std::to_string(i)}},
                                   [](Result<std::vector<std::uint64_t>> ids) {
                                     if (!ids.IsOk()) std::_Exit(4);
                                     Emit('E', std::to_string(ids->at(0)));
                                   });
  }
  stop.store(true);
  events.join();
  return 0;
}
