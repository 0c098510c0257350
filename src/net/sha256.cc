// SHA-256 through OpenSSL's EVP interface (SHA-NI / AVX2 code paths chosen by
// OpenSSL at run time): multi-GB model files are hashed at GB/s.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <openssl/evp.h>

#include "codey/net.h"

namespace codey {

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
  State() : ctx(EVP_MD_CTX_new()) {
    CODEY_ASSERT(ctx != nullptr);
    CODEY_ASSERT(EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1);
  }
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : s_(std::make_unique<State>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const uint8_t> bytes) {
  if (!bytes.empty()) CODEY_ASSERT(EVP_DigestUpdate(s_->ctx, bytes.data(), bytes.size()) == 1);
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  CODEY_ASSERT(EVP_DigestFinal_ex(s_->ctx, md, &n) == 1);
  CODEY_ASSERT_EQ(n, 32u);
  CODEY_ASSERT(EVP_DigestInit_ex(s_->ctx, EVP_sha256(), nullptr) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

Status hash_file_prefix(const std::string& path, uint64_t limit, Sha256& hash,
                        const std::function<void(uint64_t)>& progress, std::stop_token stop) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot open '{}': {}", path, std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<uint8_t> buf(4u << 20);
  uint64_t done = 0;
  while (done < limit) {
    if (stop.stop_requested()) {
      ::close(fd);
      return make_error(ErrorCode::kCancelled, "hashing '{}' was cancelled", path);
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - done));
    const ssize_t n = ::read(fd, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "reading '{}' failed at byte {}: {}", path, done, std::strerror(e));
    }
    if (n == 0) break;
    hash.update({buf.data(), static_cast<size_t>(n)});
    done += static_cast<uint64_t>(n);
    if (progress) progress(done);
  }
  ::close(fd);
  if (limit != std::numeric_limits<uint64_t>::max() && done != limit)
    return make_error(ErrorCode::kIo, "'{}' has {} bytes, fewer than the {} to hash", path, done, limit);
  return {};
}

Result<std::string> sha256_file(const std::string& path, uint64_t limit, const std::function<void(uint64_t)>& progress,
                                std::stop_token stop) {
  Sha256 h;
  CODEY_TRY(hash_file_prefix(path, limit, h, progress, stop));
  return h.hex_digest();
}

}  // namespace codey
