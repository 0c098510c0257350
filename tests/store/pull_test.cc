// Tests of `codey pull` as a library (src/store/pull.cc, download.cc, hub.cc)
// against a stand-in Hub on loopback: the choice of files, resumed and
// retried transfers, checksums, errors that say what to do, no half files,
// free space, one transfer for parallel pulls, and the token never leaving
// the Hub's host.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/ranges.h>

#include "codey/gguf.h"
#include "codey/store.h"
#include "store/internal.h"
#include "testing/gguf_split.h"
#include "testing/stand_in_hub.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::StandInHub;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string read(const std::string& path) { return testing::read_file_text(path); }

// Every file under dir, relative.
std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

struct Rig {
  StandInHub hub;
  StoreOptions o;
  PullOptions po;
  std::vector<std::string> statuses;
  std::vector<PullProgress> progress;
  std::mutex mu;
  Rig() {
    const std::string home = testing::temp_dir();
    o.models_dir = home + "/models";
    o.hf_cache = home + "/hf";
    o.ollama_dirs = {home + "/ollama"};
    o.lmstudio_dirs = {home + "/lms"};
    o.hf_endpoint = hub.endpoint();
    po.backoff = Millis(1);
    po.stall_timeout = std::chrono::seconds(1);
  }
  PullEvents events() {
    PullEvents ev;
    ev.on_status = [this](std::string_view s) {
      std::lock_guard l(mu);
      statuses.emplace_back(s);
    };
    ev.on_progress = [this](const PullProgress& p) {
      std::lock_guard l(mu);
      progress.push_back(p);
    };
    return ev;
  }
  Result<PullResult> pull(std::string_view ref, std::stop_token stop = {}) { return pull_model(ref, o, events(), po, stop); }
  std::string dir(const std::string& repo) { return o.models_dir + "/hf.co/" + repo; }
  bool said(std::string_view s) {
    std::lock_guard l(mu);
    for (const auto& x : statuses)
      if (x.find(s) != std::string::npos) return true;
    return false;
  }
};

// A repo with several quantizations of random content.
StandInHub::Repo quants_repo(std::initializer_list<const char*> quants, size_t size = 300000) {
  StandInHub::Repo r;
  uint32_t seed = 1;
  for (const char* q : quants) r.files[fmt::format("Coder-{}.gguf", q)] = {random_bytes(size + seed, seed), true, ""};
  r.files["README.md"] = {"# Coder\n", false, ""};
  r.files["mmproj-Coder-f16.gguf"] = {random_bytes(1000, 99), true, ""};
  ++seed;
  return r;
}

TEST(Pull, DefaultQuantIsChosenDownloadedVerifiedAndRecorded) {
  Rig rig;
  auto repo = quants_repo({"Q2_K", "Q4_K_M", "Q8_0"});
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("Org/Coder-GGUF", repo);
  auto r = rig.pull("hf.co/Org/Coder-GGUF");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->downloaded);
  EXPECT_NE(r->chosen.find("Q4_K_M, the repo's default"), std::string::npos) << r->chosen;
  EXPECT_TRUE(rig.said("Q4_K_M, the repo's default"));
  const std::string dir = rig.dir("Org/Coder-GGUF");
  EXPECT_EQ(r->model.path, dir + "/Coder-Q4_K_M.gguf");
  EXPECT_EQ(r->model.source, ModelSource::kCodey);
  EXPECT_EQ(r->model.sha256, StandInHub::sha256_of(want));
  EXPECT_EQ(read(r->model.path), want);
  EXPECT_EQ(tree(dir), (std::vector<std::string>{".codey-pull.json", ".codey-pull.lock", "Coder-Q4_K_M.gguf"}))
      << "one model, no partial file, nothing else of the repo";
  ASSERT_FALSE(rig.progress.empty());
  EXPECT_EQ(rig.progress.back().completed, want.size());
  EXPECT_EQ(rig.progress.back().digest, "sha256:" + StandInHub::sha256_of(want));
  // The default reference now resolves offline, and so does the quant's.
  EXPECT_EQ(resolve_model("hf.co/Org/Coder-GGUF", rig.o)->path, r->model.path);
  EXPECT_EQ(resolve_model("hf.co/org/coder-gguf:q4_k_m", rig.o)->path, r->model.path);
  // Pulling again asks the Hub for the listing only: up to date.
  const int cdn_before = rig.hub.count("cdn", "/blob/");
  auto again = rig.pull("hf.co/Org/Coder-GGUF:Q4_K_M");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_FALSE(again->downloaded);
  EXPECT_EQ(rig.hub.count("cdn", "/blob/"), cdn_before);
}

// A file the manifest does not vouch for is hashed, not downloaded again;
// one whose bytes differ from the listing is replaced.
TEST(Pull, FilesOnDiskAreCheckedAgainstTheListing) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"});
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  fs::remove(rig.dir("o/r") + "/.codey-pull.json");
  auto again = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(rig.hub.count("cdn", "/blob/"), 1) << "the file on disk was hashed and kept";
  // Same size, other bytes (edited in place): downloaded again.
  std::string edited = want;
  edited[100] ^= 1;
  std::ofstream(r->model.path, std::ios::binary | std::ios::trunc) << edited;
  fs::remove(rig.dir("o/r") + "/.codey-pull.json");
  auto fixed = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(fixed.has_value()) << fixed.error().message;
  EXPECT_EQ(read(fixed->model.path), want);
  EXPECT_EQ(rig.hub.count("cdn", "/blob/"), 2);
}

// The Hub's listing is hostile until checked: file names that leave the repo
// are ignored (nothing is written outside it), a listing nested beyond the
// JSON limits is refused without a crash, a file without a size is not
// downloaded.
TEST(Pull, HostileListingsAreCheckedBeforeAnythingIsWritten) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q4_K_M"}));
  rig.hub.edit_listing = [](nlohmann::json& page) {
    nlohmann::json evil = page.at(0);
    for (const char* path : {"../../evil-Q2_K.gguf", "/abs-Q3_K_M.gguf", "a/./b-Q5_K_M.gguf", "a\\..\\c-Q6_K.gguf"}) {
      evil["path"] = path;
      page.push_back(evil);
    }
  };
  auto r = rig.pull("hf.co/o/r");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(fs::path(r->model.path).filename(), "Coder-Q4_K_M.gguf");
  auto q2 = rig.pull("hf.co/o/r:Q2_K");
  ASSERT_FALSE(q2.has_value());
  EXPECT_NE(q2.error().message.find("it has: Q4_K_M"), std::string::npos) << q2.error().message;
  EXPECT_EQ(tree(rig.o.models_dir), (std::vector<std::string>{"hf.co/o/r/.codey-pull.json", "hf.co/o/r/.codey-pull.lock",
                                                              "hf.co/o/r/Coder-Q4_K_M.gguf"}));

  rig.hub.edit_listing = [](nlohmann::json& page) {
    for (auto& e : page) e.erase("size"), e.erase("lfs");
  };
  fs::remove_all(rig.o.models_dir);
  auto sizeless = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(sizeless.has_value());
  EXPECT_NE(sizeless.error().message.find("without a size"), std::string::npos) << sizeless.error().message;

  rig.hub.edit_listing = nullptr;
  rig.hub.listing_body = std::string(200000, '[') + std::string(200000, ']');
  auto deep = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(deep.has_value());
  EXPECT_NE(deep.error().message.find("is not a JSON array"), std::string::npos) << deep.error().message;
  EXPECT_FALSE(fs::exists(rig.dir("o/r") + "/Coder-Q4_K_M.gguf"));
}

TEST(Pull, QuantsMatchCaseInsensitivelyAndAMissingOneListsTheRest) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q3_K_M", "Q5_K_M", "IQ4_XS", "Q8_0"}));
  auto r = rig.pull("hf.co/o/r:q8_0");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(fs::path(r->model.path).filename(), "Coder-Q8_0.gguf");
  auto d = rig.pull("hf.co/o/r");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(fs::path(d->model.path).filename(), "Coder-IQ4_XS.gguf");
  EXPECT_NE(d->chosen.find("no Q4_K_M, the smallest quantization of 4 bits or more"), std::string::npos) << d->chosen;
  auto missing = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "hf.co/o/r has no Q4_K_M quantization; it has: Q3_K_M, IQ4_XS, Q5_K_M, Q8_0");
}

TEST(Pull, UnknownRepoGatedRepoAndBadTokenSayWhatToDo) {
  Rig rig;
  auto unknown = rig.pull("hf.co/nobody/nothing-GGUF:Q4_K_M");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_NE(unknown.error().message.find("no repository hf.co/nobody/nothing-GGUF on " + rig.hub.endpoint()),
            std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("a private repo needs HF_TOKEN"), std::string::npos);

  auto repo = quants_repo({"Q4_K_M"});
  repo.gated = true;
  rig.hub.add_repo("meta/Gated-GGUF", repo);
  auto gated = rig.pull("hf.co/meta/Gated-GGUF");
  ASSERT_FALSE(gated.has_value());
  EXPECT_NE(gated.error().message.find("hf.co/meta/Gated-GGUF is gated (401): accept its conditions at " +
                                       rig.hub.endpoint() + "/meta/Gated-GGUF"), std::string::npos)
      << gated.error().message;
  EXPECT_NE(gated.error().message.find("set HF_TOKEN"), std::string::npos);
  rig.o.hf_token = "hf_wrong";
  auto wrong = rig.pull("hf.co/meta/Gated-GGUF");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message.find("refused HF_TOKEN"), std::string::npos) << wrong.error().message;
  EXPECT_EQ(wrong.error().message.find("hf_wrong"), std::string::npos) << "a token is never shown";
  rig.o.hf_token = rig.hub.token;
  auto ok = rig.pull("hf.co/meta/Gated-GGUF");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  // The token went to the Hub, never to the CDN the Hub redirects to.
  int api_with_token = 0;
  for (const auto& s : rig.hub.seen()) {
    if (s.server == "cdn") {
      EXPECT_EQ(s.headers.count("authorization"), 0u) << s.target;
    }
    if (s.server == "api" && s.headers.count("authorization")) ++api_with_token;
  }
  EXPECT_GE(api_with_token, 2) << "listing and resolve";
  auto no_file = rig.pull("hf.co/meta/Gated-GGUF/absent.gguf");
  ASSERT_FALSE(no_file.has_value());
  EXPECT_NE(no_file.error().message.find("has no file 'absent.gguf'"), std::string::npos) << no_file.error().message;
}

TEST(Pull, CutTransfersResumeWithRange) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 500000);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.cut_times = 3, .cut_at = 70000});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read(r->model.path), want);
  std::vector<std::string> ranges;
  for (const auto& s : rig.hub.seen())
    if (s.server == "cdn") ranges.push_back(s.headers.count("range") ? s.headers.at("range") : "");
  EXPECT_EQ(ranges, (std::vector<std::string>{"", "bytes=70000-", "bytes=140000-", "bytes=210000-"}));
  EXPECT_LT(rig.hub.cdn_bytes_sent(), want.size() + 1000) << "nothing downloaded twice";
}

TEST(Pull, CorruptBytesAreDeletedAndFailLoudly) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q4_K_M"}));
  rig.hub.set_faults({.corrupt_times = 1});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(r.error().message.find("but the Hub lists"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("the download was deleted: run the same command again"), std::string::npos);
  const auto left = tree(rig.dir("o/r"));
  for (const auto& f : left) EXPECT_FALSE(f.ends_with(".gguf") || f.ends_with(".partial")) << f;
  EXPECT_FALSE(resolve_model("hf.co/o/r:Q4_K_M", rig.o).has_value());
  auto again = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(again.has_value()) << again.error().message;
}

TEST(Pull, ServerErrorsAreRetriedThenTheDownloadStopsResumably) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 400000);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.error_5xx_times = 2});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(rig.said("retrying in"));
  ASSERT_TRUE(remove_model("hf.co/o/r:Q4_K_M", rig.o).has_value());

  // Cut every time after the first 50000 bytes: the tries run out; the
  // partial file stays and the message says how to resume.
  rig.po.max_attempts = 3;
  rig.hub.set_faults({.cut_times = 100, .cut_at_offset = 50000});
  auto cut = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(cut.has_value());
  EXPECT_NE(cut.error().message.find("run the same command again to resume"), std::string::npos) << cut.error().message;
  const std::string partial = rig.dir("o/r") + "/Coder-Q4_K_M.gguf.partial";
  ASSERT_TRUE(fs::exists(partial));
  const uint64_t have = fs::file_size(partial);
  EXPECT_EQ(have, 50000u);
  EXPECT_FALSE(fs::exists(rig.dir("o/r") + "/Coder-Q4_K_M.gguf")) << "no half file under the model's name";
  EXPECT_EQ(list_models(rig.o, false).partials.size(), 1u);
  rig.hub.set_faults({});
  auto resumed = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(read(resumed->model.path), want);
  EXPECT_EQ(rig.hub.seen().back().headers["range"], fmt::format("bytes={}-", have));
  EXPECT_TRUE(rig.said("resuming at"));
}

TEST(Pull, AServerThatIgnoresRangeRestartsCleanly) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 200000);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.cut_times = 1, .cut_at = 60000, .ignore_range = true});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read(r->model.path), want);
}

TEST(Pull, StalledTransferIsCutAndResumed) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 200000);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.stall_times = 1, .stall_at = 30000, .stall_ms = 3000});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read(r->model.path), want);
  EXPECT_TRUE(rig.said("no data for 1 s")) << "the stall is named: " << fmt::format("{}", fmt::join(rig.statuses, " | "));
}

TEST(Pull, AFileThatChangedOnTheHubIsRefused) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q4_K_M"}));
  rig.hub.set_faults({.wrong_linked_size = 1});
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("changed on the Hub while pulling"), std::string::npos) << r.error().message;
}

TEST(Pull, NotEnoughDiskSpaceIsCheckedFirst) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q4_K_M"}, 100000));
  rig.po.free_bytes = [](const std::string&) -> Result<uint64_t> { return 5000; };
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("not enough disk space"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("CODEY_MODELS"), std::string::npos);
  EXPECT_EQ(rig.hub.count("cdn", "/blob/"), 0) << "nothing downloaded";
}

TEST(Pull, CancelKeepsThePartialAndTheNextPullResumes) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 1 << 20);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.throttle_ms = 5});
  std::stop_source stop;
  PullEvents ev;
  ev.on_progress = [&](const PullProgress& p) {
    if (p.completed >= 200000) stop.request_stop();  // as Ctrl-C would
  };
  auto r = pull_model("hf.co/o/r:Q4_K_M", rig.o, ev, rig.po, stop.get_token());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  const std::string partial = rig.dir("o/r") + "/Coder-Q4_K_M.gguf.partial";
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_GE(fs::file_size(partial), 200000u);
  rig.hub.set_faults({});
  auto resumed = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(resumed.has_value()) << resumed.error().message;
  EXPECT_EQ(read(resumed->model.path), want);
}

TEST(Pull, ParallelPullsOfOneFileShareOneTransfer) {
  Rig rig;
  auto repo = quants_repo({"Q4_K_M"}, 1 << 20);
  const std::string want = repo.files["Coder-Q4_K_M.gguf"].content;
  rig.hub.add_repo("o/r", repo);
  rig.hub.set_faults({.throttle_ms = 5});
  std::vector<std::thread> threads;
  std::vector<Result<PullResult>> results(3, make_error(ErrorCode::kInternal, "not run"));
  for (int i = 0; i < 3; ++i) threads.emplace_back([&, i] { results[i] = rig.pull("hf.co/o/r:Q4_K_M"); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(read(r->model.path), want);
  }
  EXPECT_EQ(rig.hub.count("cdn", "/blob/"), 1) << "one transfer for all three";
}

TEST(Pull, SplitModelsComeWholeAndLoadAsOneModel) {
  Rig rig;
  const std::string dir = testing::temp_dir();
  const auto parts = testing::split_gguf(testing::testdata("models/tiny-llama-Q4_K_M.gguf"), dir + "/Tiny-Q4_K_M",
                                         {.max_tensors = 16});
  ASSERT_EQ(parts.size(), 3u);
  StandInHub::Repo repo;
  for (const auto& p : parts) repo.files["Q4_K_M/" + fs::path(p).filename().string()] = {read(p), true, ""};
  repo.files["Tiny-Q8_0.gguf"] = {random_bytes(1000, 3), true, ""};
  rig.hub.add_repo("o/Tiny-GGUF", repo);
  rig.hub.page_size = 2;  // the listing comes in pages
  auto r = rig.pull("hf.co/o/Tiny-GGUF:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->model.files.size(), 3u);
  EXPECT_EQ(r->model.path, rig.dir("o/Tiny-GGUF") + "/Q4_K_M/Tiny-Q4_K_M-00001-of-00003.gguf");
  EXPECT_GE(rig.hub.count("api", "/api/models/o/Tiny-GGUF/tree/main"), 2) << "every page was read";
  auto f = GgufFile::open(r->model.path);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->n_parts(), 3u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  // A part named by its file pulls (and names) the whole model.
  ASSERT_TRUE(remove_model("hf.co/o/Tiny-GGUF:Q4_K_M", rig.o).has_value());
  auto by_part = rig.pull("hf.co/o/Tiny-GGUF/Q4_K_M/Tiny-Q4_K_M-00002-of-00003.gguf");
  ASSERT_TRUE(by_part.has_value()) << by_part.error().message;
  EXPECT_EQ(by_part->model.files.size(), 3u);
}

TEST(Pull, OfflineWithTheModelOnDiskUsesIt) {
  Rig rig;
  rig.hub.add_repo("o/r", quants_repo({"Q4_K_M"}));
  ASSERT_TRUE(rig.pull("hf.co/o/r:Q4_K_M").has_value());
  rig.o.hf_endpoint = "http://127.0.0.1:9";  // nothing listens there
  auto r = rig.pull("hf.co/o/r:Q4_K_M");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->downloaded);
  EXPECT_NE(r->chosen.find("the Hub could not be reached"), std::string::npos) << r->chosen;
  auto other = rig.pull("hf.co/o/r:Q8_0");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, ErrorCode::kIo);
}

TEST(Pull, NothingToPullForPathsAndOllamaModels) {
  Rig rig;
  auto p = rig.pull("model.gguf");
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find("codey pull takes hf.co/OWNER/REPO[:QUANT]"), std::string::npos);
  auto o = rig.pull("ollama:qwen2.5-coder:7b");
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().message.find("ollama pull qwen2.5-coder:7b"), std::string::npos) << o.error().message;
}

}  // namespace
}  // namespace codey
