// Assistant layer (`codey task`, `codey chat`): route a coding task to a
// configured route (a router model whose output is grammar-constrained to one
// valid tool call, or a deterministic keyword fallback), prompt the route's
// model, extract the code, write it safely into a workspace and check it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "codey/base.h"
#include "codey/runtime.h"
#include "codey/tokenizer.h"
#include "codey/tool_calls.h"

namespace codey {

// ---------------------------------------------------------------- grammar --

// A regular language over bytes: an NFA assembled from pieces, walked as a DFA
// whose states are built lazily (subset construction, memoized). Schemas the
// assistant needs (JSON without recursion, tool-call wrappers) are regular, so
// a DFA state is a single int and a token's piece is checked with one table
// lookup per byte. Not thread-safe (the lazy DFA mutates); one per request.
class Grammar {
 public:
  using Node = int32_t;             // NFA state, while building
  static constexpr int32_t kDead = -1;  // DFA: no sentence continues this way

  Grammar();                        // node 0 is the start
  Node start() const { return 0; }
  Node add_node();
  void epsilon(Node from, Node to);
  void range(Node from, Node to, uint8_t lo, uint8_t hi);
  Node literal(Node from, std::string_view bytes);  // returns the end node
  Node one_of(Node from, std::span<const std::string> literals);
  void accept(Node node);           // sentences may end here

  // Matching. DFA states are ints >= 0; kDead is absorbing.
  int32_t dfa_start();
  int32_t step(int32_t state, uint8_t byte);
  int32_t step(int32_t state, std::string_view bytes);
  bool accepting(int32_t state) const { return state >= 0 && dfa_[static_cast<size_t>(state)].accept; }
  bool can_continue(int32_t state);  // some byte leads to a live state
  bool matches(std::string_view text);    // a whole sentence
  bool is_prefix(std::string_view text);  // a prefix of some sentence
  size_t nfa_nodes() const { return nodes_.size(); }
  size_t dfa_states() const { return dfa_.size(); }

 private:
  struct Edge {
    uint8_t lo, hi;
    Node to;
  };
  struct NfaNode {
    std::vector<Node> eps;
    std::vector<Edge> edges;
    bool accept = false;
  };
  struct DfaState {
    std::vector<Node> nodes;  // epsilon-closed, sorted
    std::vector<int32_t> next;  // [256]; -2 = not computed yet
    bool accept = false;
    int8_t live = -1;           // can_continue memo (-1 unknown)
  };
  int32_t intern(std::vector<Node> closure);
  void close(std::vector<Node>& set) const;

  std::vector<NfaNode> nodes_;
  std::vector<DfaState> dfa_;
  std::unordered_map<std::string, int32_t> dfa_index_;  // key: the node set's bytes
};

// Appends the language of JSON texts valid against `schema` (ordered: the
// property order is the output order) after `from`;
// returns the end node. Supported: type (string, integer, number, boolean,
// null, object, array, or a list of them), enum, const, properties with
// required (emitted in the declared order; optional ones may be left out),
// items/minItems/maxItems, minLength/maxLength, anyOf/oneOf; annotations
// (description, title, default, examples, $schema, additionalProperties) are
// ignored. Other keywords are kUnsupported errors naming the keyword. At most
// one space is allowed around ':' and ',' and inside brackets, so a model
// cannot stall on whitespace; strings without maxLength are unbounded.
Result<Grammar::Node> add_json_schema(Grammar& g, Grammar::Node from, const nlohmann::ordered_json& schema);
Result<Grammar> json_schema_grammar(const nlohmann::ordered_json& schema);
// The JSON text of a string (quotes and escapes), as the grammar expects it.
std::string json_quote(std::string_view s);

// The pieces of one vocabulary sorted by bytes, so a grammar prunes whole
// ranges of tokens sharing a dead prefix: built once per model
// (O(n log n), ~0.1 s for 262k tokens), then every constrained step walks only
// the live prefixes. Immutable and thread-safe after build().
class VocabIndex {
 public:
  // Control and user-defined tokens take part with their text (FunctionGemma's
  // <start_function_call>, Qwen's <tool_call>); unused, unknown and empty
  // tokens never; end-of-generation tokens only where the grammar may end.
  static std::shared_ptr<const VocabIndex> build(const Tokenizer& tokenizer);

  int32_t n_tokens() const { return n_tokens_; }
  std::string_view piece(TokenId id) const;
  bool is_eog(TokenId id) const;
  std::span<const TokenId> eog() const { return eog_; }
  // Tokens whose whole piece keeps `state` alive, appended to `out` in
  // ascending byte order of their pieces (EOG tokens not included).
  void allowed(Grammar& g, int32_t state, std::vector<TokenId>& out) const;

 private:
  int32_t n_tokens_ = 0;
  std::string bytes_;                 // all pieces, concatenated
  std::vector<uint32_t> offset_;      // [n_tokens + 1] into bytes_, by token id
  std::vector<TokenId> sorted_;       // candidate tokens, by piece bytes
  std::vector<uint16_t> lcp_;         // [i]: common prefix of sorted_[i-1] and sorted_[i] (capped)
  std::vector<uint8_t> eog_mask_;     // [n_tokens]
  std::vector<TokenId> eog_;
};

// A TokenConstraint that keeps the generated text a prefix of a sentence of
// a grammar, and ends generation when the sentence is complete (an accepting
// state no byte continues, or an end-of-generation token at an accepting
// state). The allowed set is memoized per DFA state. Used on the runtime's
// scheduler thread only; read the results after the request finished.
class GrammarConstraint final : public TokenConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const VocabIndex> vocab, Grammar grammar);
  void apply(std::span<float> logits) override;
  void accept(TokenId token) override;
  bool done() const override { return done_; }

  const std::string& text() const { return text_; }  // bytes accepted so far
  bool complete() const;          // text() is a whole sentence
  bool violated() const { return violated_; }  // a token outside the allowed set was accepted
  int steps() const { return steps_; }
  double mask_seconds() const { return mask_seconds_; }  // time spent in apply()
  size_t dfa_states() const { return grammar_.dfa_states(); }

 private:
  std::shared_ptr<const VocabIndex> vocab_;
  Grammar grammar_;
  int32_t state_;
  std::string text_;
  bool done_ = false, violated_ = false;
  bool eog_allowed_ = true;  // by the last apply()
  int steps_ = 0;
  double mask_seconds_ = 0;
  std::unordered_map<int32_t, std::vector<TokenId>> allowed_memo_;
  std::vector<std::pair<TokenId, float>> keep_;  // scratch: the allowed logits
};

// -------------------------------------------------------------- tool calls --

// The formats, their detection, rendering and parsing are the chat layer's
// (codey/tool_calls.h), shared with `codey serve`; the router uses them so:
//
// The syntax the router's call is written in: the template's own, or JSON
// when the template takes no tools (the routes are then in the prompt).
ToolCallFormat router_call_format(std::string_view chat_template);
// One call, without arguments, to one of `names`: the text render_tool_calls
// writes for it (the space after JSON's ':' and ',' optional).
Grammar tool_choice_grammar(ToolCallFormat f, std::span<const std::string> names);
// The name of the first call in `text` (parse_tool_calls) if it is one of
// `names` (nullopt otherwise).
std::optional<std::string> parse_tool_choice(ToolCallFormat f, std::string_view text,
                                             std::span<const std::string> names);
// OpenAI-style tool schemas, one argument-less function per route.
nlohmann::ordered_json route_tools(std::span<const RouteConfig> routes);

// A model's vocabulary and chat template read from its GGUF file (the router
// needs token pieces before any request is made).
struct ModelText {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const VocabIndex> index;
  std::optional<std::string> chat_template;
  double load_seconds = 0;
};
Result<ModelText> load_model_text(const std::string& gguf_path);

// ---------------------------------------------------------------- routing --

struct RouteDecision {
  std::string route;
  std::string reason;           // the router's call, or what the fallback matched
  bool by_model = false;        // false: the deterministic fallback (or a forced route)
  bool forced = false;          // --route / /route
  std::string router_model;     // by_model: which model
  double seconds = 0;           // routing wall time (model: tokenizer/index, queue, load, prompt, generation)
  double load_seconds = 0;      // part of `seconds` spent loading the router model
  int64_t prompt_tokens = 0, generated_tokens = 0;
  std::string raw;              // by_model: the constrained output
};

// Keyword and feature scoring over the routes' names and descriptions (plus
// built-in vocabularies for the usual route names: coder, algorithm, chat):
// deterministic, instant; ties go to the earlier route. Never fails when
// `routes` is non-empty.
RouteDecision fallback_route(std::string_view task, std::span<const RouteConfig> routes);

// ------------------------------------------------------------- extraction --

struct CodeBlock {
  std::string language;         // the fence's language, or one guessed from the file name
  std::string filename;         // target path (relative), or empty when none was named
  std::string filename_source;  // "fence", "first line", "line before", "task", "answer"
  std::string code;             // without the fence; always ends with a newline
};

// File names a task mentions ("calculator.py", "src/util.c"): tokens with a
// known source extension, in order, without duplicates.
std::vector<std::string> files_named_in(std::string_view text);
// "python" for .py, "c" for .c, "cpp" for .cc/.cpp/.hpp ...; "" if unknown.
std::string language_for_file(std::string_view filename);
// Normalizes fence languages: "py" -> "python", "c++" -> "cpp", "js" -> "javascript".
std::string normalize_language(std::string_view lang);
// Code in a model's answer: fenced blocks (``` or ~~~) with the file name
// from the info string (```python title=calc.py, ```calc.py, ```python:calc.py,
// file=...), from a first-line marker ("# file: calc.py", "// calc.c"), or
// from a file name on the line before the fence; a block without a name gets
// the task's file when exactly one unclaimed task file has the block's
// language. An answer without fences that reads as code is one block.
std::vector<CodeBlock> extract_code(std::string_view answer, std::span<const std::string> task_files = {});
// Whether text without fences is code rather than prose (line-shape heuristic).
bool looks_like_code(std::string_view text);

// -------------------------------------------------------------- workspace --

struct WriteOptions {
  bool force = false;    // overwrite existing files (a backup is kept)
  bool dry_run = false;  // check and report only
  // Asked before overwriting when !force (e.g. an interactive yes); null = no.
  std::function<bool(const std::string& relative_path)> confirm_overwrite;
};

enum class WriteAction { kCreated, kOverwritten, kUnchanged, kRefused, kWouldCreate, kWouldOverwrite };
std::string_view write_action_name(WriteAction a);

struct WriteOutcome {
  std::string path;        // relative to the workspace, normalized
  WriteAction action = WriteAction::kRefused;
  std::string backup;      // relative path of the old contents' copy, when one was made
  std::string message;     // kRefused: why
  uint64_t bytes = 0;
};

// The directory the assistant may write into. Every path is relative to it:
// absolute paths, ".." components and symlinks that lead outside are refused;
// existing files are replaced only with force or a confirmation, and then
// their old contents go to a backup (<name>.bak, <name>.bak.1, ...) first.
// Writes go to a temporary file in the same directory, then rename.
class Workspace {
 public:
  static Result<Workspace> open(const std::string& dir);
  const std::filesystem::path& root() const { return root_; }
  // The absolute path for `relative`, or an error saying which rule it breaks.
  Result<std::filesystem::path> resolve(std::string_view relative) const;
  // A path the rules refuse, or an existing file that may not be replaced,
  // is a kRefused outcome with the reason; errors are the OS failing (kIo).
  Result<WriteOutcome> write(std::string_view relative, std::string_view content, const WriteOptions& options) const;
  // Current contents of a workspace file, if it exists and is small enough.
  std::optional<std::string> read(std::string_view relative, size_t max_bytes = 64 << 10) const;

 private:
  explicit Workspace(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;  // canonical
};

// ------------------------------------------------------------------ check --

enum class CheckStatus { kPassed, kFailed, kNoChecker };
std::string_view check_status_name(CheckStatus s);

struct CheckOutcome {
  std::string file;      // as shown to the user
  std::string checker;   // the command, e.g. "python3 -m py_compile"; empty with kNoChecker
  CheckStatus status = CheckStatus::kNoChecker;
  std::string output;    // diagnostics (kFailed), or why there is no checker
};

// Checks code for `filename` by its extension with a checker found on PATH:
// python3 -m py_compile (.py), cc -fsyntax-only (.c/.h), c++ -fsyntax-only
// (.cc/.cpp/.cxx/.hpp/.hh), node --check (.js/.mjs/.cjs), bash -n (.sh), and a
// built-in JSON parse (.json). The code is checked as a copy in a temporary
// directory (nothing is written to the workspace; `include_dirs` are searched
// for C/C++ headers). Diagnostics name `filename`, not the temporary copy.
CheckOutcome check_code(std::string_view filename, std::string_view code,
                        std::span<const std::filesystem::path> include_dirs = {});
// The absolute path of `program` on PATH, or empty.
std::string find_program(std::string_view program);

// ------------------------------------------------------------- the pipeline --

// How `codey task` / `codey chat` find their models and routes.
struct AssistantSetup {
  std::string config_path;   // codey.yaml; empty: ./codey.yaml if it exists
  std::string model_file;    // --model: this GGUF serves every route
  std::string router_file;   // --router: this GGUF routes
  // Speculative decoding for the --model file: a draft model file sharing
  // its vocabulary (--draft), or n-gram lookup drafts of up to N tokens.
  std::string draft_file;
  int lookup = 0;
};
// The runtime configuration: the file's, plus quick-mode models; routes
// default to coder / algorithm / chat on the first model when none are
// configured. Errors say what to pass.
Result<RuntimeConfig> assistant_config(const AssistantSetup& setup);
// Built-in routes (coder, algorithm, chat) served by `model`.
std::vector<RouteConfig> default_routes(const std::string& model);
// The system prompt a route uses: its configured one, else a short built-in
// one by the route's name (coder, algorithm, chat) or description.
std::string route_system_prompt(const RouteConfig& route);

// One generation's live figures, for the progress line.
struct GenerationProgress {
  std::string model;
  std::string phase;       // "queued", "loading", "prompt", "generating"
  double load_progress = 0;
  int64_t prompt_tokens = 0;
  int64_t tokens = 0;      // generated so far
  double tokens_per_s = 0; // generation rate so far
  double elapsed_s = 0;    // since the request was submitted
};

struct TaskOptions {
  std::string route;          // forced route; empty: route the task
  std::string model;          // a configured model serving the route instead of its own
  bool force = false;
  bool dry_run = false;
  int max_repairs = 2;
  std::function<bool(const std::string&)> confirm_overwrite;
  std::stop_token cancel;     // stops the current generation; the task ends kCancelled
};

// What the front end shows while a task runs. All optional; called on the
// caller's thread.
struct TaskEvents {
  std::function<void(const RouteDecision&)> on_route;
  std::function<void(int attempt, const std::string& model)> on_generation_start;  // attempt 0 = first answer
  std::function<void(std::string_view text)> on_text;  // streamed answer text
  std::function<void(const GenerationProgress&)> on_progress;
  std::function<void(int attempt, const Timings&)> on_generation_end;
  std::function<void(std::string_view line)> on_note;  // status lines ("check failed, repair 1/2")
};

struct TaskResult {
  RouteDecision route;
  std::string model;
  std::string answer;                 // the last answer
  std::vector<CodeBlock> blocks;      // from the last answer
  std::vector<WriteOutcome> writes;
  std::vector<CheckOutcome> checks;   // of the final code
  std::vector<std::string> unwritten; // blocks without a target file (printed, not written)
  int repairs = 0;                    // repair attempts made
  bool cancelled = false;
  double total_s = 0;
  double generation_s = 0;            // sum over attempts, submit to done
  int64_t generated_tokens = 0;
  bool checks_passed() const;         // no check failed
  // What was written, what passed, timings; `with_route`: also the route
  // and model lines (a front end that showed them as they happened omits them).
  std::string summary(bool with_route = true) const;
};

// A task or chat turn on a Runtime. Thread-compatible: one task at a time.
class Assistant {
 public:
  Assistant(Runtime& runtime, std::string workspace_dir);

  Runtime& runtime() { return runtime_; }
  const RuntimeConfig& config() const { return runtime_.config(); }
  const std::vector<RouteConfig>& routes() const { return routes_; }
  const Workspace* workspace() const { return workspace_ ? &*workspace_ : nullptr; }
  // Why the workspace could not be opened (empty when it was).
  const std::string& workspace_error() const { return workspace_error_; }

  // With a router model: its constrained tool call, else the fallback.
  // Router errors (missing file, no memory) fall back too, saying why.
  RouteDecision route(std::string_view task, std::stop_token cancel = {});
  // The model's text of a GGUF model (cached per model).
  Result<std::shared_ptr<const ModelText>> model_text(std::string_view model);

  Result<TaskResult> run_task(std::string_view task, const TaskOptions& options, const TaskEvents& events = {});

  // One streamed generation from `messages`; the events as in run_task.
  struct Answer {
    std::string text;
    Timings timings;
    FinishReason finish = FinishReason::kStop;
    double seconds = 0;
  };
  Result<Answer> generate(const std::string& model, const RouteConfig& route, const nlohmann::ordered_json& messages,
                          std::stop_token cancel, const TaskEvents& events, int attempt);

  // The messages of a task's first request (system + user; the target file's
  // current contents are included so the model edits rather than rewrites).
  nlohmann::ordered_json task_messages(const RouteConfig& route, std::string_view task,
                                       std::span<const std::string> files) const;

 private:
  Runtime& runtime_;
  std::vector<RouteConfig> routes_;
  std::optional<Workspace> workspace_;
  std::string workspace_error_;
  std::unordered_map<std::string, std::shared_ptr<const ModelText>> text_cache_;
};

// The repair request after a failed check: the checker's output and what to send back.
std::string repair_prompt(std::span<const CheckOutcome> failed);

// ------------------------------------------------------------------- chat --

struct ChatCommand {
  enum class Kind { kEmpty, kMessage, kModel, kRoute, kRoutes, kModels, kClear, kWrite, kHelp, kQuit, kUnknown };
  Kind kind = Kind::kEmpty;
  std::string arg;    // /model NAME, /route NAME, /write [FILE], or the message
};
// "/model x", "/route auto", "/clear", "/help", "/quit" (also /exit, /q, /?);
// anything else not starting with '/' is a message ("//" escapes a leading slash).
ChatCommand parse_chat_command(std::string_view line);
std::string chat_help();

// An interactive conversation: history, a route (auto = routed per message),
// an optional model override. Input lines in, text out; the front end owns
// the terminal and Ctrl-C (it passes the stop token of the current turn).
class ChatSession {
 public:
  ChatSession(Assistant& assistant, std::ostream& out);
  // Handles one input line; false when the session should end.
  bool handle(std::string_view line, std::stop_token cancel, const TaskEvents& events = {});
  const nlohmann::ordered_json& history() const { return history_; }
  const std::string& route() const { return route_; }  // "auto" or a route name
  const std::string& model() const { return model_; }  // "" = the route's model
  // Confirmation for /write over an existing file (null: refuse).
  std::function<bool(const std::string&)> confirm_overwrite;

 private:
  void turn(const std::string& message, std::stop_token cancel, const TaskEvents& events);
  Assistant& assistant_;
  std::ostream& out_;
  nlohmann::ordered_json history_ = nlohmann::ordered_json::array();  // user/assistant messages
  std::string route_ = "auto";
  std::string model_;
  std::string last_answer_;
  std::string last_user_;
};

// ------------------------------------------------------------------ terminal --

// A status line pinned to the terminal's last row (a scroll region above it
// holds the streamed text, as apt's progress bar does), so the answer and the
// progress line (model, tokens/s, elapsed) do not overwrite each other. Does
// nothing unless `fd` is a terminal. Restores the terminal on end() and in
// the destructor.
class StatusLine {
 public:
  explicit StatusLine(int fd = 2);
  ~StatusLine();
  bool active() const { return active_; }
  void show(const std::string& text);
  void end();

 private:
  int fd_;
  bool tty_ = false;
  bool active_ = false;
  int rows_ = 0;
};
// "qwen2.5-coder-7b · 42 tok · 11.3 tok/s · 3.7s"
std::string format_progress(const GenerationProgress& p);

// Ctrl-C as "stop this answer": while one exists, SIGINT no longer ends the
// process; it requests stop on the current turn's stop source (a watcher
// thread does, since stop sources are not async-signal-safe) and interrupts a
// blocking read. With `second_exits`, a second Ctrl-C during the same turn
// ends the process as usual. One per process; restores the old handler.
class InterruptHandler {
 public:
  explicit InterruptHandler(bool second_exits = false);
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;
  std::stop_token begin_turn();  // a fresh stop source for one generation
  void end_turn();
  bool interrupted() const;      // during the current or last turn

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class ReadStatus { kLine, kEof, kInterrupted };
// One line from `fd` without buffering ahead (so nothing is lost to a child
// or a later reader); EINTR (Ctrl-C) returns kInterrupted.
ReadStatus read_line(int fd, std::string& line);
// Asks on stderr, reads the answer from stdin: true for y/yes. False when
// stdin is not a terminal (nobody to ask).
bool ask_yes_no(const std::string& question);

}  // namespace codey
