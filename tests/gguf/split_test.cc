// Tests of split GGUF models (gguf-split's PREFIX-0000i-of-0000N.gguf): every
// part found from any one, tensors read from their own file, and clear errors
// for a missing, foreign or renamed part.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "codey/gguf.h"
#include "testing/gguf_split.h"
#include "testing/testing.h"

namespace codey {
namespace {

namespace fs = std::filesystem;
using testing::read_file_bytes;
using testing::split_gguf;
using testing::temp_dir;

// A file of `n` f32 tensors t0..t{n-1} of different lengths with known values.
std::string write_tensors(const std::string& path, int n, uint64_t seed = 7) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string("llama"));
  w.set("general.name", GgufValue::make_string("split me"));
  std::vector<std::vector<float>> data;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(-1, 1);
  for (int i = 0; i < n; ++i) {
    const int64_t ne[] = {16 + 8 * i, 2};
    w.add_tensor(fmt::format("t{}", i), TensorType::kF32, ne);
    auto& d = data.emplace_back(static_cast<size_t>(ne[0] * ne[1]));
    for (auto& x : d) x = u(rng);
  }
  EXPECT_TRUE(w.begin(path).has_value());
  for (const auto& d : data)
    EXPECT_TRUE(w.write_tensor_data({reinterpret_cast<const uint8_t*>(d.data()), d.size() * 4}).has_value());
  EXPECT_TRUE(w.finish().has_value());
  return path;
}

void expect_same_tensors(const GgufFile& a, const GgufFile& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const GgufTensorInfo* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    const auto va = a.view(t).data, vb = b.view(*u).data;
    ASSERT_EQ(va.size(), vb.size()) << t.name;
    EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size()), 0) << t.name;
  }
}

TEST(GgufSplitName, ParsesAndFormats) {
  auto n = parse_split_name("/m/qwen2.5-7b-q4_k_m-00002-of-00003.gguf");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->prefix, "/m/qwen2.5-7b-q4_k_m");
  EXPECT_EQ(n->no, 2u);
  EXPECT_EQ(n->count, 3u);
  EXPECT_EQ(split_name(n->prefix, 1, 3), "/m/qwen2.5-7b-q4_k_m-00001-of-00003.gguf");
  EXPECT_FALSE(parse_split_name("model.gguf"));
  EXPECT_FALSE(parse_split_name("model-00001-of-00003.bin"));
  EXPECT_FALSE(parse_split_name("model-0001-of-0003.gguf"));   // gguf-split writes 5 digits
  EXPECT_FALSE(parse_split_name("model-00004-of-00003.gguf"));  // past the count
  EXPECT_FALSE(parse_split_name("model-00000-of-00003.gguf"));  // numbers are 1-based
  EXPECT_FALSE(parse_split_name("-00001-of-00003.gguf"));       // no prefix
}

TEST(GgufSplit, AnyPartOpensTheWholeModel) {
  const std::string dir = temp_dir();
  const std::string whole_path = write_tensors(dir + "/whole.gguf", 7);
  const auto parts = split_gguf(whole_path, dir + "/model", {.max_tensors = 3});
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(fs::path(parts[0]).filename(), "model-00001-of-00003.gguf");
  auto whole = GgufFile::open(whole_path);
  ASSERT_TRUE(whole.has_value());
  for (const auto& p : parts) {
    auto f = GgufFile::open(p);
    ASSERT_TRUE(f.has_value()) << f.error().message;
    EXPECT_EQ(f->n_parts(), 3u);
    EXPECT_EQ(f->split_count(), 3u);
    EXPECT_EQ(f->name(), parts[0]) << "metadata and name come from the first part";
    EXPECT_EQ(*f->get_string("general.name"), "split me");
    expect_same_tensors(*whole, *f);
    EXPECT_EQ(f->find_tensor("t0")->part, 0u);
    EXPECT_EQ(f->find_tensor("t6")->part, 2u);
    uint64_t size = 0;
    for (const auto& q : parts) size += fs::file_size(q);
    EXPECT_EQ(f->file_size(), size);
    auto s = summarize(*f);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->n_files, 3u);
    EXPECT_EQ(s->file_size, size);
  }
}

TEST(GgufSplit, FirstPartWithMetadataOnly) {
  const std::string dir = temp_dir();
  const std::string whole_path = write_tensors(dir + "/whole.gguf", 4);
  const auto parts = split_gguf(whole_path, dir + "/m", {.max_tensors = 2, .first_without_tensors = true});
  ASSERT_EQ(parts.size(), 3u);
  auto f = GgufFile::open(parts[2]);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  auto whole = GgufFile::open(whole_path);
  expect_same_tensors(*whole, *f);
  EXPECT_EQ(f->find_tensor("t0")->part, 1u);
}

TEST(GgufSplit, MissingPartIsNamed) {
  const std::string dir = temp_dir();
  const auto parts = split_gguf(write_tensors(dir + "/whole.gguf", 5), dir + "/m", {.max_tensors = 2});
  ASSERT_EQ(parts.size(), 3u);
  fs::remove(parts[1]);
  for (const auto& p : {parts[0], parts[2]}) {
    auto f = GgufFile::open(p);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, ErrorCode::kNotFound);
    EXPECT_NE(f.error().message.find("part 2 (" + parts[1] + ") is missing"), std::string::npos) << f.error().message;
    EXPECT_NE(f.error().message.find("split in 3 files"), std::string::npos) << f.error().message;
  }
}

TEST(GgufSplit, PartsOfAnotherModelAreRefused) {
  const std::string dir = temp_dir();
  // Same prefix, a different split: part 2 of 2 of the other model under the
  // name of part 2 of 3 says so in its metadata.
  const auto a = split_gguf(write_tensors(dir + "/a.gguf", 6), dir + "/a", {.max_tensors = 2});
  const auto b = split_gguf(write_tensors(dir + "/b.gguf", 4, 9), dir + "/b", {.max_tensors = 2});
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 2u);
  fs::copy_file(b[1], a[1], fs::copy_options::overwrite_existing);
  auto f = GgufFile::open(a[0]);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(f.error().message.find("expected part 2 of 3"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("part 2 of 2"), std::string::npos) << f.error().message;
}

TEST(GgufSplit, TensorCountMismatchIsCorrupt) {
  const std::string dir = temp_dir();
  const auto parts = split_gguf(write_tensors(dir + "/whole.gguf", 4), dir + "/m", {.max_tensors = 2});
  ASSERT_EQ(parts.size(), 2u);
  // Part 2 replaced by a part 2 that holds one tensor less.
  const auto other = split_gguf(write_tensors(dir + "/three.gguf", 3), dir + "/o", {.max_tensors = 2});
  fs::copy_file(other[1], parts[1], fs::copy_options::overwrite_existing);
  auto f = GgufFile::open(parts[0]);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message.find("split.tensors.count is 4 but the 2 parts hold 3 tensors"), std::string::npos)
      << f.error().message;
}

TEST(GgufSplit, DuplicateTensorAcrossPartsIsCorrupt) {
  const std::string dir = temp_dir();
  const auto parts = split_gguf(write_tensors(dir + "/whole.gguf", 4), dir + "/m", {.max_tensors = 2});
  ASSERT_EQ(parts.size(), 2u);
  // A second part that holds t0 again.
  GgufWriter w;
  w.set("split.no", GgufValue::make_scalar(GgufType::kUint16, 1, 1, 0));
  w.set("split.count", GgufValue::make_scalar(GgufType::kUint16, 2, 2, 0));
  const int64_t ne[] = {16, 2};
  w.add_tensor("t0", TensorType::kF32, ne);
  ASSERT_TRUE(w.begin(parts[1]).has_value());
  std::vector<float> zeros(32);
  ASSERT_TRUE(w.write_tensor_data({reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size() * 4}).has_value());
  ASSERT_TRUE(w.finish().has_value());
  auto f = GgufFile::open(parts[0]);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message.find("tensor 't0' is also in an earlier part"), std::string::npos) << f.error().message;
}

TEST(GgufSplit, RenamedPartCannotFindItsSiblings) {
  const std::string dir = temp_dir();
  const auto parts = split_gguf(write_tensors(dir + "/whole.gguf", 4), dir + "/m", {.max_tensors = 2});
  fs::rename(parts[0], dir + "/renamed.gguf");
  auto f = GgufFile::open(dir + "/renamed.gguf");
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message.find("does not end in -00001-of-00002.gguf"), std::string::npos) << f.error().message;
}

TEST(GgufSplit, ParsingOnePartKeepsTheDeclaredCount) {
  const std::string dir = temp_dir();
  const auto parts = split_gguf(write_tensors(dir + "/whole.gguf", 4), dir + "/m", {.max_tensors = 2});
  auto bytes = read_file_bytes(parts[0]);
  auto f = GgufFile::parse(bytes, "part1");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->n_parts(), 1u);
  EXPECT_EQ(f->split_count(), 2u);
  EXPECT_EQ(f->tensors().size(), 2u);
}

TEST(GgufSplit, HostileSplitKeys) {
  const std::string dir = temp_dir();
  auto write = [&](const std::string& name, GgufValue no, GgufValue count) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::make_string("llama"));
    w.set("split.no", std::move(no));
    w.set("split.count", std::move(count));
    const std::string p = dir + "/" + name;
    EXPECT_TRUE(w.begin(p).has_value());
    EXPECT_TRUE(w.finish().has_value());
    return p;
  };
  auto f = GgufFile::open(write("a-00001-of-00002.gguf", GgufValue::make_u32(5), GgufValue::make_u32(2)));
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message.find("split.no must be in 0..1"), std::string::npos) << f.error().message;
  f = GgufFile::open(write("b-00001-of-00002.gguf", GgufValue::make_u32(0), GgufValue::make_string("2")));
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message.find("split.count must be an integer"), std::string::npos) << f.error().message;
  f = GgufFile::open(write("c.gguf", GgufValue::make_u32(0), GgufValue::make_u32(0)));
  ASSERT_FALSE(f.has_value());
  // One part of one: an ordinary file.
  f = GgufFile::open(write("d.gguf", GgufValue::make_u32(0), GgufValue::make_u32(1)));
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->n_parts(), 1u);
}

}  // namespace
}  // namespace codey
