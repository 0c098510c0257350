// `codey ps [--config F] [--host URL] [--all] [--json]`: what a running
// `codey serve` has loaded (memory, slots, idle time), read from its
// GET /codey/status endpoint (the runtime's status as JSON).
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "codey/runtime.h"

namespace codey::cli {
namespace {

struct PsOptions {
  std::string config;
  std::string host;
  bool json = false;
  bool all = false;
};

std::string fmt_seconds(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h{:02.0f}m", std::floor(s / 3600), std::fmod(s / 60, 60));
}

int run_ps(const PsOptions& o) {
  // Where the server is: --host, else the config's server section.
  std::string url = o.host;
  std::string api_key;
  const std::string path = o.config.empty() ? default_config_path() : o.config;
  auto cfg = load_config(path);
  if (!cfg && !o.config.empty()) return fail(cfg.error().message);  // named explicitly: must be right
  ServerConfig server = cfg ? cfg->server : ServerConfig{};
  if (url.empty()) {
    const std::string h = server.host == "0.0.0.0" ? "127.0.0.1" : server.host;
    url = fmt::format("http://{}:{}", h, server.port);
  }
  if (!url.starts_with("http://") && !url.starts_with("https://")) url = "http://" + url;
  api_key = server.api_key;
  if (api_key.starts_with("env:")) {
    const char* v = std::getenv(api_key.c_str() + 4);
    api_key = v ? v : "";
  }

  httplib::Client client(url);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  auto res = client.Get("/codey/status", headers);
  if (!res)
    return fail(fmt::format("no codey server answering at {} ({}); start one with `codey serve`", url,
                            httplib::to_string(res.error())));
  if (res->status != 200)
    return fail(fmt::format("{} answered GET /codey/status with HTTP {}: {}", url, res->status, res->body));
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("models") || !j["models"].is_array())
    return fail(fmt::format("{} sent a status that is not the runtime's JSON", url));

  if (!o.all) {
    nlohmann::json kept = nlohmann::json::array();
    for (auto& m : j["models"])
      if (m.value("state", "unloaded") != "unloaded") kept.push_back(m);
    j["models"] = kept;
  }
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const auto& mem = j["memory"];
  std::printf("%s: memory used %s, reserved %s of the %s budget\n", url.c_str(),
              format_bytes(mem.value("used", uint64_t(0))).c_str(),
              format_bytes(mem.value("reserved", uint64_t(0))).c_str(),
              format_bytes(mem.value("budget", uint64_t(0))).c_str());
  if (j["models"].empty()) {
    std::printf("no models loaded\n");
    return 0;
  }
  std::vector<std::array<std::string, 8>> rows;
  rows.push_back({"NAME", "STATE", "USED", "RESERVED", "SLOTS", "QUEUED", "CTX", "IDLE / EXPIRES"});
  for (const auto& m : j["models"]) {
    const auto& mm = m["memory"];
    const auto& sl = m["slots"];
    std::string idle = "-";
    if (m.contains("idle_s")) {
      idle = fmt_seconds(m["idle_s"].get<double>());
      if (m.value("pinned", false)) idle += " / pinned";
      else if (m["expires_in_s"].is_number()) idle += " / " + fmt_seconds(m["expires_in_s"].get<double>());
      else idle += " / never";
    } else if (m.value("state", "") == "loading") {
      idle = fmt::format("loading {:.0f}%", 100 * m.value("load_progress", 0.0));
    }
    rows.push_back({m.value("name", "?"), m.value("state", "?"), format_bytes(mm.value("used", uint64_t(0))),
                    format_bytes(mm.value("reserved", uint64_t(0))),
                    fmt::format("{}/{}", sl.value("active", 0), sl.value("total", 0)),
                    fmt::format("{}", sl.value("queued", 0)),
                    fmt::format("{}", m["ctx"].value("n_ctx", int64_t(0))), idle});
  }
  size_t w[8] = {};
  for (const auto& r : rows)
    for (int i = 0; i < 8; ++i) w[i] = std::max(w[i], r[static_cast<size_t>(i)].size());
  for (const auto& r : rows) {
    std::string line;
    for (int i = 0; i < 8; ++i) line += fmt::format("{:<{}}  ", r[static_cast<size_t>(i)], w[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

CommandRunner setup_ps(CLI::App& root) {
  auto o = std::make_shared<PsOptions>();
  auto* cmd = root.add_subcommand("ps", "What a running codey server has loaded: memory, slots, idle time");
  cmd->add_option("-c,--config", o->config, "Config file (its server section says where the server listens)");
  cmd->add_option("--host", o->host, "Server URL (default: from the config, else http://127.0.0.1:11435)");
  cmd->add_flag("--all", o->all, "Also list configured models that are not loaded");
  cmd->add_flag("--json", o->json, "Print the runtime's status as JSON");
  return [o] { return run_ps(*o); };
}

}  // namespace

CODEY_REGISTER_COMMAND(ps, setup_ps);

}  // namespace codey::cli
