#include "server/browser_policy.h"

#include "server/http_parse.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace codey::server {

namespace {

bool is_ip_literal(std::string_view name) {
  const std::string s(name);
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool valid_port(std::string_view p) {
  return !p.empty() && p.size() <= 5 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view value) {
  // Iterative glob with one backtrack point: linear in practice, never recursive.
  size_t p = 0, v = 0, star = std::string_view::npos, mark = 0;
  auto eq = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = v;
    } else if (p < pattern.size() && eq(pattern[p], value[v])) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<std::string> host_name(std::string_view h) {
  h = trim(h);
  if (h.empty()) return std::nullopt;
  std::string_view name;
  if (h.front() == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = h.substr(1, close - 1);
    const std::string_view rest = h.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1)))) return std::nullopt;
    if (!is_ip_literal(name)) return std::nullopt;
    return to_lower(name);
  }
  const size_t colon = h.rfind(':');
  name = h.substr(0, colon);
  if (colon != std::string_view::npos && !valid_port(h.substr(colon + 1))) return std::nullopt;
  if (name.empty()) return std::nullopt;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return std::nullopt;
  std::string out = to_lower(name);
  if (out.size() > 1 && out.back() == '.') out.pop_back();  // "localhost." is localhost
  return out;
}

bool is_loopback_name(std::string_view name) {
  const std::string n = to_lower(name);
  if (n == "localhost" || n.ends_with(".localhost") || n == "::1") return true;
  unsigned char buf[4];
  return ::inet_pton(AF_INET, n.c_str(), buf) == 1 && buf[0] == 127;
}

bool host_allowed(const BrowserPolicy& p, std::string_view host_header) {
  if (trim(host_header).empty()) return true;  // HTTP/1.0 clients send none
  const auto name = host_name(host_header);
  if (!name) return false;
  // A rebinding page always comes under a DNS name; an address is what the client dialled.
  if (is_ip_literal(*name) || is_loopback_name(*name)) return true;
  if (const auto bound = host_name(p.bound_host); bound && *bound == *name) return true;
  return std::any_of(p.hosts.begin(), p.hosts.end(), [&](const std::string& pat) {
    const auto pn = pat == "*" || pat.find('*') != std::string::npos ? std::optional(to_lower(pat)) : host_name(pat);
    return pn && wildcard_match(*pn, *name);
  });
}

bool origin_allowed(const BrowserPolicy& p, std::string_view origin) {
  origin = trim(origin);
  if (origin.empty()) return true;  // not a browser
  const std::string o = to_lower(origin);
  const size_t sep = o.find("://");
  if (o == "null" || sep == std::string::npos) return false;  // sandboxed frames, data: pages
  const std::string scheme = o.substr(0, sep);
  // Editors' webviews and desktop apps: a web page cannot claim these (Ollama's defaults).
  for (std::string_view s : {"app", "file", "tauri", "vscode-webview", "vscode-file"})
    if (scheme == s) return true;
  if (scheme == "http" || scheme == "https") {
    std::string_view authority = std::string_view(o).substr(sep + 3);
    if (const auto name = host_name(authority); name && is_loopback_name(*name)) return true;
  }
  return std::any_of(p.origins.begin(), p.origins.end(),
                     [&](const std::string& pat) { return wildcard_match(trim(pat), o); });
}

std::vector<std::string> split_origins(std::string_view text) {
  const auto items = split_list(text);
  return {items.begin(), items.end()};
}

std::optional<std::string> content_type_refusal(std::string_view method, std::string_view content_type,
                                                std::string_view origin) {
  if (method != "POST" && method != "PUT" && method != "PATCH") return std::nullopt;
  const std::string media = to_lower(trim(content_type.substr(0, content_type.find(';'))));
  if (media.empty() || media == "application/json" || (media.starts_with("application/") && media.ends_with("+json")))
    return std::nullopt;
  // curl -d sends this by default (the Ollama docs' examples do): fine from
  // a client that is no browser; a page could send it without a preflight.
  if (media == "application/x-www-form-urlencoded" && trim(origin).empty()) return std::nullopt;
  return "Content-Type '" + media + "' is not accepted; send the body as application/json";
}

}  // namespace codey::server
