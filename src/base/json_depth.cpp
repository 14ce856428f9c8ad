#include "base/json_depth.h"

#include <string>

namespace llmsync {

namespace {

// The offset at which nesting first exceeds max_depth, or npos.
std::size_t FindTooDeep(std::string_view text, int max_depth, int* deepest) {
  int depth = 0;
  *deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character ("\"" does not end the string)
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > *deepest) *deepest = depth;
        if (depth > max_depth) return i;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return std::string_view::npos;
}

}  // namespace

int JsonNestingDepth(std::string_view text, int stop_at) {
  int deepest = 0;
  FindTooDeep(text, stop_at, &deepest);
  return deepest;
}

Status CheckJsonDepth(std::string_view text, std::string_view what, int max_depth) {
  int deepest = 0;
  const std::size_t at = FindTooDeep(text, max_depth, &deepest);
  if (at == std::string_view::npos) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " nests JSON deeper than " + std::to_string(max_depth) +
                                 " levels (at byte " + std::to_string(at) + ")");
}

}  // namespace llmsync
