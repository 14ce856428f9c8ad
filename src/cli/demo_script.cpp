#include "cli/demo_script.h"

namespace llmsync::cli {

std::string_view DemoSystemPrompt() {
  return R"(You are Ada, a careful coding agent working inside a user's repository. You take one step at a time:
think about what you know, call one tool, read its result, and only then decide the next step. Never
guess the content of a file you have not read. Keep changes small and explain each one in a short
sentence. When the tests pass and the change is done, say so and stop.

Rules:
1. Read before you write. Open the file and the code around the line you want to change.
2. Run the tests after every change, and read the whole failure before you try a fix.
3. Do not touch files outside the repository, and never run commands that need the network.
4. If a command fails, report the error as it is. Do not retry the same command more than twice.
5. Ask the user when a decision is theirs: public names, file layout, anything that breaks users.
6. Keep the user's style: naming, comments, line length, and the layout of tests.

Tools (call one per turn as a JSON object with "tool" and "args"):
- list_dir(path): the entries of a directory, one per line, directories end with a slash.
- read_file(path, first_line, last_line): lines of a text file, with their numbers.
- search_code(query, path): every line that matches the query, as path:line: text.
- write_file(path, text): replaces the whole file with text; returns the number of bytes written.
- edit_file(path, old_text, new_text): replaces one exact match of old_text; fails when there are none or many.
- run_tests(filter): builds and runs the tests whose names match filter; returns the summary and failures.
- run_shell(command): runs a command in the sandbox and returns its exit code, output and errors.
- git_diff(path): the uncommitted changes, as a unified diff.
- git_log(count): the last commits, one per line, as hash, author, date and subject.
- open_issue(number): the title, body and comments of an issue of this repository.

Answer format: a short thought, then exactly one tool call, or a final answer that starts with DONE.)";
}

const std::vector<DemoTurn>& DemoMainTurns() {
  static const std::vector<DemoTurn> kTurns = {
      {"task", "The store tests fail since my last change. Can you find out why and fix it?"},
      {"tool: git_log",
       "Result of git_log(5):\na41c2e0 me  today  store: keep the last event id per run\n"
       "9be1f37 me  today  store: group commits share one fsync\n"
       "51d0c88 ana  monday  docs: the protocol page\n"
       "c07e2aa ana  monday  runs: cancel is final\n0d93b1e me  friday  store: first version"},
      {"tool: run_tests",
       "Result of run_tests(store):\n41 tests, 3 failed:\n"
       "  RunStoreTest.EventsResumeAfterRestart\n  RunStoreTest.LastEventIdSurvivesCrash\n"
       "  RetentionTest.OldEventsAreDeleted\nfirst failure: expected last_event_id 12, got 0"},
      {"tool: search_code",
       "Result of search_code(last_event_id, src/store):\n"
       "src/store/sqlite/sqlite_runs.cpp:88: record.last_event_id = 0;\n"
       "src/store/sqlite/sqlite_runs.cpp:141: UPDATE runs SET last_event_id = ? WHERE id = ?\n"
       "src/store/records.h:54: std::uint64_t last_event_id = 0;"},
      {"tool: read_file",
       "Result of read_file(src/store/sqlite/sqlite_runs.cpp, 80, 96):\n"
       "80  Result<RunRecord> ReadRun(Statement& s) {\n81    RunRecord record;\n"
       "82    record.id = s.ColumnId(0);\n83    record.status = s.ColumnStatus(1);\n"
       "84    record.params = s.ColumnText(2);\n85    record.created_at_ms = s.ColumnInt(3);\n"
       "86    record.updated_at_ms = s.ColumnInt(4);\n87    // the new column\n"
       "88    record.last_event_id = 0;\n89    return record;\n90  }"},
      {"question", "Why does it read zero there? Is the column not selected?"},
      {"tool: read_file",
       "Result of read_file(src/store/sqlite/sqlite_runs.cpp, 20, 24):\n"
       "20  constexpr const char* kSelectRun =\n"
       "21      \"SELECT id, status, params, created_at_ms, updated_at_ms FROM runs\";"},
      {"tool: edit_file",
       "Result of edit_file(src/store/sqlite/sqlite_runs.cpp): 2 edits applied, 61 bytes."},
      {"tool: run_tests",
       "Result of run_tests(store):\n41 tests, 1 failed:\n"
       "  RetentionTest.OldEventsAreDeleted\nexpected 0 events left, got 12"},
      {"tool: read_file",
       "Result of read_file(src/store/retention.cpp, 30, 44):\n"
       "30  Status Janitor::Sweep(std::int64_t now_ms) {\n"
       "31    std::int64_t cutoff = now_ms - policy_.event_retention_ms;\n"
       "32    // delete events of finished runs older than the cutoff\n"
       "33    return store_->DeleteEvents(cutoff, /*finished_only=*/true);\n34  }"},
      {"question", "Is the test wrong or the janitor? The runs in the test are finished."},
      {"tool: search_code",
       "Result of search_code(DeleteEvents, src/store):\n"
       "src/store/sqlite/sqlite_events.cpp:203: DELETE FROM events WHERE run IN "
       "(SELECT id FROM runs WHERE updated_at_ms < ? AND status IN (2, 3, 4))"},
      {"tool: read_file",
       "Result of read_file(src/store/records.h, 40, 48):\n"
       "40  enum class RunStatus { kQueued = 0, kRunning = 1, kSucceeded = 2,\n"
       "41                         kFailed = 3, kCancelled = 4, kExpired = 5 };"},
      {"tool: git_diff",
       "Result of git_diff(src/store):\n-  record.updated_at_ms = now_ms;\n"
       "+  if (status_changed) record.updated_at_ms = now_ms;"},
      {"question", "So the last change stopped touching updated_at_ms when only the event id moves?"},
      {"tool: edit_file", "Result of edit_file(src/store/sqlite/sqlite_runs.cpp): 1 edit applied, 44 bytes."},
      {"tool: run_tests",
       "Result of run_tests(store):\n41 tests, 1 failed:\n"
       "  RetentionTest.OldEventsAreDeleted\nexpected 0 events left, got 3"},
      {"tool: read_file",
       "Result of read_file(tests/store/retention_test.cpp, 60, 70):\n"
       "60  clock.Advance(hours(167));\n61  janitor.Sweep(clock.Now());\n"
       "62  EXPECT_EQ(CountEvents(), 0);  // retention is 168 hours"},
      {"tool: edit_file", "Result of edit_file(tests/store/retention_test.cpp): 1 edit applied, 9 bytes."},
      {"tool: run_tests", "Result of run_tests(store):\n41 tests, 0 failed."},
      {"wrap up", "Thanks. Summarise the two fixes in one commit message, please."},
  };
  return kTurns;
}

const std::vector<DemoTurn>& DemoBranchTurns() {
  static const std::vector<DemoTurn> kTurns = {
      {"branch: edited question",
       "Wait: should updated_at_ms not move on every write? Check the docs first."},
      {"branch: tool: read_file",
       "Result of read_file(docs/PROTOCOL.md, 210, 214):\n"
       "210  updated_at: the time of the run's last status change."},
  };
  return kTurns;
}

}  // namespace llmsync::cli
