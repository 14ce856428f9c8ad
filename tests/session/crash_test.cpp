// Crash test: a child process (session_crash_helper) appends nodes and run events in a loop and
// reports each acknowledged write on a pipe; the test kills it with SIGKILL at random points, then
// reopens the database and checks that no acknowledged write is missing, no node is torn (every
// id still hashes from its parent and content), no parent dangles, and event ids have no gaps.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <sstream>

#include "../store/sqlite_check.h"
#include "session_test_util.h"

namespace llmsync::session {
namespace {

struct Acked {
  std::map<Id, std::uint64_t> nodes;  // id -> seq
  std::set<std::uint64_t> events;
};

// Runs the helper until it has acknowledged `target` writes (plus a random extra delay), kills it
// with SIGKILL and returns everything it acknowledged before dying.
Acked RunAndKill(const std::vector<std::string>& args, std::size_t target, int extra_delay_us) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Acked acked;
  std::string buffer;
  std::size_t lines = 0;
  bool killed = false;
  char chunk[4096];
  auto consume = [&]() {
    std::size_t eol;
    while ((eol = buffer.find('\n')) != std::string::npos) {
      std::istringstream line(buffer.substr(0, eol));
      buffer.erase(0, eol + 1);
      std::string tag;
      line >> tag;
      if (tag == "N") {
        std::uint64_t seq = 0;
        std::string hex;
        line >> seq >> hex;
        auto id = Id::FromHex(hex);
        EXPECT_TRUE(id.IsOk()) << hex;
        if (id.IsOk()) acked.nodes[*id] = seq;
      } else if (tag == "E") {
        std::uint64_t id = 0;
        line >> id;
        acked.events.insert(id);
      }
      ++lines;
    }
  };
  while (true) {
    ssize_t n = ::read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) break;  // EOF: the child is gone and the pipe is drained
    buffer.append(chunk, static_cast<std::size_t>(n));
    consume();
    if (!killed && lines >= target) {
      if (extra_delay_us > 0) ::usleep(static_cast<useconds_t>(extra_delay_us));
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(killed) << "the helper exited by itself with status " << status;
  if (killed) {
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  return acked;
}

class CrashTest : public testing::SessionFixture {};

TEST_F(CrashTest, KilledWriterNeverLosesAnAcknowledgedWriteOrTearsANode) {
  SessionInfo s = NewSession();
  store::RunRecord run;
  run.id = Id::Random();
  run.tenant = "acme";
  run.session = s.id;
  ASSERT_TRUE(store_->CreateRun(run).IsOk());
  const std::string db = dir_.File("llmsync.db");
  service_.reset();
  store_.reset();

  std::mt19937 rng(20261120);
  Acked all;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::size_t target = 5 + rng() % 150;
    int delay = static_cast<int>(rng() % 3000);
    Acked acked =
        RunAndKill({LLMSYNC_CRASH_HELPER, db, "acme", s.id.ToHex(), run.id.ToHex(), std::to_string(rng())},
                   target, delay);
    EXPECT_FALSE(acked.nodes.empty());
    all.nodes.insert(acked.nodes.begin(), acked.nodes.end());
    all.events.insert(acked.events.begin(), acked.events.end());

    EXPECT_EQ(llmsync::testing::SqliteCheck(db, "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(llmsync::testing::SqliteCheck(db, "PRAGMA foreign_key_check"), "");
    Reopen();
    auto diff = service_->DiffSince("acme", s.id, 0, 1000000);
    ASSERT_TRUE(diff.IsOk()) << diff.GetStatus().ToString();
    std::map<Id, const Node*> by_id;
    std::set<std::uint64_t> seqs;
    for (const Node& n : diff->nodes) {
      by_id[n.id] = &n;
      EXPECT_TRUE(seqs.insert(n.seq).second);
      EXPECT_LE(n.seq, diff->session.last_seq);
    }
    for (const Node& n : diff->nodes) {
      // No torn node: the content still hashes to the id, and the parent is there.
      EXPECT_EQ(NodeIdFor("acme", n.parent, n.content), n.id) << n.id.ToHex();
      if (!n.parent.IsZero()) {
        ASSERT_TRUE(by_id.count(n.parent)) << "dangling parent of " << n.id.ToHex();
        EXPECT_EQ(by_id[n.parent]->depth + 1, n.depth);
      }
      if (n.IsHidden()) {
        EXPECT_FALSE(n.sealed.empty());
      }
    }
    for (const auto& [id, seq] : all.nodes) {
      ASSERT_TRUE(by_id.count(id)) << "acknowledged node " << id.ToHex() << " is missing";
      EXPECT_EQ(by_id[id]->seq, seq);
    }
    ASSERT_TRUE(by_id.count(diff->session.head));
    EXPECT_EQ(service_->Path("acme", s.id, diff->session.head)->size(), diff->nodes.size());  // one chain

    auto events = store_->ReadRunEvents("acme", run.id, 0, 10000000);
    ASSERT_TRUE(events.IsOk());
    for (std::size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].event_id, i + 1);
    EXPECT_EQ(store_->GetRun("acme", run.id)->last_event_id, events->size());
    for (std::uint64_t id : all.events) EXPECT_LE(id, events->size()) << "acknowledged event missing";
    service_.reset();
    store_.reset();
  }
  std::cout << "[CrashTest] " << all.nodes.size() << " acknowledged nodes and " << all.events.size()
            << " events survived " << kRounds << " SIGKILLs\n";
}

}  // namespace
}  // namespace llmsync::session
