// `codey run --model FILE (--prompt T | --file F) [--chat] [-n N] [--temp ..]
// [--top-p ..] [--seed S] [--ctx N] [--threads N] [--ignore-eos]
// [--draft FILE | --lookup N]`: generates text, streamed to stdout, with
// speculative decoding when asked; load and speed figures go to stderr.
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "cli/command.h"
#include "codey/chat.h"
#include "codey/model.h"
#include "codey/sampling.h"
#include "codey/spec.h"
#include "codey/tokenizer.h"
#include "codey/store.h"

namespace codey::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string file;
  bool chat = false;
  std::string system;
  int n_predict = 256;
  float temp = 0.8f;
  float top_p = 0.95f;
  int top_k = 40;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int64_t seed = -1;
  int64_t ctx = 0;
  int64_t batch = 512;
  int threads = 0;
  std::string kv_type = "f16";
  bool ignore_eos = false;
  std::vector<std::string> stop;
  std::string draft;        // draft model file
  int draft_max = 8;        // tokens drafted per pass by the draft model
  float draft_p_min = 0.75f;
  int lookup = 0;           // n-gram lookup drafts of up to N tokens
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open prompt file {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run(const RunOptions& o) {
  if (o.prompt.empty() == o.file.empty()) return fail("give exactly one of --prompt and --file");
  std::string text = o.prompt;
  if (!o.file.empty()) {
    auto t = read_text(o.file);
    if (!t) return fail(t.error().message);
    text = std::move(*t);
  }
  auto kv_type = type_from_name(o.kv_type);
  if (!kv_type) return fail(fmt::format("--kv-type: unknown type '{}' (f16, q8_0, bf16, f32)", o.kv_type));

  auto path = resolve_model_path(o.model);
  if (!path) return fail(path.error().message);
  const auto t_load = Clock::now();
  auto model = Model::load(*path);
  if (!model) return fail(model.error().message);
  auto tok = Tokenizer::from_gguf((*model)->gguf());
  if (!tok) return fail(fmt::format("{}: {}", o.model, tok.error().message));
  ContextParams cp;
  cp.n_ctx = o.ctx;
  cp.n_batch = o.batch;
  cp.n_threads = o.threads;
  cp.kv_type = *kv_type;
  auto ctx = Context::create(**model, cp);
  if (!ctx) return fail(ctx.error().message);

  // Speculative decoding: a draft model sharing the vocabulary, or lookup.
  if (!o.draft.empty() && o.lookup > 0) return fail("give one of --draft and --lookup, not both");
  if (o.lookup < 0 || o.draft_max < 1) return fail("--lookup and --draft-max must be positive");
  std::unique_ptr<Model> draft_model;
  std::unique_ptr<Drafter> drafter;
  int max_draft = 0;
  if (!o.draft.empty()) {
    auto draft_path = resolve_model_path(o.draft);
    if (!draft_path) return fail(fmt::format("--draft: {}", draft_path.error().message));
    auto dm = Model::load(*draft_path);
    if (!dm) return fail(fmt::format("--draft: {}", dm.error().message));
    auto dtok = Tokenizer::from_gguf((*dm)->gguf());
    if (!dtok) return fail(fmt::format("--draft {}: {}", o.draft, dtok.error().message));
    if (auto st = check_draft_vocabulary(*tok, *dtok); !st)
      return fail(fmt::format("--draft {} cannot draft for {}: they do not share a vocabulary: {}", o.draft, o.model,
                              st.error().message));
    draft_model = std::move(*dm);
    ContextParams dcp = cp;
    dcp.n_ctx = (*ctx)->n_ctx();
    dcp.pool = &(*ctx)->pool();
    DraftModelParams dp;
    dp.p_min = o.draft_p_min;
    dp.target_vocab = (*ctx)->n_vocab();
    auto d = make_model_drafter(*draft_model, dcp, dp);
    if (!d) return fail(fmt::format("--draft {}: {}", o.draft, d.error().message));
    drafter = std::move(*d);
    max_draft = o.draft_max;
  } else if (o.lookup > 0) {
    drafter = make_lookup_drafter(1);
    max_draft = o.lookup;
  }
  const double load_s = seconds_since(t_load);

  // The prompt, through the model's chat template with --chat.
  std::vector<int32_t> prompt;
  if (o.chat) {
    auto src = (*model)->gguf().get_string_or("tokenizer.chat_template", "");
    if (!src) return fail(src.error().message);
    auto tmpl = ChatTemplate::parse_or_default(src->empty() ? std::nullopt : std::optional(*src),
                                               (*model)->hparams().arch);
    if (!tmpl) return fail(tmpl.error().message);
    ChatTemplateInputs in;
    if (!o.system.empty()) in.messages.push_back({{"role", "system"}, {"content", o.system}});
    in.messages.push_back({{"role", "user"}, {"content", text}});
    in.add_generation_prompt = true;
    if (tok->bos() >= 0) in.bos_token = tok->token_text(tok->bos());
    if (tok->eos() >= 0) in.eos_token = tok->token_text(tok->eos());
    auto rendered = tmpl->render(in);
    if (!rendered) return fail(rendered.error().message);
    // Templates that write the BOS text themselves must not get a second one.
    const bool has_bos = !in.bos_token.empty() && rendered->starts_with(in.bos_token);
    prompt = tok->tokenize(*rendered, !has_bos, /*parse_special=*/true);
  } else {
    prompt = tok->tokenize(text, /*add_special=*/true);
  }
  if (prompt.empty()) return fail("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) >= (*ctx)->n_ctx())
    return fail(fmt::format("the prompt has {} tokens, the context only {} (raise --ctx)", prompt.size(),
                            (*ctx)->n_ctx()));

  SamplerParams sp;
  sp.temperature = o.temp;
  sp.top_k = o.top_k;
  sp.top_p = o.top_p;
  sp.min_p = o.min_p;
  sp.repeat_penalty = o.repeat_penalty;
  sp.penalty_last_n = o.repeat_last_n;
  sp.frequency_penalty = o.frequency_penalty;
  sp.presence_penalty = o.presence_penalty;
  sp.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  Sampler sampler(sp, static_cast<int32_t>((*ctx)->n_vocab()));
  StreamDecoder decoder(*tok);
  StopMatcher stops(o.stop);
  SpecGenerator gen(**ctx, sampler, drafter.get(), max_draft);

  // The prompt, and the first token from its last position.
  const auto t_prompt = Clock::now();
  std::vector<int32_t> todo;
  if (o.n_predict > 0) {
    auto first = gen.start(prompt);
    if (!first) return fail(first.error().message);
    todo.push_back(*first);
  }
  const double prompt_s = seconds_since(t_prompt);
  const double ttft_s = prompt_s;

  // Each target pass yields one token, or several when drafts are accepted.
  const auto t_gen = Clock::now();
  int n_gen = 0;
  std::string end_reason = "token limit";
  bool done = o.n_predict <= 0;
  while (!done) {
    for (const int32_t next : todo) {
      ++n_gen;
      if (!o.ignore_eos && tok->is_eog(next)) {
        end_reason = "end of generation token";
        done = true;
        break;
      }
      const std::string shown = stops.push(decoder.push(next));
      std::fwrite(shown.data(), 1, shown.size(), stdout);
      std::fflush(stdout);
      if (stops.stopped()) {
        end_reason = fmt::format("stop string {:?}", stops.matched());
        done = true;
        break;
      }
      if (n_gen == o.n_predict) {
        done = true;
        break;
      }
    }
    if (done) break;
    if ((*ctx)->kv().seq_length(0) >= (*ctx)->n_ctx()) {
      end_reason = fmt::format("context full ({} tokens; raise --ctx)", (*ctx)->n_ctx());
      break;
    }
    auto r = gen.step(o.n_predict - n_gen);
    if (!r) return fail(r.error().message);
    todo.assign(r->begin(), r->end());
  }
  if (!stops.stopped()) {
    const std::string rest = stops.push(decoder.flush()) + stops.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const double gen_s = seconds_since(t_gen);

  auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
  std::fprintf(stderr,
               "\n%s (%s, %s, %d threads, ctx %lld, %s KV)\n"
               "load:        %8.3f s\n"
               "prompt:      %5zu tokens in %8.3f s = %8.2f tok/s\n"
               "generation:  %5d tokens in %8.3f s = %8.2f tok/s\n"
               "first token: %8.3f s after the prompt was submitted\n"
               "stopped by:  %s\n",
               o.model.c_str(), (*model)->describe().c_str(), (*model)->kernel_table().name, (*ctx)->pool().n_threads(),
               static_cast<long long>((*ctx)->n_ctx()), std::string(type_name(*kv_type)).c_str(), load_s,
               prompt.size(), prompt_s, rate(double(prompt.size()), prompt_s), n_gen, gen_s, rate(n_gen, gen_s),
               ttft_s, end_reason.c_str());
  if (drafter) {
    const SpecStats& st = gen.stats();
    std::fprintf(stderr, "speculative: %s, %lld target passes, %lld of %lld drafted tokens accepted (%.1f%%), %.2f tokens per pass\n",
                 drafter->describe().c_str(), static_cast<long long>(st.passes), static_cast<long long>(st.accepted),
                 static_cast<long long>(st.drafted), 100.0 * st.acceptance(), st.tokens_per_pass());
  }
  return 0;
}

CommandRunner setup(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = root.add_subcommand("run", "Generate text from a prompt, streamed to stdout");
  cmd->add_option("--model,-m", o->model, "GGUF model file or reference (hf.co/OWNER/REPO:QUANT, ollama:NAME:TAG)")
      ->required();
  cmd->add_option("--prompt,-p", o->prompt, "Prompt text");
  cmd->add_option("--file,-f", o->file, "Read the prompt from a file");
  cmd->add_flag("--chat", o->chat, "Wrap the prompt in the model's chat template (a user message)");
  cmd->add_option("--system", o->system, "System message (with --chat)");
  cmd->add_option("-n,--n-predict", o->n_predict, "Most tokens to generate (default 256)");
  cmd->add_option("--temp", o->temp, "Temperature; 0 = greedy (default 0.8)");
  cmd->add_option("--top-p", o->top_p, "Top-p (default 0.95; 1 = off)");
  cmd->add_option("--top-k", o->top_k, "Top-k (default 40; 0 = off)");
  cmd->add_option("--min-p", o->min_p, "Min-p (default 0.05; 0 = off)");
  cmd->add_option("--repeat-penalty", o->repeat_penalty, "Repetition penalty (default 1 = off)");
  cmd->add_option("--repeat-last-n", o->repeat_last_n, "Tokens the penalties look back over (default 64)");
  cmd->add_option("--frequency-penalty", o->frequency_penalty, "Frequency penalty (default 0)");
  cmd->add_option("--presence-penalty", o->presence_penalty, "Presence penalty (default 0)");
  cmd->add_option("--seed,-s", o->seed, "Random seed (default: random)");
  cmd->add_option("--ctx,-c", o->ctx, "Context size in tokens (default: training context, at most 4096)");
  cmd->add_option("--batch,-b", o->batch, "Prompt tokens per forward pass (default 512)");
  cmd->add_option("--threads,-t", o->threads, "Threads (default: usable cores)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 (default), q8_0, bf16, f32");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-generation tokens");
  cmd->add_option("--stop", o->stop, "Stop string (repeatable); never printed");
  cmd->add_option("--draft", o->draft,
                  "Speculative decoding with this draft model (a small model sharing the vocabulary, e.g. "
                  "qwen2.5-coder-0.5b for a 7b)");
  cmd->add_option("--draft-max", o->draft_max, "Most tokens the draft model proposes per pass (default 8)");
  cmd->add_option("--draft-p-min", o->draft_p_min,
                  "Stop drafting at a token the draft gives less probability than this (default 0.75)");
  cmd->add_option("--lookup", o->lookup,
                  "Speculative decoding with n-gram lookup in the prompt and the text so far: drafts of up to N tokens");
  return [o] { return run(*o); };
}

CODEY_REGISTER_COMMAND(run, setup);

}  // namespace
}  // namespace codey::cli
