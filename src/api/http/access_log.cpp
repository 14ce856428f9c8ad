#include "api/http/access_log.h"

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>

#include "base/logging.h"

namespace llmsync::api {
namespace {

using Clock = std::chrono::steady_clock;

std::string HexAfter(std::string_view text, std::string_view prefix) {
  std::size_t at = text.find(prefix);
  if (at == std::string_view::npos) return "";
  std::size_t begin = at + prefix.size();
  std::size_t end = begin;
  while (end < text.size() && std::isxdigit(static_cast<unsigned char>(text[end]))) ++end;
  return std::string(text.substr(begin, end - begin));
}

// One request's line, written once when the response completes.
class AccessRecord {
 public:
  AccessRecord(const HttpRequest& request, AccessInfo info)
      : method_(request.method),
        bytes_in_(request.body.size()),
        info_(std::move(info)),
        start_(Clock::now()) {}

  void AddBytesOut(std::size_t n) { bytes_out_ += n; }
  void NoteBody(std::string_view body) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!info_.run_id.empty()) return;
    bool native_run = method_ == "POST" && info_.path_template == "/v1/sessions/{id}/runs";
    info_.run_id = RunIdInBody(body, native_run);
  }
  void Finish(int status) {
    if (written_.exchange(true)) return;
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    char latency[32];
    std::snprintf(latency, sizeof latency, "%.1f", ms);
    std::lock_guard<std::mutex> lock(mu_);
    LLMSYNC_LOG(kInfo) << "access method=" << method_
                       << " path=" << (info_.path_template.empty() ? "-" : info_.path_template)
                       << " status=" << status << " tenant=" << (info_.tenant.empty() ? "-" : info_.tenant)
                       << " bytes_in=" << bytes_in_ << " bytes_out=" << bytes_out_.load() << " ms=" << latency
                       << " run=" << (info_.run_id.empty() ? "-" : info_.run_id);
  }

 private:
  std::string method_;
  std::size_t bytes_in_;
  std::atomic<std::size_t> bytes_out_{0};
  std::mutex mu_;
  AccessInfo info_;  // GUARDED_BY(mu_) once the response is out
  Clock::time_point start_;
  std::atomic<bool> written_{false};
};

// Forwards to the connection's sink, counting bytes; the line is written when the stream ends.
class CountingSink final : public StreamSink {
 public:
  CountingSink(std::shared_ptr<StreamSink> inner, std::shared_ptr<AccessRecord> record, int status)
      : inner_(std::move(inner)), record_(std::move(record)), status_(status) {}
  ~CountingSink() override { record_->Finish(status_); }
  bool Write(std::string bytes) override {
    if (first_.exchange(false)) record_->NoteBody(bytes);
    std::size_t n = bytes.size();
    bool ok = inner_->Write(std::move(bytes));
    if (ok) record_->AddBytesOut(n);
    return ok;
  }
  void Close() override {
    inner_->Close();
    record_->Finish(status_);
  }
  bool IsOpen() const override { return inner_->IsOpen(); }

 private:
  std::shared_ptr<StreamSink> inner_;
  std::shared_ptr<AccessRecord> record_;
  int status_;
  std::atomic<bool> first_{true};
};

}  // namespace

std::string RunIdInBody(std::string_view body, bool native_run) {
  for (std::string_view prefix : {"\"chatcmpl-", "\"resp_"}) {
    std::string id = HexAfter(body, prefix);
    if (!id.empty()) return id;
  }
  return native_run ? HexAfter(body, "\"id\":\"") : "";
}

RequestHandler WithAccessLog(RequestHandler inner, AccessDescriber describe) {
  return [inner = std::move(inner), describe = std::move(describe)](const HttpRequest& request) {
    auto record = std::make_shared<AccessRecord>(request, describe(request));
    HttpResponse response = inner(request);
    if (response.stream) {
      auto start = std::move(response.stream);
      int status = response.status;
      response.stream = [start = std::move(start), record, status](std::shared_ptr<StreamSink> sink) {
        start(std::make_shared<CountingSink>(std::move(sink), record, status));
      };
    } else if (response.deferred) {
      auto produce = std::move(response.deferred);
      response.deferred = [produce = std::move(produce), record](std::function<void(HttpResponse)> finish) {
        produce([finish = std::move(finish), record](HttpResponse r) {
          record->AddBytesOut(r.body.size());
          record->NoteBody(r.body);
          record->Finish(r.status);
          finish(std::move(r));
        });
      };
    } else {
      record->AddBytesOut(response.body.size());
      record->NoteBody(response.body);
      record->Finish(response.status);
    }
    return response;
  };
}

}  // namespace llmsync::api
