#include "runs/run_params.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "base/hex.h"

namespace llmsync::runs {
namespace {

constexpr std::string_view kVersionLine = "llmsync-run-params 1";

std::string FloatText(float v) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof(bits));
  return std::to_string(bits);  // exact: the bit pattern, not a decimal rendering
}

Result<float> ParseFloatBits(std::string_view text) {
  std::uint32_t bits = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), bits);
  if (ec != std::errc() || ptr != text.data() + text.size()) return Status::DataLoss("bad float field");
  float v = 0;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

template <typename Int>
Result<Int> ParseInt(std::string_view text) {
  Int v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return Status::DataLoss("bad integer field");
  return v;
}

}  // namespace

Status ValidateRunParams(const RunParams& params, const RunLimits& limits) {
  if (params.max_tokens < 1 || params.max_tokens > limits.max_tokens) {
    return Status::InvalidArgument("max_tokens must be between 1 and " + std::to_string(limits.max_tokens));
  }
  if (params.stop.size() > limits.max_stop_strings) {
    return Status::InvalidArgument("at most " + std::to_string(limits.max_stop_strings) + " stop strings");
  }
  for (const std::string& s : params.stop) {
    if (s.empty()) return Status::InvalidArgument("stop strings must not be empty");
    if (s.size() > limits.max_stop_bytes) {
      return Status::InvalidArgument("a stop string is longer than " + std::to_string(limits.max_stop_bytes) +
                                     " bytes");
    }
  }
  if (params.lease_s < 0 || params.lease_s > limits.max_lease_s) {
    return Status::InvalidArgument("lease_s must be between 0 and " + std::to_string(limits.max_lease_s));
  }
  return engine::ValidateSamplingParams(params.sampling);
}

std::string EncodeRunParams(const RunParams& p) {
  std::string out(kVersionLine);
  out += "\nmax_tokens=" + std::to_string(p.max_tokens);
  out += "\ntemperature=" + FloatText(p.sampling.temperature);
  out += "\ntop_k=" + std::to_string(p.sampling.top_k);
  out += "\ntop_p=" + FloatText(p.sampling.top_p);
  out += "\nmin_p=" + FloatText(p.sampling.min_p);
  out += "\nrepeat_penalty=" + FloatText(p.sampling.repeat_penalty);
  out += "\nrepeat_last_n=" + std::to_string(p.sampling.repeat_last_n);
  out += "\nseed=" + std::to_string(p.sampling.seed);
  out += "\nlease_s=" + std::to_string(p.lease_s);
  out += "\nadd_generation_prompt=" + std::string(p.add_generation_prompt ? "1" : "0");
  if (p.prefill_only) out += "\nprefill_only=1";
  for (const std::string& s : p.stop) {
    out += "\nstop=" + HexEncode(std::span<const std::uint8_t>(
                           reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }
  if (!p.constraint.empty()) {
    out += "\nconstraint=" +
           HexEncode(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(p.constraint.data()),
                                                   p.constraint.size()));
  }
  if (!p.view_state.empty()) {
    out += "\nview=" + HexEncode(std::span<const std::uint8_t>(
                           reinterpret_cast<const std::uint8_t*>(p.view_state.data()), p.view_state.size()));
  }
  out += "\n";
  return out;
}

Result<RunParams> DecodeRunParams(std::string_view text) {
  std::size_t nl = text.find('\n');
  if (text.substr(0, nl) != kVersionLine) return Status::DataLoss("run parameters have an unknown format");
  RunParams p;
  p.stop.clear();
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  while (!text.empty()) {
    nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Status::DataLoss("run parameters: malformed line");
    std::string_view key = line.substr(0, eq);
    std::string_view value = line.substr(eq + 1);
    if (key == "max_tokens") {
      LLMSYNC_ASSIGN_OR_RETURN(p.max_tokens, ParseInt<std::int32_t>(value));
    } else if (key == "temperature") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.temperature, ParseFloatBits(value));
    } else if (key == "top_k") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.top_k, ParseInt<std::int32_t>(value));
    } else if (key == "top_p") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.top_p, ParseFloatBits(value));
    } else if (key == "min_p") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.min_p, ParseFloatBits(value));
    } else if (key == "repeat_penalty") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.repeat_penalty, ParseFloatBits(value));
    } else if (key == "repeat_last_n") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.repeat_last_n, ParseInt<std::int32_t>(value));
    } else if (key == "seed") {
      LLMSYNC_ASSIGN_OR_RETURN(p.sampling.seed, ParseInt<std::uint64_t>(value));
    } else if (key == "lease_s") {
      LLMSYNC_ASSIGN_OR_RETURN(p.lease_s, ParseInt<std::int64_t>(value));
    } else if (key == "add_generation_prompt") {
      p.add_generation_prompt = value == "1";
    } else if (key == "prefill_only") {
      p.prefill_only = value == "1";
    } else if (key == "constraint") {
      auto bytes = HexDecode(value);
      if (!bytes.IsOk()) return Status::DataLoss("run parameters: bad constraint");
      p.constraint.assign(bytes->begin(), bytes->end());
    } else if (key == "view") {
      auto bytes = HexDecode(value);
      if (!bytes.IsOk()) return Status::DataLoss("run parameters: bad view state");
      p.view_state.assign(bytes->begin(), bytes->end());
    } else if (key == "stop") {
      auto bytes = HexDecode(value);
      if (!bytes.IsOk()) return Status::DataLoss("run parameters: bad stop string");
      p.stop.emplace_back(bytes->begin(), bytes->end());
    }
    // Unknown keys are ignored so that a newer writer's records stay readable.
  }
  return p;
}

}  // namespace llmsync::runs
