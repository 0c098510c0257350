// Internals of the store layer shared by its files: grouping GGUF file names
// into models and choosing among them, codey's store layout and manifest,
// and small filesystem helpers.
#pragma once

#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codey/store.h"

namespace codey::store {

// ----------------------------------------------------------- file groups --

// One model among a repo's (or a folder's) files: one file, or every part of
// a split model ("-00001-of-00003").
struct FileGroup {
  std::vector<std::string> files;  // paths in part order (split sets: the names every part must have)
  std::vector<std::string> missing;  // parts of a split set that are not among the paths
  std::string label;               // quantization from the first part's name ("" if none)
  bool complete() const { return missing.empty(); }
};

// GGUF models among `paths` (repo-relative or absolute): .gguf files that
// are not vision projectors (mmproj) or importance matrices, split parts
// gathered. Sorted by bits per weight, then name.
std::vector<FileGroup> group_gguf_files(const std::vector<std::string>& paths);

// The group a reference picks, or an error that lists what there is:
// `quant` matched case-insensitively against the labels; `file` by path (a
// part of a split model picks the whole model); neither: the default, with
// `why` saying how it was chosen. `where` names the place in messages
// ("hf.co/OWNER/REPO").
struct Choice {
  const FileGroup* group = nullptr;
  std::string why;
};
Result<Choice> choose_group(const std::vector<FileGroup>& groups, const ModelRef& ref, std::string_view where);
// "Q2_K, Q4_K_M, Q8_0" (labels by size), or the file names when none has a label.
std::string describe_groups(const std::vector<FileGroup>& groups);

// --------------------------------------------------------- codey's store --

// <models_dir>/hf.co/OWNER/REPO; an existing folder whose name differs only
// in case is found (Hub names are case-insensitive).
std::string repo_dir(const StoreOptions& o, std::string_view repo);
constexpr std::string_view kManifestName = ".codey-pull.json";
constexpr std::string_view kPartialSuffix = ".partial";
constexpr std::string_view kLockName = ".codey-pull.lock";  // held while the manifest changes

// The manifest of a pulled repo: {"repo", "default", "files": {path: {size, sha256, pulled}}}.
// A missing or unreadable manifest reads as an empty one (rebuilt by the next
// pull); fields are read with the helpers below, which never throw.
nlohmann::json read_manifest(const std::string& dir);
// JSON another program wrote (the Hub's answers, manifests): parsed within
// parse_json's depth and value limits (codey/chat.h), a file read up to
// max_bytes. Null when it is not JSON, too big or too deep: callers check the
// shape they need, so a hostile document is just "not what it should be".
nlohmann::json parse_untrusted_json(std::string_view text);
nlohmann::json read_json_file(const std::string& path, size_t max_bytes = size_t(4) << 20);
// The record of one file ({} when absent or not an object).
nlohmann::json manifest_file(const nlohmann::json& manifest, const std::string& rel);
uint64_t json_u64(const nlohmann::json& j, const char* key);     // 0 when absent or not a number
std::string json_str(const nlohmann::json& j, const char* key);  // "" when absent or not a string
Status write_manifest(const std::string& dir, const nlohmann::json& manifest);

// An exclusive advisory lock on a file (created if absent), released by the
// destructor. Thread- and process-safe (flock on an own descriptor).
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// ------------------------------------------------------------- helpers --

std::string lower(std::string_view s);
// A file path inside a repo: relative, no empty / "." / ".." segments, no
// backslash or control characters (a listing from the network is hostile).
bool is_safe_repo_path(std::string_view path);
bool iequals(std::string_view a, std::string_view b);
// The entries of `dir` that are folders (following symlinks), not hidden;
// never throws (an unreadable folder has none).
std::vector<std::string> subdirs(const std::string& dir);
// Files under `dir` (any depth) whose names end in `suffix`.
std::vector<std::string> files_ending_in(const std::string& dir, std::string_view suffix);
// `dir`/`name`, or the entry of `dir` whose name equals `name` ignoring case.
std::optional<std::string> find_entry_icase(const std::string& dir, std::string_view name);
// GGUF files under `dir` (following symlinks, skipping hidden entries and
// partial downloads), relative to it, at most `max_depth` folders deep.
std::vector<std::string> gguf_files_under(const std::string& dir, int max_depth, std::vector<std::string>* warnings);
std::string now_utc_iso8601();

}  // namespace codey::store
