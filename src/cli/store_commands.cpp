// `llmsync export` and `llmsync import`: a session as a portable JSON Lines bundle, and back.
//
//   llmsync export --db F --session ID [--tenant T] [--markdown] > bundle.jsonl
//   llmsync import --db F [--tenant T] [--seal-key-file K] [--input bundle.jsonl] < bundle.jsonl
//
// These are operator commands working on the database file directly (a running server may have
// it open: SQLite's WAL lets both proceed). Without --tenant, export finds the session's tenant
// itself. `bench store` lives in store_bench.cpp.
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "base/env.h"
#include "cli/commands.h"
#include "cli/store_bench.h"
#include "session/bundle.h"
#include "session/session_service.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::cli {
namespace {

struct ExportArgs {
  std::string db;
  std::string session;
  std::string tenant;
  bool markdown = false;
};

struct ImportArgs {
  std::string db;
  std::string tenant;
  std::string seal_key_file;
  std::string input;  // empty: stdin
};

// The exit code for a command's outcome; errors are reported on stderr.
int ExitCode(const Status& s) {
  if (s.IsOk()) return 0;
  std::cerr << "error: " << s.ToString() << "\n";
  return 1;
}

Result<std::unique_ptr<store::Store>> OpenDb(const std::string& path, bool create) {
  store::SqliteStoreOptions options;
  options.path = path;
  options.create_if_missing = create;
  return store::OpenSqliteStore(options);
}

Status RunExport(const ExportArgs& args) {
  LLMSYNC_ASSIGN_OR_RETURN(Id session_id, Id::FromHex(args.session));
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> db, OpenDb(args.db, /*create=*/false));
  std::string tenant = args.tenant;
  if (tenant.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(store::SessionRecord found, db->AdminFindSession(session_id));
    tenant = found.tenant;
  }
  session::SessionService sessions(db.get(), Env::Default(), session::SessionOptions{});
  LLMSYNC_ASSIGN_OR_RETURN(std::string out, args.markdown
                                                ? session::ExportTranscript(sessions, tenant, session_id)
                                                : session::ExportSession(sessions, tenant, session_id));
  std::cout << out;
  std::cout.flush();
  return std::cout.good() ? Status::Ok() : Status::Internal("writing to stdout failed");
}

Status RunImport(const ImportArgs& args) {
  session::SessionOptions options;
  if (!args.seal_key_file.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string key_text, Env::Default()->ReadFile(args.seal_key_file));
    LLMSYNC_ASSIGN_OR_RETURN(session::SealKey key, session::SealKey::FromHex(key_text));
    options.seal_key = key;
  }
  std::string bundle;
  if (args.input.empty() || args.input == "-") {
    bundle.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return Status::Internal("reading stdin failed");
  } else {
    LLMSYNC_ASSIGN_OR_RETURN(bundle, Env::Default()->ReadFile(args.input));
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> db, OpenDb(args.db, /*create=*/true));
  session::SessionService sessions(db.get(), Env::Default(), options);
  session::ImportOptions import_options;
  if (!args.tenant.empty()) import_options.tenant = args.tenant;
  LLMSYNC_ASSIGN_OR_RETURN(session::ImportResult result,
                           session::ImportSession(sessions, bundle, import_options));
  std::cout << "imported session " << result.session.id.ToHex() << " for tenant " << result.session.tenant
            << ": " << result.id_map.size() << " nodes\n";
  return Status::Ok();
}

}  // namespace

void AddStoreCommands(CLI::App& app, CliState& state) {
  CLI::App* exp = app.add_subcommand("export", "Write a session as a JSON Lines bundle to stdout");
  auto export_args = std::make_shared<ExportArgs>();
  exp->add_option("--db", export_args->db, "The llmsync database file")->required();
  exp->add_option("--session", export_args->session, "Session id (64 hex characters)")->required();
  exp->add_option("--tenant", export_args->tenant, "The session's tenant (default: looked up)");
  exp->add_flag("--markdown", export_args->markdown,
                "Print only the Markdown transcript of the current branch");
  exp->callback([&state, export_args] { state.exit_code = ExitCode(RunExport(*export_args)); });

  CLI::App* imp = app.add_subcommand("import", "Verify a bundle from stdin and load it as a new session");
  auto import_args = std::make_shared<ImportArgs>();
  imp->add_option("--db", import_args->db, "The llmsync database file (created when missing)")->required();
  imp->add_option("--tenant", import_args->tenant, "Import under this tenant (default: the bundle's)");
  imp->add_option("--seal-key-file", import_args->seal_key_file,
                  "File holding the 64-hex-character server key that seals hidden nodes");
  imp->add_option("--input", import_args->input, "Read the bundle from this file instead of stdin");
  imp->callback([&state, import_args] { state.exit_code = ExitCode(RunImport(*import_args)); });

  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  AddStoreBenchCommand(*bench, state);
}

}  // namespace llmsync::cli
