// The Hub client: repo listings (paginated, recursive) and error statuses
// turned into messages that say what to do.
#include "store/hub.h"
#include "store/internal.h"

#include <cctype>

#include <nlohmann/json.hpp>

namespace codey::store {
namespace {

constexpr size_t kMaxListingPage = 32u << 20;
constexpr int kMaxPages = 200;

// The rel="next" URL of a Link header, or "".
std::string next_link(std::string_view link) {
  size_t pos = 0;
  while (pos < link.size()) {
    const auto lt = link.find('<', pos);
    if (lt == std::string_view::npos) break;
    const auto gt = link.find('>', lt);
    if (gt == std::string_view::npos) break;
    const auto end = link.find(',', gt);
    const std::string_view params = link.substr(gt + 1, end == std::string_view::npos ? std::string_view::npos : end - gt - 1);
    if (params.find("rel=\"next\"") != std::string_view::npos || params.find("rel=next") != std::string_view::npos)
      return std::string(link.substr(lt + 1, gt - lt - 1));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return {};
}

}  // namespace

std::string url_encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::vector<std::string> Hub::headers() const {
  if (token_.empty()) return {};
  return {"Authorization: Bearer " + token_};
}

std::string Hub::file_url(std::string_view repo, std::string_view path) const {
  return fmt::format("{}/{}/resolve/main/{}", endpoint_, url_encode_path(repo), url_encode_path(path));
}

Error Hub::status_error(const HttpResult& r, std::string_view repo, std::string_view file) const {
  const int status = r.status();
  const std::string what = file.empty() ? fmt::format("hf.co/{}", repo) : fmt::format("hf.co/{}/{}", repo, file);
  const std::string page = fmt::format("{}/{}", endpoint_, repo);
  const std::string code(r.first_header("x-error-code").value_or(""));
  // The Hub's own words, when short: X-Error-Message, else {"error": "..."}.
  std::string said(r.first_header("x-error-message").value_or(""));
  if (said.empty()) {
    auto j = parse_untrusted_json(r.error_body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) said = j["error"];
  }
  if (said.size() > 200) said = said.substr(0, 200) + "...";
  const std::string hub_said = said.empty() ? "" : fmt::format(" (the Hub: \"{}\")", said);
  const bool token = !token_.empty();
  const bool gated = code == "GatedRepo" || said.find("gated") != std::string::npos;
  if (gated)
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("{} is gated ({}): accept its conditions at {} while logged in, then {}{}", what, status,
                             page, token ? "check that HF_TOKEN belongs to that account" : "set HF_TOKEN to a token of that account",
                             hub_said)};
  if (code == "RepoNotFound" || (status == 404 && file.empty()) || (status == 401 && !token))
    return Error{ErrorCode::kNotFound,
                 fmt::format("no repository hf.co/{} on {} ({}): check the name{}{}", repo, endpoint_, status,
                             token ? "" : "; a private repo needs HF_TOKEN", hub_said)};
  if (code == "EntryNotFound" || status == 404)
    return Error{ErrorCode::kNotFound, fmt::format("{} is not on {} ({}){}", what, endpoint_, status, hub_said)};
  if (code == "RevisionNotFound")
    return Error{ErrorCode::kNotFound, fmt::format("hf.co/{} has no branch main ({}){}", repo, status, hub_said)};
  if (status == 401)
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("the Hub refused HF_TOKEN for {} (401): check that the token is valid and may read it{}",
                             what, hub_said)};
  if (status == 403)
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("access to {} is denied (403): {}{}", what,
                             token ? "HF_TOKEN's account may not read it" : "it needs a login: set HF_TOKEN", hub_said)};
  if (status == 429)
    return Error{ErrorCode::kResourceExhausted,
                 fmt::format("the Hub limits requests from this address (429) for {}: wait a few minutes and try again{}{}",
                             what, token ? "" : ", or set HF_TOKEN (logged-in limits are higher)", hub_said)};
  if (status >= 500)
    return Error{ErrorCode::kIo, fmt::format("the Hub failed to answer for {} ({}): try again later{}", what, status, hub_said)};
  return Error{ErrorCode::kIo, fmt::format("unexpected answer {} from {} for {}{}", status, endpoint_, what, hub_said)};
}

Result<std::vector<HubFile>> Hub::list(std::string_view repo, std::stop_token stop) const {
  std::vector<HubFile> files;
  std::string url = fmt::format("{}/api/models/{}/tree/main?recursive=true", endpoint_, url_encode_path(repo));
  for (int page = 0; !url.empty(); ++page) {
    if (page >= kMaxPages)
      return make_error(ErrorCode::kResourceExhausted, "hf.co/{}: the file listing has more than {} pages", repo, kMaxPages);
    HttpRequest req;
    req.url = url;
    req.headers = headers();
    req.headers.push_back("Accept: application/json");
    auto r = http_get_text(req, kMaxListingPage, stop);
    if (!r) return std::unexpected(std::move(r.error()));
    const HttpResult& res = r->first;
    if (res.status() != 200) return std::unexpected(status_error(res, repo, ""));
    auto j = parse_untrusted_json(r->second);
    if (!j.is_array())
      return make_error(ErrorCode::kCorrupt, "{}: the file listing of hf.co/{} is not a JSON array", url, repo);
    for (const auto& e : j) {
      if (!e.is_object() || json_str(e, "type") != "file") continue;
      HubFile f;
      if (!e.contains("path") || !e["path"].is_string()) continue;
      f.path = e["path"];
      if (!is_safe_repo_path(f.path)) {
        log_warn("hf.co/{}: the listing names a file '{}' that is not a path inside the repo; ignored", repo, f.path);
        continue;
      }
      if (e.contains("size") && e["size"].is_number_unsigned()) f.size = e["size"];
      if (e.contains("lfs") && e["lfs"].is_object()) {
        const auto& lfs = e["lfs"];
        if (lfs.contains("size") && lfs["size"].is_number_unsigned()) f.size = lfs["size"];
        if (lfs.contains("oid") && lfs["oid"].is_string()) {
          std::string oid = lfs["oid"];
          if (oid.starts_with("sha256:")) oid = oid.substr(7);
          if (oid.size() == 64) f.sha256 = lower(oid);
        }
      }
      files.push_back(std::move(f));
    }
    url = next_link(res.headers().find("link").value_or(""));
  }
  return files;
}

}  // namespace codey::store
