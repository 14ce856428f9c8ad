// TokenConstraint: restricts which tokens a run may sample next (structured output).
//
// The scheduler consults a run's constraint before each sampling step: Mask sets the logits of
// tokens that may not come next to -infinity, the sampler picks among the rest, and Accept
// advances the constraint past the sampled token. Once Done, the run ends (finish_reason "stop").
// A constraint is built from the opaque spec string in RunParams::constraint by the factory the
// server supplies (SchedulerDeps::constraint_factory), so a run resumed after a restart rebuilds
// it and replays its durable tokens through Accept.
//
// Thread safety: a constraint belongs to one run and is used by the inference thread only; a
// ConstraintFactory must be callable from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "llmsync/status.h"
#include "session/node.h"

namespace llmsync::runs {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Masks the tokens that may not come next. `remaining` counts the tokens the run may still
  // generate, this one included: a constraint must leave only tokens that can still finish in time.
  // Mask must equal, token by token, masking every id that Allows rejects (logits already at
  // -infinity stay masked); Mask is the fast form.
  virtual void Mask(std::span<float> logits, std::int64_t remaining) = 0;
  // The definition Mask implements, one token at a time: whether `token` may come next with
  // `remaining` tokens left (tests and `llmsync bench constraint` compare Mask against it).
  virtual bool Allows(session::TokenId token, std::int64_t remaining) const = 0;
  virtual void Accept(session::TokenId token) = 0;
  // The output is complete: generation ends.
  virtual bool Done() const = 0;
};

using ConstraintFactory = std::function<Result<std::unique_ptr<TokenConstraint>>(std::string_view spec)>;

}  // namespace llmsync::runs
