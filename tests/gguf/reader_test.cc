// Tests of the GGUF reader and writer: round trips of every metadata type,
// hostile and truncated inputs, and the shared fixture files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "codey/gguf.h"
#include "codey/quant.h"
#include "testing/testing.h"

namespace codey {
namespace {

using testing::read_file_bytes;
using testing::temp_dir;
using testing::testdata;

std::string write_sample(const std::string& path, uint64_t alignment = 32) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_string("llama"));
  w.set("u8", GgufValue::make_scalar(GgufType::kUint8, 200, 200, 0));
  w.set("i8", GgufValue::make_scalar(GgufType::kInt8, 0, -100, 0));
  w.set("u16", GgufValue::make_scalar(GgufType::kUint16, 60000, 60000, 0));
  w.set("i16", GgufValue::make_scalar(GgufType::kInt16, 0, -30000, 0));
  w.set("u32", GgufValue::make_u32(4000000000u));
  w.set("i32", GgufValue::make_i32(-2000000000));
  w.set("u64", GgufValue::make_u64(uint64_t(1) << 40));
  w.set("i64", GgufValue::make_scalar(GgufType::kInt64, 0, -(int64_t(1) << 40), 0));
  w.set("f32", GgufValue::make_f32(1.5f));
  w.set("f64", GgufValue::make_scalar(GgufType::kFloat64, 0, 0, 2.25));
  w.set("bool", GgufValue::make_bool(true));
  w.set("str", GgufValue::make_string("héllo\nworld"));
  w.set("strs", GgufValue::make_string_array({"a", "", "ccc"}));
  std::vector<float> fs{1.0f, -2.0f, 3.5f};
  w.set("floats", GgufValue::make_array<float>(GgufType::kFloat32, fs));
  std::vector<int32_t> is{7, -8};
  w.set("ints", GgufValue::make_array<int32_t>(GgufType::kInt32, is));
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.items = {GgufValue::make_string_array({"x", "y"}), GgufValue::make_array<int32_t>(GgufType::kInt32, is)};
  nested.count = nested.items.size();
  w.set("nested", nested);
  if (alignment != 32) w.set_alignment(alignment);
  const int64_t ne_a[] = {64, 3};
  const int64_t ne_b[] = {5};
  w.add_tensor("a", TensorType::kQ8_0, ne_a);
  w.add_tensor("b", TensorType::kF32, ne_b);
  EXPECT_TRUE(w.begin(path).has_value());
  std::vector<uint8_t> a(row_bytes(TensorType::kQ8_0, 64) * 3);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 7);
  // valid f16 scales (0x3c00 = 1.0) at each block start
  for (size_t blk = 0; blk < a.size() / 34; ++blk) {
    a[blk * 34] = 0x00;
    a[blk * 34 + 1] = 0x3c;
  }
  EXPECT_TRUE(w.write_tensor_data(a).has_value());
  std::vector<float> b{1, 2, 3, 4, 5};
  EXPECT_TRUE(w.write_tensor_data({reinterpret_cast<const uint8_t*>(b.data()), b.size() * 4}).has_value());
  EXPECT_TRUE(w.finish().has_value());
  return path;
}

TEST(GgufRoundTrip, EveryMetadataTypeAndTensors) {
  const std::string path = write_sample(temp_dir() + "/sample.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_u64("u8"), 200u);
  EXPECT_EQ(*f->get_i64("i8"), -100);
  EXPECT_EQ(*f->get_u32("u16"), 60000u);
  EXPECT_EQ(*f->get_i64("i16"), -30000);
  EXPECT_EQ(*f->get_u32("u32"), 4000000000u);
  EXPECT_EQ(*f->get_i64("i32"), -2000000000);
  EXPECT_EQ(*f->get_u64("u64"), uint64_t(1) << 40);
  EXPECT_EQ(*f->get_i64("i64"), -(int64_t(1) << 40));
  EXPECT_FLOAT_EQ(*f->get_f32("f32"), 1.5f);
  EXPECT_FLOAT_EQ(*f->get_f32("f64"), 2.25f);
  EXPECT_TRUE(*f->get_bool("bool"));
  EXPECT_EQ(*f->get_string("str"), "héllo\nworld");
  auto strs = f->get_string_array("strs");
  ASSERT_TRUE(strs.has_value());
  ASSERT_EQ(strs->size(), 3u);
  EXPECT_EQ((*strs)[0], "a");
  EXPECT_EQ((*strs)[1], "");
  EXPECT_EQ((*strs)[2], "ccc");
  EXPECT_EQ(*f->get_f32_array("floats"), (std::vector<float>{1.0f, -2.0f, 3.5f}));
  EXPECT_EQ(*f->get_int_array("ints"), (std::vector<int64_t>{7, -8}));
  const GgufValue* nested = f->find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].strs[1], "y");
  EXPECT_EQ(nested->items[1].array_i64(1), -8);
  ASSERT_EQ(f->tensors().size(), 2u);
  const auto* a = f->find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, TensorType::kQ8_0);
  EXPECT_EQ(a->ne[0], 64);
  EXPECT_EQ(a->ne[1], 3);
  EXPECT_EQ(a->n_bytes, 34u * 2 * 3);
  const auto* b = f->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->offset % 32, 0u);
  TensorView bv = f->view(*b);
  float b3;
  std::memcpy(&b3, bv.data.data() + 12, 4);
  EXPECT_EQ(b3, 4.0f);
  EXPECT_EQ(f->file_size() % 32, 0u);
}

TEST(GgufRoundTrip, CustomAlignment) {
  const std::string path = write_sample(temp_dir() + "/aligned.gguf", 256);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->alignment(), 256u);
  EXPECT_EQ(f->part(0).data_offset % 256, 0u);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.offset % 256, 0u);
}

TEST(GgufTypedAccess, MissingAndMistypedKeysNameTheKey) {
  const std::string path = write_sample(temp_dir() + "/typed.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.has_value());
  auto missing = f->get_u32("llama.context_length");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("llama.context_length"), std::string::npos);
  auto wrong = f->get_u32("str");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_NE(wrong.error().message.find("'str' should be an unsigned integer but is string"), std::string::npos)
      << wrong.error().message;
  EXPECT_FALSE(f->get_u32("i8").has_value());   // negative
  EXPECT_FALSE(f->get_u32("u64").has_value());  // too large for 32 bits
  EXPECT_FALSE(f->get_string_array("floats").has_value());
  EXPECT_EQ(*f->get_u64_or("absent", 42), 42u);
  EXPECT_FALSE(f->get_u64_or("str", 42).has_value());
  EXPECT_EQ(f->arch_key("block_count"), "llama.block_count");
}

TEST(GgufHostile, EveryTruncationFailsCleanly) {
  const std::string path = write_sample(temp_dir() + "/trunc.gguf");
  auto bytes = read_file_bytes(path);
  auto whole = GgufFile::parse(bytes, "whole");
  ASSERT_TRUE(whole.has_value());
  const uint64_t data_end = whole->part(0).data_offset + whole->tensors().back().offset + whole->tensors().back().n_bytes;
  for (size_t n = 0; n < data_end; ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
    auto r = GgufFile::parse(cut, "cut.gguf");
    ASSERT_FALSE(r.has_value()) << "prefix of " << n << " bytes parsed";
    EXPECT_NE(r.error().message.find("cut.gguf"), std::string::npos);
  }
}

TEST(GgufHostile, BitFlipsNeverCrash) {
  const std::string path = write_sample(temp_dir() + "/flip.gguf");
  auto bytes = read_file_bytes(path);
  std::mt19937 rng(1234);
  int failures = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto copy = bytes;
    const int flips = 1 + iter % 4;
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % std::min<size_t>(copy.size(), 700);  // the header part
      copy[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    auto r = GgufFile::parse(copy, "flip.gguf");
    if (!r) {
      ++failures;
      EXPECT_FALSE(r.error().message.empty());
    }
  }
  EXPECT_GT(failures, 100);  // many flips hit counts, lengths, types
}

std::vector<uint8_t> header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  std::vector<uint8_t> b(24);
  const uint32_t magic = 0x46554747;
  std::memcpy(b.data(), &magic, 4);
  std::memcpy(b.data() + 4, &version, 4);
  std::memcpy(b.data() + 8, &n_tensors, 8);
  std::memcpy(b.data() + 16, &n_kv, 8);
  return b;
}

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}

TEST(GgufHostile, HugeCountsAreRefusedWithoutAllocating) {
  auto b = header(3, 0, uint64_t(1) << 60);
  auto r = GgufFile::parse(b, "huge.gguf");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("metadata count"), std::string::npos) << r.error().message;

  // An array claiming 2^62 strings.
  b = header(3, 0, 1);
  put<uint64_t>(b, 1);
  b.push_back('k');
  put<uint32_t>(b, 9);   // array
  put<uint32_t>(b, 8);   // of strings
  put<uint64_t>(b, uint64_t(1) << 62);
  r = GgufFile::parse(b, "arr.gguf");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("array of"), std::string::npos) << r.error().message;

  // A string longer than the file.
  b = header(3, 0, 1);
  put<uint64_t>(b, uint64_t(1) << 50);
  b.resize(b.size() + 64);
  r = GgufFile::parse(b, "str.gguf");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("offset 24"), std::string::npos) << r.error().message;
}

TEST(GgufHostile, BadMagicVersionTypeDims) {
  std::vector<uint8_t> junk{'G', 'G', 'U', 'X', 3, 0, 0, 0};
  auto r = GgufFile::parse(junk, "junk");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("not a GGUF file"), std::string::npos);

  auto b = header(1, 0, 0);
  r = GgufFile::parse(b, "v1");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);

  b = header(3, 0, 1);
  put<uint64_t>(b, 1);
  b.push_back('k');
  put<uint32_t>(b, 13);  // no such value type
  r = GgufFile::parse(b, "type");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("unknown value type 13"), std::string::npos);

  // Tensor with unknown type id and with 5 dims.
  for (auto [dims, type] : {std::pair<uint32_t, uint32_t>{5, 0}, {1, 31}, {1, 9999}}) {
    b = header(3, 1, 0);
    put<uint64_t>(b, 1);
    b.push_back('t');
    put<uint32_t>(b, dims);
    for (uint32_t d = 0; d < std::min<uint32_t>(dims, 4); ++d) put<int64_t>(b, 32);
    put<uint32_t>(b, type);
    put<uint64_t>(b, 0);
    b.resize(b.size() + 256);
    r = GgufFile::parse(b, "tensor");
    ASSERT_FALSE(r.has_value()) << dims << " " << type;
  }
}

TEST(GgufHostile, OverlappingOrOutOfRangeTensors) {
  auto b = header(3, 2, 0);
  for (const char* name : {"x", "y"}) {
    put<uint64_t>(b, 1);
    b.push_back(static_cast<uint8_t>(name[0]));
    put<uint32_t>(b, 1);
    put<int64_t>(b, 16);
    put<uint32_t>(b, 0);  // f32: 64 bytes
    put<uint64_t>(b, 32);  // both at offset 32: overlap
  }
  b.resize(((b.size() + 31) / 32) * 32 + 128);
  auto r = GgufFile::parse(b, "overlap");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("overlap"), std::string::npos) << r.error().message;
}

// Every fixture in shared/testdata parses, and every tensor lies in the file.
TEST(GgufFixtures, AllSharedFilesParse) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const char* dir : {"models", "vocab"}) {
    for (const auto& e : fs::directory_iterator(testdata(dir))) {
      if (e.path().extension() != ".gguf") continue;
      auto f = GgufFile::open(e.path().string());
      ASSERT_TRUE(f.has_value()) << f.error().message;
      EXPECT_TRUE(f->get_string("general.architecture").has_value()) << e.path();
      EXPECT_TRUE(f->get_string_array("tokenizer.ggml.tokens").has_value()) << e.path();
      for (const auto& t : f->tensors()) {
        TensorView v = f->view(t);
        EXPECT_EQ(v.data.size(), t.n_bytes);
      }
      ++n;
    }
  }
  EXPECT_GE(n, 15);
}

}  // namespace
}  // namespace codey
