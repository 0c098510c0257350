// Readiness of a server (see readiness.h).
#include "server/readiness.h"

#include <fmt/format.h>

namespace codey::server {

bool queue_full(const ModelStatus& m) {
  // The runtime rejects when queued >= queue_limit + free slots.
  return m.queued >= m.queue_limit + std::max(0, m.slots - m.active);
}

Readiness readiness(const RuntimeStatus& status, bool draining, std::string_view model) {
  Readiness r;
  if (draining) r.reasons.emplace_back("draining: finishing the requests it has, taking no new ones");
  for (const auto& m : status.models) {
    if (!model.empty() && m.name != model) continue;
    if (m.pinned && m.state == ModelState::kLoading)
      r.reasons.push_back(fmt::format("starting: model '{}' is loading ({:.0f}%)", m.name, 100 * m.load_progress));
    else if (m.pinned && m.state == ModelState::kUnloaded && !m.error.empty())
      r.reasons.push_back(fmt::format("model '{}' failed to load: {}", m.name, m.error));
    if (queue_full(m))
      r.reasons.push_back(fmt::format("queue full: model '{}' ({} running in {} slots, {} waiting, limit {})", m.name,
                                      m.active, m.slots, m.queued, m.queue_limit));
  }
  r.ready = r.reasons.empty();
  return r;
}

}  // namespace codey::server
