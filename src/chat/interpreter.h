// Tree-walking evaluator for parsed Jinja templates: scopes as Jinja has
// them (for/macro/with bodies are scopes, if is not), macros, loops with
// `loop`, and Python operator semantics. One Interpreter per render.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/ast.h"
#include "chat/sandbox.h"
#include "chat/value.h"

namespace codey::jinja {

// Variables of one scope; lookups walk up to the template's root scope.
// Frames are owned by the Interpreter (an arena for the render), so macros
// and loops can point at them without reference cycles. The frames a loop
// iteration or a macro call made are freed when it ends, unless an object
// that outlives it points at one (`pinned`: a macro's closure, a recursive
// loop's scope).
struct Frame;
using FramePtr = Frame*;
struct Frame {
  FramePtr parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;
  bool pinned = false;

  explicit Frame(FramePtr p) : parent(p) {}
  Value* find_local(std::string_view name);
  void set(std::string_view name, Value v);
};

struct RenderOptions {
  // What strftime_now() reads; unset = the current local time.
  std::optional<std::tm> now;
  TemplateLimits limits;
  const std::atomic<bool>* cancel = nullptr;  // set: the render stops (kCancelled)
};

class Interpreter {
 public:
  explicit Interpreter(RenderOptions options)
      : sandbox_(options.limits, options.cancel), options_(std::move(options)) {}
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Renders `body` with `vars` as the template's variables, in the sandbox
  // of options.limits (JinjaError past a limit).
  // `size_hint`: expected output bytes (reserved up front; prompts of
  // megabytes would otherwise be re-copied as the output grows).
  std::string render(const Body& body, const Dict& vars, const std::vector<std::string>& root_undefined,
                     size_t size_hint = 0);

  // For builtins and objects.
  Value call(const Value& callee, CallArgs args);
  Value getattr(const Value& obj, std::string_view name);
  Value getitem(const Value& obj, const Value& key);
  const RenderOptions& options() const { return options_; }
  const Sandbox& sandbox() const { return sandbox_; }
  // namespace() objects may reference themselves; they are emptied when the
  // render ends so no cycle outlives it.
  void track(std::shared_ptr<Namespace> ns) { namespaces_.push_back(std::move(ns)); }
  FramePtr new_frame(FramePtr parent);
  size_t frame_count() const { return frames_.size(); }
  // Frees the frames made since `mark` (frame_count() then), unless one is pinned.
  void release_frames(size_t mark);
  // A scope's frame with its undefined-at-entry locals bound (scopes.h).
  FramePtr enter(FramePtr parent, const std::vector<std::string>& undefined_locals);
  void bind_undefined(const FramePtr& f, const std::vector<std::string>& names);

  // Macro and recursive-loop entry points (used by their objects).
  Value call_macro(const Stmt& macro, const FramePtr& closure, CallArgs args, bool is_caller);
  Value call_loop(const Stmt& loop, const FramePtr& outer, const Value& iterable, int depth);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, const FramePtr& f);
  Flow exec(const Stmt& s, const FramePtr& f);
  void run_loop(const Stmt& s, const FramePtr& outer, const Value& iterable, int depth);
  void assign(const Target& t, Value v, const FramePtr& f);
  std::string capture(const Body& body, const FramePtr& f);
  void emit(std::string_view text);

  Value eval(const Expr& e, const FramePtr& f);
  Value lookup(std::string_view name, const FramePtr& f);
  CallArgs eval_args(const CallExprArgs& call, const FramePtr& f);
  Value eval_call(const Expr& e, const FramePtr& f, const Value* caller = nullptr);
  Value eval_slice(const Value& obj, const Expr& slice, const FramePtr& f);
  bool compare_op(CmpOp op, const Value& a, const Value& b);

  // First member: destroyed last, after every value of the render that is
  // charged to it (frames, namespaces).
  Sandbox sandbox_;
  RenderOptions options_;
  std::vector<std::unique_ptr<Frame>> frames_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::string* out_ = nullptr;
  std::vector<Value> block_values_;  // innermost {% filter %} / {% set | f %} body
  int call_depth_ = 0;
};

// Python operators (also used by filters like sum).
Value binary_op(BinOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace codey::jinja
