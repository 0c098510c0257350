// Tests of server/readiness.cc: what GET /ready answers for a status snapshot.
#include "server/readiness.h"

#include <gtest/gtest.h>

namespace codey::server {
namespace {

ModelStatus model(std::string name, ModelState state, int slots, int active, int queued, int limit,
                  bool pinned = false) {
  ModelStatus m;
  m.name = std::move(name);
  m.state = state;
  m.slots = slots;
  m.active = active;
  m.queued = queued;
  m.queue_limit = limit;
  m.pinned = pinned;
  return m;
}

TEST(Readiness, IdleServerIsReady) {
  RuntimeStatus st;
  st.models.push_back(model("a", ModelState::kUnloaded, 2, 0, 0, 8));
  st.models.push_back(model("b", ModelState::kLoaded, 1, 1, 3, 8, /*pinned=*/true));
  const Readiness r = readiness(st, false);
  EXPECT_TRUE(r.ready);
  EXPECT_TRUE(r.reasons.empty());
}

TEST(Readiness, DrainingIsNotReady) {
  RuntimeStatus st;
  st.models.push_back(model("a", ModelState::kLoaded, 1, 0, 0, 8));
  const Readiness r = readiness(st, true);
  EXPECT_FALSE(r.ready);
  ASSERT_EQ(r.reasons.size(), 1u);
  EXPECT_TRUE(r.reasons[0].starts_with("draining")) << r.reasons[0];
}

TEST(Readiness, PinnedModelLoadingOrFailedIsNotReady) {
  RuntimeStatus st;
  st.models.push_back(model("big", ModelState::kLoading, 1, 0, 0, 8, true));
  st.models.back().load_progress = 0.5;
  st.models.push_back(model("lazy", ModelState::kLoading, 1, 0, 0, 8));  // loads on demand: no say
  Readiness r = readiness(st, false);
  EXPECT_FALSE(r.ready);
  ASSERT_EQ(r.reasons.size(), 1u);
  EXPECT_EQ(r.reasons[0], "starting: model 'big' is loading (50%)");
  EXPECT_TRUE(readiness(st, false, "lazy").ready);  // ?model=lazy asks about that one only

  st.models[0].state = ModelState::kUnloaded;
  st.models[0].error = "bad magic";
  r = readiness(st, false);
  EXPECT_FALSE(r.ready);
  ASSERT_EQ(r.reasons.size(), 1u);
  EXPECT_NE(r.reasons[0].find("'big' failed to load: bad magic"), std::string::npos) << r.reasons[0];
}

TEST(Readiness, FullQueueIsNotReadyExactlyWhenTheNextRequestWouldBeRejected) {
  RuntimeStatus st;
  // 2 slots, both busy, queue limit 3: 3 waiting is full, 2 is not.
  st.models.push_back(model("a", ModelState::kBusy, 2, 2, 2, 3));
  st.models.push_back(model("b", ModelState::kLoaded, 1, 0, 0, 3));
  EXPECT_TRUE(readiness(st, false).ready);
  st.models[0].queued = 3;
  EXPECT_TRUE(queue_full(st.models[0]));
  Readiness r = readiness(st, false);
  EXPECT_FALSE(r.ready);
  ASSERT_EQ(r.reasons.size(), 1u);
  EXPECT_EQ(r.reasons[0], "queue full: model 'a' (2 running in 2 slots, 3 waiting, limit 3)");
  EXPECT_TRUE(readiness(st, false, "b").ready);
  EXPECT_FALSE(readiness(st, false, "a").ready);
  // While loading, the queue also holds what the free slots will take.
  ModelStatus loading = model("c", ModelState::kLoading, 2, 0, 4, 3);
  EXPECT_FALSE(queue_full(loading));
  loading.queued = 5;
  EXPECT_TRUE(queue_full(loading));
}

}  // namespace
}  // namespace codey::server
