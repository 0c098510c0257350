// Jinja evaluator (see interpreter.h): statements, scopes, macros, loops and
// Python operator semantics, matching what Jinja's compiled code does.
#include "chat/interpreter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/core.h>

#include "chat/builtins.h"
#include "chat/filters.h"
#include "chat/py_str.h"
#include "chat/utf8.h"

namespace codey::jinja {
namespace {


class MacroObject final : public Object {
 public:
  MacroObject(const Stmt* stmt, FramePtr closure, bool is_caller)
      : stmt_(stmt), closure_(closure), is_caller_(is_caller) {}
  std::string_view type_name() const override { return "Macro"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs args) const override {
    return interp.call_macro(*stmt_, closure_, std::move(args), is_caller_);
  }
  std::optional<Value> get_attr(std::string_view name) const override {
    if (name == "name") return Value::string(is_caller_ ? "caller" : stmt_->name);
    if (name == "arguments") {
      std::vector<Value> params;
      for (const auto& p : stmt_->params) params.push_back(Value::string(p));
      return Value::list(std::move(params), true);
    }
    if (name == "catch_kwargs") return Value::boolean(stmt_->catch_kwargs);
    if (name == "catch_varargs") return Value::boolean(stmt_->catch_varargs);
    if (name == "caller") return Value::boolean(stmt_->uses_caller);
    return std::nullopt;
  }
  std::string repr() const override {
    return fmt::format("<Macro {}>", repr_string(is_caller_ ? "caller" : stmt_->name));
  }

 private:
  const Stmt* stmt_;
  FramePtr closure_;
  bool is_caller_;
};

// The bytes of a vector of values held outside a Value (a loop's items),
// charged to the render's sandbox while held.
class ChargedItems {
 public:
  explicit ChargedItems(std::vector<Value> items) : items_(std::move(items)), sandbox_(Sandbox::current()) {
    if (sandbox_) {
      bytes_ = items_.capacity() * sizeof(Value);
      sandbox_->add_live(bytes_);
    }
  }
  ~ChargedItems() {
    if (sandbox_) sandbox_->sub_live(bytes_);
  }
  ChargedItems(const ChargedItems&) = delete;
  ChargedItems& operator=(const ChargedItems&) = delete;
  const std::vector<Value>& get() const { return items_; }

 private:
  std::vector<Value> items_;
  Sandbox* sandbox_;
  size_t bytes_ = 0;
};

class LoopContext final : public Object, public std::enable_shared_from_this<LoopContext> {
 public:
  LoopContext(std::vector<Value> items, int depth, const Stmt* stmt, FramePtr outer)
      : held_(std::move(items)), items_(held_.get()), item_depth_(nested_depth(items_)), depth_(depth), stmt_(stmt),
        outer_(outer) {}
  void set_index(size_t i) { index0_ = i; }
  const std::vector<Value>& items() const { return items_; }
  int depth() const override { return item_depth_; }

  std::string_view type_name() const override { return "LoopContext"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, CallArgs args) const override {
    if (!stmt_->recursive)
      raise_type_error("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    ArgBinder b("loop", args, {"iterable"});
    if (!b.has(0)) raise_type_error("loop() missing 1 required positional argument: 'iterable'");
    return interp.call_loop(*stmt_, outer_, b.get(0), depth_ + 1);
  }
  std::optional<Value> get_attr(std::string_view name) const override {
    const auto n = static_cast<int64_t>(items_.size());
    const auto i = static_cast<int64_t>(index0_);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i + 1 == n);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(depth_);
    if (name == "depth0") return Value::integer(depth_ - 1);
    if (name == "previtem") {
      if (i > 0) return items_[index0_ - 1];
      return Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
      if (i + 1 < n) return items_[index0_ + 1];
      return Value::undefined("there is no next item");
    }
    if (name == "cycle") {
      auto self = shared_from_this();
      return Value::object(std::make_shared<NativeFunction>("cycle", [self](Interpreter&, CallArgs& args) {
        if (args.args.empty()) raise_type_error("no items for cycling given");
        return args.args[self->index0_ % args.args.size()];
      }, "method"));
    }
    if (name == "changed") {
      auto self = shared_from_this();
      return Value::object(std::make_shared<NativeFunction>("changed", [self](Interpreter&, CallArgs& args) {
        Value v = Value::list(args.args, true);
        if (!self->last_changed_ || !equals(*self->last_changed_, v)) {
          self->last_changed_ = v;
          return Value::boolean(true);
        }
        return Value::boolean(false);
      }, "method"));
    }
    return std::nullopt;
  }
  std::string repr() const override { return fmt::format("<LoopContext {}/{}>", index0_ + 1, items_.size()); }

 private:
  ChargedItems held_;
  const std::vector<Value>& items_;
  int item_depth_;
  size_t index0_ = 0;
  int depth_;
  const Stmt* stmt_;
  FramePtr outer_;
  mutable std::optional<Value> last_changed_;
};

struct OutputSwap {
  std::string*& slot;
  std::string* saved;
  OutputSwap(std::string*& s, std::string* replacement) : slot(s), saved(s) { slot = replacement; }
  ~OutputSwap() { slot = saved; }
};

// Nested macro calls and recursive loops, at most TemplateLimits::max_depth
// (each level is a dozen C++ frames).
struct DepthCount {
  int& depth;
  DepthCount(int& d, int max) : depth(d) {
    if (++depth > max) {
      --depth;
      raise("RecursionError", "maximum recursion depth exceeded in the template", ErrorCode::kResourceExhausted);
    }
  }
  ~DepthCount() { --depth; }
};

std::string undefined_attr_message(const Value& obj, std::string_view name) {
  return fmt::format("{} has no attribute {}", repr_string(object_type_repr(obj)), repr_string(name));
}

[[noreturn]] void overflow() { raise("OverflowError", "integer result too large for codey's Jinja (64-bit ints)"); }

Value add_numbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    int64_t r;
    if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
    return Value::integer(r);
  }
  return Value::number(a.as_double() + b.as_double());
}

std::string_view seq_name(const Value& v) { return type_name(v); }

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.str();
    if (!s.empty() && static_cast<uint64_t>(n) > (size_t{256} << 20) / s.size())
      raise("MemoryError", "string repetition too large", ErrorCode::kResourceExhausted);
    sandbox_check_string(s.size() * static_cast<size_t>(n));
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out));
  }
  const auto& items = seq.list().items;
  if (!items.empty() && static_cast<uint64_t>(n) > (size_t{16} << 20) / items.size())
    raise("MemoryError", "list repetition too large", ErrorCode::kResourceExhausted);
  sandbox_check_items(items.size() * static_cast<size_t>(n));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.list().is_tuple);
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((b < 0) != (m < 0))) m += b;
  if (m == 0) m = std::copysign(0.0, b);
  return m;
}

double py_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

}  // namespace

// ---- operators

Value binary_op(BinOp op, const Value& a, const Value& b) {
  // str % anything formats even an Undefined (str.__mod__ accepts any object).
  if (op == BinOp::kMod && a.is_string()) return Value::string(printf_format(a.str(), b), a.is_safe());
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  const char* sym = "+";
  switch (op) {
    case BinOp::kAdd: sym = "+"; break;
    case BinOp::kSub: sym = "-"; break;
    case BinOp::kMul: sym = "*"; break;
    case BinOp::kDiv: sym = "/"; break;
    case BinOp::kFloorDiv: sym = "//"; break;
    case BinOp::kMod: sym = "%"; break;
    case BinOp::kPow: sym = "** or pow()"; break;
  }
  auto unsupported = [&]() -> Value {
    raise_type_error(
        fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", sym, type_name(a), type_name(b)));
  };
  const bool nums = a.is_number() && b.is_number();
  const bool ints = a.is_integral() && b.is_integral();
  switch (op) {
    case BinOp::kAdd:
      if (nums) return add_numbers(a, b);
      if (a.is_string()) {
        if (!b.is_string())
          raise_type_error(fmt::format("can only concatenate str (not \"{}\") to str", type_name(b)));
        sandbox_check_string(a.str().size() + b.str().size());
        // markupsafe: Markup + str escapes the str (and str + Markup too).
        if (a.is_safe() && !b.is_safe()) return Value::string(a.str() + html_escape(b.str()), true);
        if (!a.is_safe() && b.is_safe()) return Value::string(html_escape(a.str()) + b.str(), true);
        return Value::string(a.str() + b.str(), a.is_safe());
      }
      if (a.is_list()) {
        if (!b.is_list() || b.list().is_tuple != a.list().is_tuple)
          raise_type_error(fmt::format("can only concatenate {} (not \"{}\") to {}", seq_name(a), type_name(b),
                                       seq_name(a)));
        sandbox_check_items(a.list().items.size() + b.list().items.size());
        std::vector<Value> items = a.list().items;
        items.insert(items.end(), b.list().items.begin(), b.list().items.end());
        return Value::list(std::move(items), a.list().is_tuple);
      }
      return unsupported();
    case BinOp::kSub:
      if (!nums) return unsupported();
      if (ints) {
        int64_t r;
        if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
        return Value::integer(r);
      }
      return Value::number(a.as_double() - b.as_double());
    case BinOp::kMul:
      if (nums) {
        if (ints) {
          int64_t r;
          if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
          return Value::integer(r);
        }
        return Value::number(a.as_double() * b.as_double());
      }
      if ((a.is_string() || a.is_list()) && b.is_integral()) return repeat(a, b.as_int());
      if ((b.is_string() || b.is_list()) && a.is_integral()) return repeat(b, a.as_int());
      if (a.is_string() || a.is_list())
        raise_type_error(fmt::format("can't multiply sequence by non-int of type '{}'", type_name(b)));
      if (b.is_string() || b.is_list())
        raise_type_error(fmt::format("can't multiply sequence by non-int of type '{}'", type_name(a)));
      return unsupported();
    case BinOp::kDiv:
      if (!nums) return unsupported();
      if (b.as_double() == 0) raise("ZeroDivisionError", ints ? "division by zero" : "float division by zero");
      return Value::number(a.as_double() / b.as_double());
    case BinOp::kFloorDiv:
      if (!nums) return unsupported();
      if (ints) {
        if (b.as_int() == 0) raise("ZeroDivisionError", "integer division or modulo by zero");
        int64_t x = a.as_int(), y = b.as_int();
        if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
        int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value::integer(q);
      }
      if (b.as_double() == 0) raise("ZeroDivisionError", "float floor division by zero");
      return Value::number(py_floordiv(a.as_double(), b.as_double()));
    case BinOp::kMod:
      if (!nums) return unsupported();
      if (ints) {
        if (b.as_int() == 0) raise("ZeroDivisionError", "integer modulo by zero");
        int64_t x = a.as_int(), y = b.as_int();
        if (y == -1) return Value::integer(0);
        int64_t r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return Value::integer(r);
      }
      if (b.as_double() == 0) raise("ZeroDivisionError", "float modulo");
      return Value::number(py_fmod(a.as_double(), b.as_double()));
    case BinOp::kPow:
      if (!nums) return unsupported();
      if (ints && b.as_int() >= 0) {
        int64_t base = a.as_int(), e = b.as_int(), r = 1;
        while (e > 0) {
          if (e & 1)
            if (__builtin_mul_overflow(r, base, &r)) overflow();
          e >>= 1;
          if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
        }
        return Value::integer(r);
      }
      if (a.as_double() == 0 && b.as_double() < 0)
        raise("ZeroDivisionError", "0.0 cannot be raised to a negative power");
      if (a.as_double() < 0 && b.as_double() != std::floor(b.as_double()))
        raise("ValueError", "a negative number raised to a fractional power is complex (unsupported)",
              ErrorCode::kUnsupported);
      return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  return unsupported();
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;  // Undefined iterates as empty
    case Value::Kind::kString:
      if (!item.is_string())
        raise_type_error(fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& v : container.list().items)
        if (equals(v, item)) return true;
      return false;
    case Value::Kind::kDict:
      if (item.is_list() && !item.list().is_tuple) raise_type_error("unhashable type: 'list'");
      if (item.is_dict()) raise_type_error("unhashable type: 'dict'");
      return container.dict().find(item) != nullptr;
    default:
      raise_type_error(fmt::format("argument of type '{}' is not iterable", type_name(container)));
  }
}

// ---- frames

Value* Frame::find_local(std::string_view name) {
  for (auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Frame::set(std::string_view name, Value v) {
  if (Value* existing = find_local(name)) {
    *existing = std::move(v);
    return;
  }
  vars.emplace_back(std::string(name), std::move(v));
}

Interpreter::~Interpreter() {
  for (auto& ns : namespaces_) ns->clear();
}

FramePtr Interpreter::new_frame(FramePtr parent) {
  frames_.push_back(std::make_unique<Frame>(parent));
  return frames_.back().get();
}

void Interpreter::release_frames(size_t mark) {
  for (size_t i = mark; i < frames_.size(); ++i)
    if (frames_[i]->pinned) return;  // an object outlives them: keep the lot (their parents too)
  frames_.resize(mark);
}

void Interpreter::bind_undefined(const FramePtr& f, const std::vector<std::string>& names) {
  for (const auto& n : names) f->set(n, Value::undefined(fmt::format("{} is undefined", repr_string(n))));
}

FramePtr Interpreter::enter(FramePtr parent, const std::vector<std::string>& undefined_locals) {
  FramePtr f = new_frame(parent);
  bind_undefined(f, undefined_locals);
  return f;
}

// ---- rendering

std::string Interpreter::render(const Body& body, const Dict& vars, const std::vector<std::string>& root_undefined,
                                size_t size_hint) {
  Sandbox::Scope in_sandbox(&sandbox_);
  FramePtr root = new_frame(nullptr);
  for (const auto& [k, v] : vars.entries()) root->set(to_str(k), v);
  bind_undefined(root, root_undefined);
  std::string out;
  out.reserve(std::min(size_hint, sandbox_.limits().max_string));
  OutputSwap swap(out_, &out);
  exec_body(body, root);
  return out;
}

void Interpreter::emit(std::string_view text) {
  sandbox_.check_string(out_->size() + text.size());
  *out_ += text;
}

std::string Interpreter::capture(const Body& body, const FramePtr& f) {
  std::string buf;
  OutputSwap swap(out_, &buf);
  exec_body(body, f);
  return buf;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const FramePtr& f) {
  for (const auto& s : body) {
    Flow flow = exec(*s, f);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const FramePtr& f) {
  sandbox_.step();
  try {
    switch (s.kind) {
      case StmtKind::kOutput:
        emit(s.text);
        break;
      case StmtKind::kPrint: {
        Value v = eval(*s.expr, f);
        if (v.is_string()) emit(v.str());
        else emit(to_str(v));
        break;
      }
      case StmtKind::kIf:
        for (const auto& [cond, body] : s.branches) {
          if (truthy(eval(*cond, f))) return exec_body(body, f);
        }
        return exec_body(s.else_body, f);
      case StmtKind::kFor:
        run_loop(s, f, eval(*s.expr, f), 1);
        break;
      case StmtKind::kSet:
        assign(s.target, eval(*s.expr, f), f);
        break;
      case StmtKind::kSetBlock: {
        std::string body = capture(s.body, enter(f, s.undefined_locals));
        Value v = Value::string(std::move(body));
        if (s.expr) {
          block_values_.push_back(std::move(v));
          v = eval(*s.expr, f);
          block_values_.pop_back();
        }
        assign(s.target, std::move(v), f);
        break;
      }
      case StmtKind::kMacro:
        f->pinned = true;  // the macro may be called after this scope ends
        f->set(s.name, Value::object(std::make_shared<MacroObject>(&s, f, false)));
        break;
      case StmtKind::kCallBlock: {
        f->pinned = true;
        Value caller = Value::object(std::make_shared<MacroObject>(&s, f, true));
        emit(to_str(eval_call(*s.expr, f, &caller)));
        break;
      }
      case StmtKind::kFilterBlock: {
        std::string body = capture(s.body, enter(f, s.undefined_locals));
        block_values_.push_back(Value::string(std::move(body)));
        Value v = eval(*s.expr, f);
        block_values_.pop_back();
        emit(to_str(v));
        break;
      }
      case StmtKind::kWith: {
        FramePtr inner = enter(f, s.undefined_locals);
        for (size_t i = 0; i < s.targets.size(); ++i) assign(s.targets[i], eval(*s.values[i], f), inner);
        return exec_body(s.body, inner);
      }
      case StmtKind::kScope:
        return exec_body(s.body, enter(f, s.undefined_locals));
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
    }
  } catch (JinjaError& e) {
    if (e.line == 0) e.line = s.line;
    throw;
  }
  return Flow::kNormal;
}

void Interpreter::run_loop(const Stmt& s, const FramePtr& outer, const Value& iterable, int depth) {
  std::vector<Value> items = iterate(iterable);
  if (s.cond) {
    FramePtr test_frame = new_frame(outer);
    std::vector<Value> kept;
    for (auto& item : items) {
      assign(s.target, item, test_frame);
      if (truthy(eval(*s.cond, test_frame))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(s.else_body, enter(outer, s.else_undefined_locals));
    return;
  }
  // Jinja re-enters the loop body's scope on every iteration: a name set in
  // the body reads the outer value again at the start of the next one.
  FramePtr frame = new_frame(outer);
  if (s.recursive) outer->pinned = true;  // loop(...) may be called through a stored `loop`
  auto ctx = std::make_shared<LoopContext>(std::move(items), depth, &s, outer);
  const Value loop_value = Value::object(ctx);
  const std::vector<Value>& all = ctx->items();
  for (size_t i = 0; i < all.size(); ++i) {
    ctx->set_index(i);
    frame->vars.clear();
    bind_undefined(frame, s.undefined_locals);
    frame->set("loop", loop_value);
    assign(s.target, all[i], frame);
    // What an iteration made (scopes, inner loops and their items) goes
    // with it: nested loops must not grow the render's memory.
    const size_t mark = frame_count();
    Flow flow = exec_body(s.body, frame);
    release_frames(mark);
    if (flow == Flow::kBreak) break;
  }
  if (!frame->pinned) frame->vars.clear();  // the loop's items go now, not at the render's end
}

Value Interpreter::call_loop(const Stmt& loop, const FramePtr& outer, const Value& iterable, int depth) {
  DepthCount guard(call_depth_, sandbox_.limits().max_depth);
  std::string buf;
  {
    OutputSwap swap(out_, &buf);
    run_loop(loop, outer, iterable, depth);
  }
  return Value::string(std::move(buf));
}

void Interpreter::assign(const Target& t, Value v, const FramePtr& f) {
  switch (t.kind) {
    case Target::Kind::kName:
      f->set(t.name, std::move(v));
      return;
    case Target::Kind::kTuple: {
      std::vector<Value> parts = iterate(v);
      if (parts.size() < t.items.size())
        raise("ValueError",
              fmt::format("not enough values to unpack (expected {}, got {})", t.items.size(), parts.size()));
      if (parts.size() > t.items.size())
        raise("ValueError", fmt::format("too many values to unpack (expected {})", t.items.size()));
      for (size_t i = 0; i < parts.size(); ++i) assign(t.items[i], std::move(parts[i]), f);
      return;
    }
    case Target::Kind::kNamespaceAttr: {
      Value ns = lookup(t.name, f);
      if (!ns.is_object() || ns.object().type_name() != "Namespace")
        raise("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      static_cast<Namespace&>(ns.object()).set_attr(t.attr, std::move(v));
      return;
    }
  }
}

Value Interpreter::call_macro(const Stmt& m, const FramePtr& closure, CallArgs args, bool is_caller) {
  DepthCount guard(call_depth_, sandbox_.limits().max_depth);
  const std::string name = is_caller ? "caller" : m.name;
  const size_t mark = frame_count();
  FramePtr frame = enter(closure, m.undefined_locals);
  const size_t n = m.params.size();
  const size_t n_pos = args.args.size();
  std::vector<bool> provided(n, false);
  for (size_t i = 0; i < n && i < n_pos; ++i) {
    frame->set(m.params[i], args.args[i]);
    provided[i] = true;
  }
  bool found_caller = false;
  for (size_t i = n_pos; i < n; ++i) {
    for (auto it = args.kwargs.begin(); it != args.kwargs.end(); ++it) {
      if (it->first == m.params[i]) {
        frame->set(m.params[i], std::move(it->second));
        provided[i] = true;
        args.kwargs.erase(it);
        break;
      }
    }
    if (m.params[i] == "caller") found_caller = true;
  }
  if (m.uses_caller && !found_caller) {
    Value caller = Value::undefined("No caller defined");
    for (auto it = args.kwargs.begin(); it != args.kwargs.end(); ++it) {
      if (it->first == "caller") {
        caller = std::move(it->second);
        args.kwargs.erase(it);
        break;
      }
    }
    frame->set("caller", std::move(caller));
  }
  if (m.catch_kwargs) {
    Dict kw;
    for (auto& [k, v] : args.kwargs) kw.set(Value::string(k), std::move(v));
    frame->set("kwargs", Value::dict(std::move(kw)));
  } else if (!args.kwargs.empty()) {
    for (const auto& [k, v] : args.kwargs) {
      if (k == "caller")
        raise_type_error(fmt::format("macro {} was invoked with two values for the special caller argument. This "
                                     "is most likely a bug.",
                                     repr_string(name)));
    }
    raise_type_error(
        fmt::format("macro {} takes no keyword argument {}", repr_string(name), repr_string(args.kwargs[0].first)));
  }
  if (m.catch_varargs) {
    std::vector<Value> extra;
    for (size_t i = n; i < n_pos; ++i) extra.push_back(args.args[i]);
    frame->set("varargs", Value::list(std::move(extra), true));
  } else if (n_pos > n) {
    raise_type_error(fmt::format("macro {} takes not more than {} argument(s)", repr_string(name), n));
  }
  // Defaults belong to the last parameters and may read earlier ones.
  const size_t first_default = n - m.defaults.size();
  for (size_t i = 0; i < n; ++i) {
    if (provided[i]) continue;
    if (i >= first_default) {
      frame->set(m.params[i], eval(*m.defaults[i - first_default], frame));
    } else {
      frame->set(m.params[i], Value::undefined(fmt::format("parameter {} was not provided", repr_string(m.params[i]))));
    }
  }
  Value out = Value::string(capture(m.body, frame));
  release_frames(mark);
  return out;
}

// ---- expressions

Value Interpreter::lookup(std::string_view name, const FramePtr& f) {
  for (Frame* fr = f; fr; fr = fr->parent)
    if (Value* v = fr->find_local(name)) return *v;
  if (auto g = find_global(name)) return *g;
  return Value::undefined(fmt::format("{} is undefined", repr_string(name)));
}

Value Interpreter::call(const Value& callee, CallArgs args) {
  if (callee.is_undefined()) raise_undefined(callee);
  if (callee.is_object() && callee.object().callable()) return callee.object().call(*this, std::move(args));
  raise_type_error(fmt::format("'{}' object is not callable", type_name(callee)));
}

Value Interpreter::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_object()) {
    if (auto v = obj.object().get_attr(name)) return *v;
    return Value::undefined(undefined_attr_message(obj, name));
  }
  switch (method_kind(obj, name)) {
    case MethodKind::kSafe: return bound_method(obj, name);
    case MethodKind::kUnsafe: return unsafe_attribute(obj, name);
    case MethodKind::kNone: break;
  }
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(name)) return *v;
  }
  return Value::undefined(undefined_attr_message(obj, name));
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  switch (obj.kind()) {
    case Value::Kind::kDict:
      if (!(key.is_list() && !key.list().is_tuple) && !key.is_dict()) {
        if (const Value* v = obj.dict().find(key)) return *v;
      }
      break;
    case Value::Kind::kList:
      if (key.is_integral()) {
        const auto& items = obj.list().items;
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
      }
      break;
    case Value::Kind::kString:
      if (key.is_integral()) {
        std::u32string cps = decode_utf8(obj.str());
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(cps.size());
        if (i >= 0 && i < static_cast<int64_t>(cps.size())) {
          std::string one;
          append_utf8(one, cps[static_cast<size_t>(i)]);
          return Value::string(std::move(one), obj.is_safe());
        }
      }
      break;
    default: break;
  }
  // Jinja falls back to attribute lookup for string keys.
  if (key.is_string()) {
    if (obj.is_object()) {
      if (auto v = obj.object().get_attr(key.str())) return *v;
    } else {
      switch (method_kind(obj, key.str())) {
        case MethodKind::kSafe: return bound_method(obj, key.str());
        case MethodKind::kUnsafe: return unsafe_attribute(obj, key.str());
        case MethodKind::kNone: break;
      }
    }
    return Value::undefined(undefined_attr_message(obj, key.str()));
  }
  return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), repr(key)));
}

Value Interpreter::eval_slice(const Value& obj, const Expr& slice, const FramePtr& f) {
  Value parts[3];
  for (int i = 0; i < 3; ++i) parts[i] = slice.items[i] ? eval(*slice.items[i], f) : Value::none();
  // Jinja compiles slices to plain Python subscripts: errors propagate.
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_dict()) raise_type_error("unhashable type: 'slice'");
  if (!obj.is_string() && !obj.is_list())
    raise_type_error(fmt::format("'{}' object is not subscriptable", type_name(obj)));
  for (const Value& p : parts) {
    if (!p.is_none() && !p.is_integral())
      raise_type_error("slice indices must be integers or None or have an __index__ method");
  }
  int64_t step = parts[2].is_none() ? 1 : parts[2].as_int();
  if (step == 0) raise("ValueError", "slice step cannot be zero");
  std::u32string cps;
  int64_t len;
  if (obj.is_string()) {
    cps = decode_utf8(obj.str());
    len = static_cast<int64_t>(cps.size());
  } else {
    len = static_cast<int64_t>(obj.list().items.size());
  }
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t x = v.as_int();
    if (x < 0) {
      x += len;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    return x;
  };
  int64_t start = adjust(parts[0], step < 0 ? len - 1 : 0);
  int64_t stop = adjust(parts[1], step < 0 ? -1 : len);
  std::vector<int64_t> idx;
  if (step > 0)
    for (int64_t i = start; i < stop; i += step) idx.push_back(i);
  else
    for (int64_t i = start; i > stop; i += step) idx.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : idx) append_utf8(out, cps[static_cast<size_t>(i)]);
    return Value::string(std::move(out), obj.is_safe());
  }
  std::vector<Value> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.list().items[static_cast<size_t>(i)]);
  return Value::list(std::move(out), obj.list().is_tuple);
}

CallArgs Interpreter::eval_args(const CallExprArgs& call, const FramePtr& f) {
  CallArgs out;
  out.args.reserve(call.args.size());
  for (const auto& a : call.args) out.args.push_back(eval(*a, f));
  for (const auto& [k, v] : call.kwargs) out.kwargs.emplace_back(k, eval(*v, f));
  if (call.star_args) {
    for (auto& v : iterate(eval(*call.star_args, f))) out.args.push_back(std::move(v));
  }
  if (call.star_kwargs) {
    Value d = eval(*call.star_kwargs, f);
    if (!d.is_dict()) raise_type_error(fmt::format("argument after ** must be a mapping, not {}", type_name(d)));
    for (const auto& [k, v] : d.dict().entries()) {
      if (!k.is_string()) raise_type_error("keywords must be strings");
      out.kwargs.emplace_back(k.str(), v);
    }
  }
  return out;
}

Value Interpreter::eval_call(const Expr& e, const FramePtr& f, const Value* caller) {
  const Expr& callee = *e.items[0];
  if (callee.kind == ExprKind::kGetAttr) {
    Value obj = eval(*callee.items[0], f);
    if (!obj.is_object() && !obj.is_undefined() && method_kind(obj, callee.name) == MethodKind::kSafe) {
      CallArgs args = eval_args(e.call, f);
      if (caller) args.kwargs.emplace_back("caller", *caller);
      return call_method(*this, obj, callee.name, args);
    }
    Value fn = getattr(obj, callee.name);
    CallArgs args = eval_args(e.call, f);
    if (caller) args.kwargs.emplace_back("caller", *caller);
    return call(fn, std::move(args));
  }
  Value fn = eval(callee, f);
  CallArgs args = eval_args(e.call, f);
  if (caller) args.kwargs.emplace_back("caller", *caller);
  return call(fn, std::move(args));
}

bool Interpreter::compare_op(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::kEq: return equals(a, b);
    case CmpOp::kNe: return !equals(a, b);
    case CmpOp::kLt: return compare(a, b, "<") < 0;
    case CmpOp::kLe: return compare(a, b, "<=") <= 0;
    case CmpOp::kGt: return compare(a, b, ">") > 0;
    case CmpOp::kGe: return compare(a, b, ">=") >= 0;
    case CmpOp::kIn: return contains(b, a);
    case CmpOp::kNotIn: return !contains(b, a);
  }
  return false;
}

Value Interpreter::eval(const Expr& e, const FramePtr& f) {
  sandbox_.step();
  switch (e.kind) {
    case ExprKind::kConst: return e.value;
    case ExprKind::kName: return lookup(e.name, f);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& i : e.items) items.push_back(eval(*i, f));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], f);
        if ((k.is_list() && !k.list().is_tuple) || k.is_dict() || k.is_undefined())
          raise_type_error(fmt::format("unhashable type: '{}'", type_name(k)));
        d.set(std::move(k), eval(*e.items[i + 1], f));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetAttr: return getattr(eval(*e.items[0], f), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.items[0], f);
      if (e.items[1]->kind == ExprKind::kSlice) return eval_slice(obj, *e.items[1], f);
      return getitem(obj, eval(*e.items[1], f));
    }
    case ExprKind::kSlice: raise("TemplateSyntaxError", "a slice is only valid inside []");
    case ExprKind::kCall: return eval_call(e, f);
    case ExprKind::kFilter: {
      Value v = eval(*e.items[0], f);
      CallArgs args = eval_args(e.call, f);
      if (!e.filter) raise("TemplateRuntimeError", fmt::format("No filter named {} found.", repr_string(e.name)));
      return e.filter(*this, v, args);
    }
    case ExprKind::kTest: {
      Value v = eval(*e.items[0], f);
      CallArgs args = eval_args(e.call, f);
      if (!e.test) raise("TemplateRuntimeError", fmt::format("No test named {} found.", repr_string(e.name)));
      bool r = e.test(*this, v, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.items[0], f);
      if (v.is_undefined()) raise_undefined(v);
      const bool neg = e.kind == ExprKind::kNeg;
      if (v.is_integral()) {
        if (!neg) return Value::integer(v.as_int());
        if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
        return Value::integer(-v.as_int());
      }
      if (v.is_float()) return Value::number(neg ? -v.as_double() : v.as_double());
      raise_type_error(fmt::format("bad operand type for unary {}: '{}'", neg ? "-" : "+", type_name(v)));
    }
    case ExprKind::kNot: return Value::boolean(!truthy(eval(*e.items[0], f)));
    case ExprKind::kBinary: {
      Value a = eval(*e.items[0], f);
      Value b = eval(*e.items[1], f);
      return binary_op(e.bin_op, a, b);
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.items[0], f);
      for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
        Value right = eval(*e.items[i + 1], f);
        if (!compare_op(e.cmp_ops[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kAnd: {
      Value l = eval(*e.items[0], f);
      if (!truthy(l)) return l;
      return eval(*e.items[1], f);
    }
    case ExprKind::kOr: {
      Value l = eval(*e.items[0], f);
      if (truthy(l)) return l;
      return eval(*e.items[1], f);
    }
    case ExprKind::kCondExpr: {
      if (truthy(eval(*e.items[0], f))) return eval(*e.items[1], f);
      if (e.items[2]) return eval(*e.items[2], f);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was defined.", e.line));
    }
    case ExprKind::kConcat: {
      std::string out;
      for (const auto& i : e.items) {
        Value v = eval(*i, f);
        const std::string part = v.is_string() ? v.str() : to_str(v);
        sandbox_.check_string(out.size() + part.size());
        out += part;
      }
      return Value::string(std::move(out));
    }
    case ExprKind::kBlockValue:
      CODEY_ASSERT(!block_values_.empty());
      return block_values_.back();
  }
  return Value();
}

}  // namespace codey::jinja
