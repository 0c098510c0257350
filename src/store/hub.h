// The Hugging Face Hub's public HTTP API as codey uses it: the file listing of
// a repo and the URL a file downloads from, with errors that say what to do.
#pragma once

#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "codey/net.h"
#include "codey/store.h"

namespace codey::store {

struct HubFile {
  std::string path;    // in the repo
  uint64_t size = 0;   // bytes (lfs.size for LFS files)
  std::string sha256;  // lfs.oid: the sha256 of the content ("" for files not in LFS)
};

class Hub {
 public:
  explicit Hub(const StoreOptions& o) : endpoint_(o.hf_endpoint), token_(o.hf_token) {}

  // GET {endpoint}/api/models/{repo}/tree/main?recursive=true, every page
  // (the Link header's rel="next").
  Result<std::vector<HubFile>> list(std::string_view repo, std::stop_token stop) const;
  // {endpoint}/{repo}/resolve/main/{path}: redirects to the file's CDN.
  std::string file_url(std::string_view repo, std::string_view path) const;
  // "Authorization: Bearer ..." when a token is set (curl never forwards it
  // to the host a redirect points at).
  std::vector<std::string> headers() const;
  // An HTTP status as an error that says what to do (401 / 403 / 404 with the
  // Hub's X-Error-Code, 429, 5xx). `file` is "" for the repo itself.
  Error status_error(const HttpResult& r, std::string_view repo, std::string_view file) const;
  // Statuses worth another try (429, 5xx).
  static bool retryable(int status) { return status == 429 || status == 408 || (status >= 500 && status <= 599); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::string token_;
};

// Percent-encodes each segment of a path, keeping the '/' between them.
std::string url_encode_path(std::string_view path);

}  // namespace codey::store
