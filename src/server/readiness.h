// GET /ready: whether this server should be sent new work - the signal a
// load balancer or Kubernetes readiness probe uses, beside /health (the
// process is alive). Not ready while it starts (a pinned model is still
// loading, or failed to), while it drains after SIGTERM, and while a model's
// queue is full (the next request would get 429).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "codey/runtime.h"

namespace codey::server {

struct Readiness {
  bool ready = true;
  // Why not, one line each: "draining", "starting: model 'x' is loading",
  // "model 'x' failed to load: ...", "queue full: model 'x' (2 running in 2
  // slots, 8 waiting, limit 8)".
  std::vector<std::string> reasons;
};

// `model`: only that model's state counts (besides draining); "" for every
// model. Pure: a function of the status snapshot.
Readiness readiness(const RuntimeStatus& status, bool draining, std::string_view model = {});

// True when the model takes no more requests: every slot busy and the queue at its limit.
bool queue_full(const ModelStatus& m);

}  // namespace codey::server
