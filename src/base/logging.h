// A leveled logger writing one line per message to stderr (or an installed sink).
//
//   LLMSYNC_LOG(kInfo) << "listening on " << addr;
//
// Messages below the global level are not formatted at all. Each line carries a UTC timestamp,
// the level and the message.
//
// Thread safety: logging from any thread is safe; lines are never interleaved. SetLogLevel and
// SetLogSink may be called at any time.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "llmsync/status.h"

namespace llmsync {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);
// "debug" | "info" | "warning" | "error" | "off".
Result<LogLevel> ParseLogLevel(std::string_view name);

// Replaces the destination of log lines (for tests); an empty function restores stderr.
using LogSink = std::function<void(LogLevel, std::string_view line)>;
void SetLogSink(LogSink sink);

void EmitLogLine(LogLevel level, std::string_view message);

// Collects one message and emits it on destruction.
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { EmitLogLine(level_, stream_.str()); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostringstream& Stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns a log stream expression into void for the conditional in LLMSYNC_LOG.
struct LogVoidify {
  void operator&(std::ostream& /*unused*/) {}
};

}  // namespace llmsync

// A single expression, so it is safe as the body of an unbraced if/else. operator& binds more
// loosely than <<, so the whole stream chain is built before it is voided.
#define LLMSYNC_LOG(level)                           \
  !::llmsync::LogEnabled(::llmsync::LogLevel::level) \
      ? (void)0                                      \
      : ::llmsync::LogVoidify() & ::llmsync::LogMessage(::llmsync::LogLevel::level).Stream()
