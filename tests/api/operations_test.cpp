// What an operator relies on, against a real server over HTTP: the access log, the metrics
// families after real runs, the auth scheme and the open /healthz and /metrics, and the example
// config file reading back as the defaults.
#include <gtest/gtest.h>

#include <mutex>
#include <regex>
#include <thread>

#include "base/logging.h"
#include "server_test_env.h"

namespace llmsync::testing {
namespace {

// Captures log lines for the life of the object.
class LogCapture {
 public:
  LogCapture() {
    SetLogSink([this](LogLevel, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSink(nullptr); }
  std::vector<std::string> Lines(const std::string& containing) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const std::string& l : lines_) {
      if (l.find(containing) != std::string::npos) out.push_back(l);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

class OperationsTest : public ::testing::Test {
 protected:
  void Start(api::ServerConfig config = {}) {
    model_ = ServerTestEnv::TinyModel(dir_);
    env_ = std::make_unique<ServerTestEnv>(model_);
    ASSERT_TRUE(env_->Start(dir_.File("data"), config).IsOk());
  }
  void TearDown() override {
    if (env_) env_->Stop();
  }
  // A session with one user message and a finished run of `tokens` tokens; returns the run id.
  std::string RunOnce(int tokens, client::HeaderList auth = {}) {
    auto r = env_->Client().PostJson("/v1/sessions", "{}", auth);
    EXPECT_TRUE(r.IsOk());
    std::string session = Json::parse(r->body)["id"];
    Json nodes = {{"nodes", {{{"kind", "user"}, {"text", "Hello there, how are you?"}}}}};
    r = env_->Client().PostJson("/v1/sessions/" + session + "/nodes", nodes.dump(), auth);
    EXPECT_EQ(r->status, 201) << r->body;
    r = env_->Client().PostJson("/v1/sessions/" + session + "/runs",
                                Json({{"max_tokens", tokens}, {"seed", 1}}).dump(), auth);
    EXPECT_EQ(r->status, 202) << r->body;
    std::string run = Json::parse(r->body)["id"];
    client::HttpClient c("127.0.0.1", env_->Port(), std::chrono::seconds(60));
    int status = 0;
    EXPECT_TRUE(
        c.Stream(
             "/v1/runs/" + run + "/events", auth, [](const client::SseEvent&) { return true; }, &status)
            .IsOk());
    return run;
  }
  std::string Scrape() {
    auto r = env_->Client().Get("/metrics");
    EXPECT_TRUE(r.IsOk());
    EXPECT_EQ(r->status, 200);
    return r->body;
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<ServerTestEnv> env_;
};

// The value of one sample line ("name{labels} value"), or -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  std::size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_F(OperationsTest, AccessLogHasOneStructuredLinePerRequest) {
  LogCapture logs;
  Start();
  std::string run = RunOnce(4);
  ASSERT_TRUE(env_->Client().Get("/v1/runs/" + run).IsOk());
  auto created = logs.Lines("access method=POST path=/v1/sessions status=201 tenant=local bytes_in=2 ");
  EXPECT_EQ(created.size(), 1u);
  auto started = logs.Lines("access method=POST path=/v1/sessions/{id}/runs status=202 tenant=local");
  ASSERT_EQ(started.size(), 1u);
  EXPECT_NE(started[0].find(" run=" + run), std::string::npos) << started[0];
  // A stream's line is written when the stream ends, with the bytes it carried.
  std::vector<std::string> streamed;
  for (int i = 0; i < 500 && streamed.empty(); ++i) {
    streamed = logs.Lines("access method=GET path=/v1/runs/{id}/events status=200");
    if (streamed.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_NE(streamed[0].find(" run=" + run), std::string::npos) << streamed[0];
  std::smatch m;
  ASSERT_TRUE(std::regex_search(streamed[0], m, std::regex(" bytes_out=([0-9]+) ms=[0-9.]+ ")));
  EXPECT_GT(std::stoull(m[1]), 100u) << streamed[0];
  EXPECT_EQ(logs.Lines("access method=GET path=/v1/runs/{id} status=200").size(), 1u);
}

TEST_F(OperationsTest, AccessLogCanBeTurnedOff) {
  LogCapture logs;
  api::ServerConfig config;
  config.access_log = false;
  Start(config);
  RunOnce(2);
  EXPECT_TRUE(logs.Lines("access method=").empty());
}

TEST_F(OperationsTest, MetricsHaveTheOperatorFamiliesAndTheyMove) {
  Start();
  std::string before = Scrape();
  RunOnce(6);
  RunOnce(6);
  // A subscriber sees run.completed as soon as it is committed; the scheduler releases the run's
  // slot (the active-runs gauge) just after, so scrape once it has.
  std::string after = Scrape();
  for (int i = 0; i < 500 && Sample(after, "llmsync_active_runs") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = Scrape();
  }
  for (const char* family : {"llmsync_ttft_seconds", "llmsync_inter_token_seconds", "llmsync_run_seconds",
                             "llmsync_run_decode_tokens_per_second", "llmsync_run_prompt_tokens",
                             "llmsync_store_write_seconds", "llmsync_store_commit_seconds"}) {
    EXPECT_NE(after.find(std::string("# TYPE ") + family + " histogram\n"), std::string::npos) << family;
  }
  EXPECT_EQ(Sample(after, "llmsync_ttft_seconds_count"), 2);
  EXPECT_EQ(Sample(after, "llmsync_inter_token_seconds_count"), 2 * 5);
  EXPECT_EQ(Sample(after, "llmsync_run_seconds_count{status=\"succeeded\"}"), 2);
  EXPECT_EQ(Sample(after, "llmsync_run_seconds_bucket{status=\"succeeded\",le=\"+Inf\"}"), 2);
  EXPECT_EQ(Sample(after, "llmsync_runs_finished_total{status=\"succeeded\"}"), 2);
  EXPECT_EQ(Sample(after, "llmsync_run_decode_tokens_per_second_count"), 2);
  EXPECT_GT(Sample(after, "llmsync_ttft_seconds_sum"), 0);
  EXPECT_GT(Sample(after, "llmsync_store_write_seconds_count"),
            Sample(before, "llmsync_store_write_seconds_count"));
  EXPECT_GT(Sample(after, "llmsync_kv_tokens_total{source=\"recompute\"}"), 0);
  EXPECT_GE(Sample(after, "llmsync_kv_tokens_total{source=\"ram\"}"), 0);
  EXPECT_GE(Sample(after, "llmsync_kv_tokens_total{source=\"disk\"}"), 0);
  EXPECT_EQ(Sample(after, "llmsync_tokens_generated_total"), 12);
  EXPECT_EQ(Sample(after, "llmsync_active_runs"), 0);
  EXPECT_EQ(Sample(after, "llmsync_queued_runs"), 0);
  EXPECT_EQ(Sample(after, "llmsync_queued_prompt_tokens"), 0);
  EXPECT_GT(Sample(after, "llmsync_kv_blocks{tier=\"ram\",state=\"used\"}"), 0);
  EXPECT_GT(Sample(after, "llmsync_kv_blocks{tier=\"ram\",state=\"free\"}"), 0);
  EXPECT_GT(Sample(after, "llmsync_kv_disk_free_bytes"), 0);
  EXPECT_GE(Sample(after, "llmsync_kv_leases"), 0);
  EXPECT_NE(after.find("\nllmsync_build_info{version=\""), std::string::npos) << after;
}

TEST_F(OperationsTest, BearerSchemeIsCaseInsensitive) {
  api::ServerConfig config;
  config.api_keys = {{"sk-a", "team-a"}};
  Start(config);
  for (const char* scheme : {"Bearer", "bearer", "BEARER"}) {
    auto r =
        env_->Client().PostJson("/v1/sessions", "{}", {{"Authorization", std::string(scheme) + " sk-a"}});
    ASSERT_TRUE(r.IsOk());
    EXPECT_EQ(r->status, 201) << scheme << ": " << r->body;
  }
  auto basic = env_->Client().PostJson("/v1/sessions", "{}", {{"Authorization", "Basic sk-a"}});
  EXPECT_EQ(basic->status, 401);
  auto wrong = env_->Client().PostJson("/v1/sessions", "{}", {{"Authorization", "bearer sk-b"}});
  EXPECT_EQ(wrong->status, 401);
}

TEST_F(OperationsTest, HealthAndMetricsAreOpenByDefaultWithKeys) {
  api::ServerConfig config;
  config.api_keys = {{"sk-a", "team-a"}};
  Start(config);
  EXPECT_EQ(env_->Client().Get("/healthz")->status, 200);
  EXPECT_EQ(env_->Client().Get("/metrics")->status, 200);
}

TEST_F(OperationsTest, HealthAndMetricsCanRequireAKey) {
  api::ServerConfig config;
  config.api_keys = {{"sk-a", "team-a"}};
  config.public_health = false;
  config.metrics_require_key = true;
  Start(config);
  EXPECT_EQ(env_->Client().Get("/healthz")->status, 401);
  EXPECT_EQ(env_->Client().Get("/metrics")->status, 401);
  client::HeaderList auth = {{"Authorization", "Bearer sk-a"}};
  EXPECT_EQ(env_->Client().Get("/healthz", auth)->status, 200);
  EXPECT_EQ(env_->Client().Get("/metrics", auth)->status, 200);
}

TEST(ConfigExampleTest, ReadsBackAsTheDefaultsAndNamesEveryKey) {
  TestDir dir;
  std::string text = api::ExampleConfigFile();
  for (std::string_view key : api::ConfigFileKeys()) {
    EXPECT_NE(text.find("\"" + std::string(key) + "\": "), std::string::npos) << key;
  }
  std::string path = dir.File("example.json");
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, text).IsOk());
  api::ServerConfig loaded;
  loaded.listen = "changed";  // every key must be set by the file
  loaded.kv_ram_mb = 1;
  loaded.access_log = false;
  loaded.metrics_require_key = true;
  loaded.max_tokens = 1;
  Status s = api::LoadConfigFile(Env::Default(), path, &loaded);
  ASSERT_TRUE(s.IsOk()) << s.ToString() << "\n" << text;
  const api::ServerConfig d;
  EXPECT_EQ(loaded.listen, d.listen);
  EXPECT_EQ(loaded.model_path, d.model_path);
  EXPECT_EQ(loaded.data_dir, d.data_dir);
  EXPECT_EQ(loaded.db_path, d.db_path);
  EXPECT_EQ(loaded.snapshot_dir, d.snapshot_dir);
  EXPECT_EQ(loaded.kv_ram_mb, d.kv_ram_mb);
  EXPECT_EQ(loaded.kv_disk_mb, d.kv_disk_mb);
  EXPECT_EQ(loaded.api_keys, d.api_keys);
  EXPECT_EQ(loaded.seal_key_hex, d.seal_key_hex);
  EXPECT_EQ(loaded.max_body_bytes, d.max_body_bytes);
  EXPECT_EQ(loaded.max_context, d.max_context);
  EXPECT_EQ(loaded.max_active_runs, d.max_active_runs);
  EXPECT_EQ(loaded.engine_threads, d.engine_threads);
  EXPECT_EQ(loaded.http_threads, d.http_threads);
  EXPECT_EQ(loaded.max_tokens, d.max_tokens);
  EXPECT_EQ(loaded.max_text_bytes, d.max_text_bytes);
  EXPECT_EQ(loaded.event_retention_hours, d.event_retention_hours);
  EXPECT_EQ(loaded.idempotency_retention_hours, d.idempotency_retention_hours);
  EXPECT_EQ(loaded.access_log, d.access_log);
  EXPECT_EQ(loaded.public_health, d.public_health);
  EXPECT_EQ(loaded.metrics_require_key, d.metrics_require_key);
  EXPECT_TRUE(api::FinalizeConfig(&loaded).IsOk());
}

}  // namespace
}  // namespace llmsync::testing
