// Downloading one file of a pull (see download.cc).
#pragma once

#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "codey/store.h"
#include "store/hub.h"

namespace codey::store {

struct DownloadSpec {
  const Hub* hub = nullptr;        // turns error statuses into messages
  std::string repo, file;          // for messages: hf.co/REPO/FILE
  std::string label;               // "hf.co/OWNER/REPO/FILE"
  std::string url;
  std::vector<std::string> headers;  // the token, never logged
  std::string dest;                // the final path; bytes go to dest + ".partial" first
  uint64_t size = 0;               // from the listing
  std::string sha256;              // from the listing ("" = unknown: size checked only)
};

struct DownloadHooks {
  std::function<void(uint64_t done, uint64_t total)> progress;
  std::function<void(std::string_view)> status;
};

// Thread-safe; see download.cc for the protocol.
Status download_file(const DownloadSpec& spec, const PullOptions& po, const DownloadHooks& hooks,
                     std::stop_token stop);

}  // namespace codey::store
