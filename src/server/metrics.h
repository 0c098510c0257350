// GET /metrics: Prometheus text exposition of what the server saw (HTTP
// requests by route and status, time to first token, token throughput) and
// what the runtime reports (queues, loaded models, memory against the budget).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "codey/runtime.h"
#include "server/http_server.h"

namespace codey::server {

// Thread-safe: every method takes the one lock (all are O(1) or O(models)).
class Metrics {
 public:
  static constexpr std::array<double, 11> kTtftBuckets = {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  static constexpr int kRateWindowS = 10;  // tokens/s gauge: tokens over the last 10 s

  // `route` is the matched route pattern ("/v1/chat/completions"), or "other".
  void count_request(std::string_view route, int status);
  void request_begin();
  void request_end();
  // Request arrival to its first generated token, seconds.
  void observe_ttft(std::string_view model, double seconds);
  void add_generated(std::string_view model, int64_t tokens);

  // Every series is a sum or a count over this server alone, labelled only
  // by model, route, status, outcome or bucket - never by anything that
  // names the instance - so the scraper's own instance/pod label is what
  // tells servers apart and sum()/rate() over a cluster mean what they say.
  std::string render(const RuntimeStatus& status, const HttpStats& http, bool draining) const;

 private:
  struct Histogram {
    std::array<uint64_t, kTtftBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
  };
  struct Rate {
    std::array<int64_t, kRateWindowS + 1> tokens{};  // per whole second, ring
    std::array<int64_t, kRateWindowS + 1> second{};  // which second each slot holds
  };
  double rate_locked(const Rate& r, int64_t now_s) const;

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  int64_t in_flight_ = 0;
  std::map<std::string, Histogram, std::less<>> ttft_;
  std::map<std::string, Rate, std::less<>> rate_;
};

}  // namespace codey::server
