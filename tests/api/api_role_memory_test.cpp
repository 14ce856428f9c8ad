// `--role api` keeps the model's weights out of memory (issue 13): it needs the tokenizer, the chat
// template and the fingerprint, never an engine. With a 130 MB model, an api process's peak
// resident memory stays well below the model's size, while an `all` process holds the weights, and
// both name the model with the same fingerprint (sessions and OpenAI session ids agree).
#include <filesystem>
#include <fstream>

#include "../store/redis_server.h"
#include "engine/make_test_model.h"
#include "serve_process.h"

namespace llmsync::testing {
namespace {

// A /proc/<pid>/status field in bytes (VmRSS, VmHWM); -1 when absent.
long long ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;  // kB
  }
  return -1;
}

TEST(ApiRoleMemoryTest, AnApiProcessDoesNotHoldTheWeights) {
  if (!HaveRedisServer()) GTEST_SKIP() << "redis-server not found at " << kRedisServerBinary;
  TestDir dir;
  const std::string model = dir.File("big.gguf");
  engine::MakeTestModelOptions o;
  o.n_embd = 512;
  o.n_layer = 8;
  o.n_head = 8;
  o.n_head_kv = 8;
  o.n_ff = 2048;
  o.seed = 3;
  ASSERT_TRUE(engine::MakeTestModel(Env::Default(), o, model).IsOk());
  const long long model_bytes = static_cast<long long>(std::filesystem::file_size(model));
  ASSERT_GT(model_bytes, 120ll << 20);

  std::filesystem::create_directories(dir.File("redis"));
  RedisServer redis(dir.File("redis"));
  ASSERT_TRUE(redis.Start());
  ServeProcess api(model, dir.File("api"), {"--store", redis.Url(), "--role", "api"});
  ServeProcess all(model, dir.File("all"), {"--store", redis.Url(), "--role", "all"});
  api.Start();
  all.Start();

  const long long api_peak = ProcStatusBytes(api.Pid(), "VmHWM");
  const long long all_rss = ProcStatusBytes(all.Pid(), "VmRSS");
  ASSERT_GT(api_peak, 0);
  std::printf("model %lld MB; api role peak RSS %lld MB, all role RSS %lld MB\n", model_bytes >> 20,
              api_peak >> 20, all_rss >> 20);
  // Relative to the all role, not absolute: the sanitizer build's shadow memory and allocator add
  // ~150 MB to every process, weights or not.
  EXPECT_LT(api_peak + model_bytes / 2, all_rss) << "the api role must not bring the weights into memory";
  EXPECT_GT(all_rss, model_bytes * 9 / 10) << "the all role computes with the weights";

  // Both processes name the model the same way.
  auto a = api.Client().Get("/healthz");
  auto b = all.Client().Get("/healthz");
  ASSERT_TRUE(a.IsOk() && b.IsOk());
  EXPECT_EQ(Json::parse(a->body)["model_fingerprint"], Json::parse(b->body)["model_fingerprint"]) << a->body;
  // And the api process serves: a session and a node, frozen with the tokenizer and template.
  Json session = PostJson(api.Client(), "/v1/sessions", Json::object());
  ASSERT_TRUE(session["id"].is_string());
  Json appended = PostJson(api.Client(), "/v1/sessions/" + session["id"].get<std::string>() + "/nodes",
                           {{"nodes", {{{"kind", "user"}, {"text", "Hello"}}}}});
  EXPECT_GT(appended["nodes"][0]["n_tokens"].get<int>(), 0) << appended.dump();
}

}  // namespace
}  // namespace llmsync::testing
