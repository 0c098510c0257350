// Browser safety for `codey serve`, like Ollama's OLLAMA_ORIGINS: a web page
// the user visits must not drive the server. Pure functions over the request
// head, used by the gate (server.cc) before a byte of the body is read.
//
// - Host: loopback names, IP literals, the bound address and
//   server.allowed_hosts only; a DNS-rebinding page reaches 127.0.0.1 under
//   its own name, which is refused.
// - Origin: absent (not a browser), loopback origins, editor webviews
//   (vscode-webview://, app://, file://, tauri://...) and
//   server.allowed_origins / CODEY_ORIGINS only; "null" is refused.
// - A browser's POST must say application/json, which a cross-site page
//   cannot send without a CORS preflight; text/plain and form bodies (what a
//   page sends without asking) are refused, except curl's default form type
//   from a client that is no browser (no Origin).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codey::server {

struct BrowserPolicy {
  std::string bound_host;                 // server.host
  std::vector<std::string> hosts;         // server.allowed_hosts ("*" any, "*.example.com")
  std::vector<std::string> origins;       // server.allowed_origins + CODEY_ORIGINS ("*" any, "https://*.x.com")
};

// `pattern` with '*' matching any run of characters, ASCII case-insensitive.
bool wildcard_match(std::string_view pattern, std::string_view value);

// The Host header's name without its port ("[::1]:80" -> "::1"); nullopt
// when it is not a valid host[:port].
std::optional<std::string> host_name(std::string_view host_header);

bool is_loopback_name(std::string_view name);  // localhost, *.localhost, 127.0.0.0/8, ::1
bool host_allowed(const BrowserPolicy& p, std::string_view host_header);
bool origin_allowed(const BrowserPolicy& p, std::string_view origin);

// The origins in CODEY_ORIGINS-style text: comma-separated, blanks trimmed.
std::vector<std::string> split_origins(std::string_view text);

// nullopt when a request with this method, Content-Type and Origin may go
// on; else why it is refused (415).
std::optional<std::string> content_type_refusal(std::string_view method, std::string_view content_type,
                                                std::string_view origin);

}  // namespace codey::server
