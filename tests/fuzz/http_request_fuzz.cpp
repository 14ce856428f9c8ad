// Fuzz target: arbitrary bytes as an HTTP request to a real llmsync server (tests/fuzz/fuzz_server.h:
// every route and handler). The server must answer with a response that is not a 500,
// or close the connection, and must keep serving: never crash, never hang. Each input is sent on a
// fresh loopback connection whose write side is then shut, so the server sees the request's end.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/logging.h"
#include "fuzz_server.h"

namespace {

// Sends `request`, half-closes, and returns everything the server answered before closing.
std::string Exchange(std::uint16_t port, std::string_view request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("connect");
    std::abort();  // the server stopped accepting
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

// Whether one of the responses in `answer` (pipelined, one after another) has status 500. Walks
// the status lines, skipping each body by its Content-Length or chunks: a body may quote the
// request, "HTTP/1.1 500" included (a refused Host header is echoed in the error message).
bool HasStatus500(std::string_view answer) {
  while (answer.starts_with("HTTP/1.1 ")) {
    if (answer.substr(9, 3) == "500") return true;
    std::size_t end = answer.find("\r\n\r\n");
    if (end == std::string_view::npos) return false;
    std::string head(answer.substr(0, end));
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    answer.remove_prefix(end + 4);
    if (std::size_t at = head.find("\r\ncontent-length: "); at != std::string::npos) {
      answer.remove_prefix(
          std::min<std::size_t>(answer.size(), std::strtoull(head.c_str() + at + 18, nullptr, 10)));
    } else if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      for (;;) {  // each chunk: hex size CRLF data CRLF; the last has size 0
        std::size_t line = answer.find("\r\n");
        if (line == std::string_view::npos) return false;
        std::size_t n = std::strtoull(std::string(answer.substr(0, line)).c_str(), nullptr, 16);
        answer.remove_prefix(std::min(answer.size(), line + 2 + n + 2));
        if (n == 0) break;
      }
    } else {
      return false;  // a body that lasts until the connection closes
    }
  }
  return false;
}

llmsync::fuzz::FuzzServer* fixture = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  llmsync::SetLogLevel(llmsync::LogLevel::kOff);
  fixture = new llmsync::fuzz::FuzzServer();  // stopped and its directory removed at exit
  std::atexit([] { delete fixture; });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint16_t port = fixture->server->Port();
  std::string_view request(reinterpret_cast<const char*>(data), size);
  std::string answer = Exchange(port, request);
  // Every response on the connection: none may be a 500 (a handler failed on client input).
  if (HasStatus500(answer)) {
    std::fprintf(stderr, "500 for input:\n%.*s\n--- answer:\n%s\n", static_cast<int>(size),
                 reinterpret_cast<const char*>(data), answer.c_str());
    std::abort();
  }
  static int count = 0;
  if (++count % 64 == 0) {
    std::string health = Exchange(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    if (health.rfind("HTTP/1.1 200", 0) != 0) {
      std::fprintf(stderr, "the server stopped serving /healthz: %s\n", health.c_str());
      std::abort();
    }
  }
  return 0;
}
