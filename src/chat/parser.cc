// Jinja parser (see parser.h): recursive descent with Jinja's precedence:
// ternary < or < and < not < comparisons < + - < ~ < * / // % < ** < unary
// < postfix (. [] ()) and filters/tests.
#include "chat/parser.h"

#include <initializer_list>

#include <fmt/core.h>

#include "chat/filters.h"

namespace codey::jinja {
namespace {

constexpr int kMaxNesting = 200;  // expression/statement depth (stack safety)

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kName: return t.value;
    case TokenType::kOperator: return t.value;
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kData: return "template data / text";
    case TokenType::kBlockBegin: return "begin of statement block";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kVariableBegin: return "begin of print statement";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kEof: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse_template() {
    Body body = subparse({});
    return body;
  }

 private:
  // ---- token stream

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  Token next() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(std::string_view n) const { return cur().type == TokenType::kName && cur().value == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(std::string message, int line = -1) const {
    JinjaError e("TemplateSyntaxError", std::move(message));
    e.line = line < 0 ? cur().line : line;
    throw e;
  }

  void fail_expected(std::string_view what) const {
    if (cur().type == TokenType::kEof) fail(fmt::format("unexpected end of template, expected '{}'.", what));
    fail(fmt::format("expected token '{}', got '{}'", what, describe(cur())));
  }

  Token expect_type(TokenType type, std::string_view what) {
    if (cur().type != type) fail_expected(what);
    return next();
  }
  void expect_op(std::string_view op) {
    if (!is_op(op)) fail_expected(op);
    next();
  }
  std::string expect_name() { return expect_type(TokenType::kName, "name").value; }
  void expect_block_end() { expect_type(TokenType::kBlockEnd, "end of statement block"); }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nesting too deep");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements

  // Parses until a block tag whose name is in `end_names`; leaves the stream
  // on that name.
  Body subparse(std::initializer_list<std::string_view> end_names) {
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kData: {
          auto s = std::make_unique<Stmt>();
          s->kind = StmtKind::kOutput;
          s->line = t.line;
          s->text = t.value;
          body.push_back(std::move(s));
          next();
          break;
        }
        case TokenType::kVariableBegin: {
          int line = t.line;
          next();
          auto s = std::make_unique<Stmt>();
          s->kind = StmtKind::kPrint;
          s->line = line;
          s->expr = parse_tuple(false, true, {}, false);
          expect_type(TokenType::kVariableEnd, "end of print statement");
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          next();
          if (cur().type == TokenType::kName) {
            for (std::string_view n : end_names)
              if (cur().value == n) return body;
          }
          StmtPtr s = parse_statement();
          expect_block_end();
          if (s) body.push_back(std::move(s));
          break;
        }
        case TokenType::kEof: {
          if (end_names.size() == 0) return body;
          std::string names;
          size_t i = 0;
          for (std::string_view n : end_names) {
            if (i) names += " or ";
            names += fmt::format("'{}'", n);
            ++i;
          }
          std::string innermost = block_stack_.empty() ? "" : block_stack_.back();
          fail(fmt::format("Unexpected end of template. Jinja was looking for the following tags: {}. The "
                           "innermost block that needs to be closed is '{}'.",
                           names, innermost));
        }
        default: fail(fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  // After the tag's own tokens: "%}", body, and the end tag's name consumed
  // when drop_needle.
  Body parse_statements(std::initializer_list<std::string_view> end_names, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    Body body = subparse(end_names);
    if (drop_needle) next();
    return body;
  }

  StmtPtr parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    if (t.type != TokenType::kName) fail("tag name expected");
    const std::string tag = t.value;
    if (tag == "if") return with_block("if", [&] { return parse_if(); });
    if (tag == "for") return with_block("for", [&] { return parse_for(); });
    if (tag == "set") return with_block("set", [&] { return parse_set(); });
    if (tag == "macro") return with_block("macro", [&] { return parse_macro(); });
    if (tag == "call") return with_block("call", [&] { return parse_call_block(); });
    if (tag == "filter") return with_block("filter", [&] { return parse_filter_block(); });
    if (tag == "with") return with_block("with", [&] { return parse_with(); });
    if (tag == "block") return with_block("block", [&] { return parse_block(); });
    if (tag == "generation") return with_block("generation", [&] { return parse_generation(); });
    if (tag == "print") return parse_print();
    if (tag == "break" || tag == "continue") {
      int line = t.line;
      next();
      if (loop_depth_ == 0) fail(fmt::format("'{}' outside loop", tag), line);
      auto s = std::make_unique<Stmt>();
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      s->line = line;
      return s;
    }
    if (tag == "extends" || tag == "include" || tag == "import" || tag == "from" || tag == "autoescape") {
      JinjaError e("TemplateSyntaxError",
                   fmt::format("codey's Jinja does not support '{}' (chat templates are single files)", tag),
                   ErrorCode::kUnsupported);
      e.line = t.line;
      throw e;
    }
    if (!block_stack_.empty()) {
      fail(fmt::format("Encountered unknown tag '{}'. Jinja was looking for the following tags: '{}'. The "
                       "innermost block that needs to be closed is '{}'.",
                       tag, end_tag_for(block_stack_.back()), block_stack_.back()));
    }
    fail(fmt::format("Encountered unknown tag '{}'.", tag));
  }

  static std::string end_tag_for(const std::string& block) {
    if (block == "if") return "endif";
    return "end" + block;
  }

  template <class F>
  StmtPtr with_block(const char* name, F&& f) {
    block_stack_.push_back(name);
    StmtPtr s = f();
    block_stack_.pop_back();
    return s;
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->line = next().line;
    ++soft_depth_;
    ExprPtr cond = parse_tuple(false, false, {}, false);
    Body body = parse_statements({"elif", "else", "endif"}, false);
    s->branches.emplace_back(std::move(cond), std::move(body));
    while (true) {
      std::string tag = next().value;
      if (tag == "elif") {
        ExprPtr c = parse_tuple(false, false, {}, false);
        Body b = parse_statements({"elif", "else", "endif"}, false);
        s->branches.emplace_back(std::move(c), std::move(b));
      } else if (tag == "else") {
        s->else_body = parse_statements({"endif"}, true);
        break;
      } else {
        break;
      }
    }
    --soft_depth_;
    return s;
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFor;
    s->line = next().line;
    s->target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) fail_expected("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    s->recursive = skip_name("recursive");
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().value == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_set() {
    auto s = std::make_unique<Stmt>();
    s->line = next().line;
    s->target = parse_assign_target(true, {});
    if (skip_op("=")) {
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    s->kind = StmtKind::kSetBlock;
    if (is_op("|")) s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      std::string name = expect_name();
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else if (!s.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
      s.params.push_back(std::move(name));
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kMacro;
    s->line = next().line;
    s->name = expect_name();
    parse_signature(*s);
    int saved_loop = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved_loop;
    scan_macro_names(*s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kCallBlock;
    s->line = next().line;
    if (is_op("(")) parse_signature(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail("expected call", s->line);
    int saved_loop = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved_loop;
    scan_macro_names(*s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFilterBlock;
    s->line = next().line;
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kWith;
    s->line = next().line;
    while (cur().type != TokenType::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(false, {}));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_block() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kScope;
    s->line = next().line;
    s->name = expect_name();
    skip_name("scoped");
    skip_name("required");
    s->body = parse_statements({"endblock"}, true);
    if (cur().type == TokenType::kName) {
      if (cur().value != s->name) fail(fmt::format("mismatching name for endblock: '{}'", cur().value));
      next();
    }
    return s;
  }

  // Hugging Face's {% generation %} marks assistant text for training masks;
  // for rendering it is a plain scope.
  StmtPtr parse_generation() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kScope;
    s->line = next().line;
    s->body = parse_statements({"endgeneration"}, true);
    return s;
  }

  StmtPtr parse_print() {
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kPrint;
    s->line = next().line;
    std::vector<ExprPtr> items;
    while (cur().type != TokenType::kBlockEnd) {
      if (!items.empty()) expect_op(",");
      items.push_back(parse_expression(true));
    }
    // {% print a, b %} prints each; model it as a concatenation.
    auto concat = make(ExprKind::kConcat, s->line);
    concat->items = std::move(items);
    s->expr = std::move(concat);
    return s;
  }

  // Names read in a macro body decide whether it takes *varargs, **kwargs
  // and a caller (as Jinja does).
  void scan_macro_names(Stmt& s) {
    auto visit_expr = [&](auto&& self, const Expr* e) -> void {
      if (!e) return;
      if (e->kind == ExprKind::kName) {
        if (e->name == "varargs") s.catch_varargs = true;
        if (e->name == "kwargs") s.catch_kwargs = true;
        if (e->name == "caller") s.uses_caller = true;
      }
      for (const auto& i : e->items) self(self, i.get());
      for (const auto& a : e->call.args) self(self, a.get());
      for (const auto& [k, v] : e->call.kwargs) self(self, v.get());
      self(self, e->call.star_args.get());
      self(self, e->call.star_kwargs.get());
    };
    auto visit_body = [&](auto&& self, const Body& body) -> void {
      for (const auto& st : body) {
        // Nested macros have their own varargs/kwargs/caller.
        if (st->kind == StmtKind::kMacro) continue;
        visit_expr(visit_expr, st->expr.get());
        visit_expr(visit_expr, st->cond.get());
        for (const auto& [c, b] : st->branches) {
          visit_expr(visit_expr, c.get());
          self(self, b);
        }
        for (const auto& v : st->values) visit_expr(visit_expr, v.get());
        for (const auto& d : st->defaults) visit_expr(visit_expr, d.get());
        if (st->kind != StmtKind::kCallBlock) self(self, st->body);
        self(self, st->else_body);
      }
    };
    visit_body(visit_body, s.body);
    for (const auto& d : s.defaults) visit_expr(visit_expr, d.get());
  }

  Target parse_assign_target(bool with_namespace, std::initializer_list<std::string_view> extra_end) {
    if (with_namespace && cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
        peek().value == ".") {
      Target t;
      t.kind = Target::Kind::kNamespaceAttr;
      t.name = next().value;
      next();
      t.attr = expect_name();
      return t;
    }
    // parse_tuple(simplified=True): names, possibly parenthesized, comma separated.
    std::vector<Target> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_target_end(extra_end)) break;
      items.push_back(parse_target_primary());
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) fail(fmt::format("Expected an expression, got '{}'", describe(cur())));
      return std::move(items[0]);
    }
    Target t;
    t.kind = Target::Kind::kTuple;
    t.items = std::move(items);
    return t;
  }

  bool is_target_end(std::initializer_list<std::string_view> extra_end) const {
    if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVariableEnd || is_op(")")) return true;
    for (std::string_view n : extra_end)
      if (is_name(n)) return true;
    return false;
  }

  Target parse_target_primary() {
    if (cur().type == TokenType::kName) {
      const std::string& n = cur().value;
      if (n == "true" || n == "false" || n == "True" || n == "False" || n == "none" || n == "None")
        fail(fmt::format("can't assign to 'const'"));
      Target t;
      t.name = next().value;
      return t;
    }
    if (skip_op("(")) {
      Target t = parse_assign_target(false, {});
      expect_op(")");
      return t;
    }
    fail(fmt::format("can't assign to '{}'", describe(cur())));
  }

  // ---- expressions

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    ExprPtr expr1 = parse_or();
    while (is_name("if")) {
      int line = next().line;
      ++soft_depth_;
      ExprPtr cond = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      --soft_depth_;
      auto e = make(ExprKind::kCondExpr, line);
      e->items.push_back(std::move(cond));
      e->items.push_back(std::move(expr1));
      e->items.push_back(std::move(expr3));
      expr1 = std::move(e);
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      int line = next().line;
      auto e = make(ExprKind::kOr, line);
      e->items.push_back(std::move(left));
      e->items.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      int line = next().line;
      auto e = make(ExprKind::kAnd, line);
      e->items.push_back(std::move(left));
      e->items.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      int line = next().line;
      auto e = make(ExprKind::kNot, line);
      e->items.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<CmpOp> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      CmpOp op;
      if (is_op("==")) op = CmpOp::kEq;
      else if (is_op("!=")) op = CmpOp::kNe;
      else if (is_op("<")) op = CmpOp::kLt;
      else if (is_op("<=")) op = CmpOp::kLe;
      else if (is_op(">")) op = CmpOp::kGt;
      else if (is_op(">=")) op = CmpOp::kGe;
      else if (is_name("in")) op = CmpOp::kIn;
      else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        next();
        op = CmpOp::kNotIn;
      } else {
        break;
      }
      next();
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(ExprKind::kCompare, line);
    e->items.push_back(std::move(first));
    for (auto& o : operands) e->items.push_back(std::move(o));
    e->cmp_ops = std::move(ops);
    return e;
  }

  ExprPtr binary(BinOp op, ExprPtr left, ExprPtr right, int line) {
    auto e = make(ExprKind::kBinary, line);
    e->bin_op = op;
    e->items.push_back(std::move(left));
    e->items.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      Token t = next();
      left = binary(t.value == "+" ? BinOp::kAdd : BinOp::kSub, std::move(left), parse_concat(), t.line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::kConcat, line);
    e->items.push_back(std::move(first));
    while (skip_op("~")) e->items.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Token t = next();
      BinOp op = t.value == "*" ? BinOp::kMul : t.value == "/" ? BinOp::kDiv : t.value == "//" ? BinOp::kFloorDiv : BinOp::kMod;
      left = binary(op, std::move(left), parse_pow(), t.line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      int line = next().line;
      left = binary(BinOp::kPow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      Token t = next();
      node = make(t.value == "-" ? ExprKind::kNeg : ExprKind::kPos, t.line);
      node->items.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = cur();
    int line = t.line;
    switch (t.type) {
      case TokenType::kName: {
        const std::string& n = t.value;
        ExprPtr e;
        if (n == "true" || n == "True" || n == "false" || n == "False") {
          e = make(ExprKind::kConst, line);
          e->value = Value::boolean(n == "true" || n == "True");
        } else if (n == "none" || n == "None") {
          e = make(ExprKind::kConst, line);
          e->value = Value::none();
        } else {
          e = make(ExprKind::kName, line);
          e->name = n;
        }
        next();
        return e;
      }
      case TokenType::kString: {
        std::string s = next().value;
        while (cur().type == TokenType::kString) s += next().value;  // adjacent literals join
        auto e = make(ExprKind::kConst, line);
        e->value = Value::string(std::move(s));
        return e;
      }
      case TokenType::kInteger: {
        auto e = make(ExprKind::kConst, line);
        e->value = Value::integer(next().int_value);
        return e;
      }
      case TokenType::kFloat: {
        auto e = make(ExprKind::kConst, line);
        e->value = Value::number(next().float_value);
        return e;
      }
      case TokenType::kOperator:
        if (t.value == "(") {
          next();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.value == "[") return parse_list();
        if (t.value == "{") return parse_dict();
        break;
      default: break;
    }
    if (t.type == TokenType::kEof) fail("unexpected end of template, expected an expression");
    fail(fmt::format("unexpected '{}'", describe(t)));
  }

  ExprPtr parse_list() {
    int line = next().line;
    auto e = make(ExprKind::kList, line);
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    int line = next().line;
    auto e = make(ExprKind::kDict, line);
    while (!is_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  // parse_tuple: an expression, or a tuple when commas follow.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses) {
    int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      if (simplified) items.push_back(parse_primary());
      else items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail(fmt::format("Expected an expression, got '{}'", describe(cur())));
    }
    auto e = make(ExprKind::kTuple, line);
    e->items = std::move(items);
    return e;
  }

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end) const {
    if (cur().type == TokenType::kVariableEnd || cur().type == TokenType::kBlockEnd || is_op(")")) return true;
    for (std::string_view n : extra_end)
      if (is_name(n)) return true;
    return false;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    DepthGuard guard(*this);
    Token t = next();
    if (t.value == ".") {
      Token attr = next();
      if (attr.type == TokenType::kName) {
        auto e = make(ExprKind::kGetAttr, t.line);
        e->items.push_back(std::move(node));
        e->name = attr.value;
        return e;
      }
      if (attr.type == TokenType::kInteger) {
        auto e = make(ExprKind::kGetItem, t.line);
        e->items.push_back(std::move(node));
        auto key = make(ExprKind::kConst, t.line);
        key->value = Value::integer(attr.int_value);
        e->items.push_back(std::move(key));
        return e;
      }
      fail("expected name or number", attr.line);
    }
    // "["
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(ExprKind::kGetItem, t.line);
    e->items.push_back(std::move(node));
    if (args.size() == 1) {
      e->items.push_back(std::move(args[0]));
    } else {
      auto tup = make(ExprKind::kTuple, t.line);
      tup->items = std::move(args);
      e->items.push_back(std::move(tup));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    std::vector<ExprPtr> args;
    if (skip_op(":")) {
      args.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (is_op(":")) args.push_back(nullptr);
    else if (!is_op("]") && !is_op(",")) args.push_back(parse_expression(true));
    else args.push_back(nullptr);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) args.push_back(parse_expression(true));
      else args.push_back(nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto e = make(ExprKind::kSlice, line);
    e->items = std::move(args);
    return e;
  }

  void parse_call_args(CallExprArgs& call) {
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression");
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*")) {
        ensure(!call.star_args && !call.star_kwargs);
        next();
        call.star_args = parse_expression(true);
      } else if (is_op("**")) {
        ensure(!call.star_kwargs);
        next();
        call.star_kwargs = parse_expression(true);
      } else if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
        ensure(!call.star_kwargs);
        std::string key = next().value;
        next();
        call.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!call.star_args && !call.star_kwargs && call.kwargs.empty());
        call.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    DepthGuard guard(*this);
    auto e = make(ExprKind::kCall, cur().line);
    parse_call_args(e->call);
    e->items.push_back(std::move(node));
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  // `node | f(args) | g` (node null: the body of {% filter %} / {% set %}).
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      int line = cur().line;
      auto e = make(ExprKind::kFilter, line);
      e->name = parse_dotted_name();
      e->filter = find_filter(e->name);
      if (!e->filter) unknown_filter_or_test("filter", e->name, line);
      if (is_op("(")) parse_call_args(e->call);
      if (!node) node = make(ExprKind::kBlockValue, line);
      e->items.push_back(std::move(node));
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    int line = next().line;  // "is"
    auto e = make(ExprKind::kTest, line);
    e->negated = skip_name("not");
    e->name = parse_dotted_name();
    e->test = find_test(e->name);
    if (!e->test) unknown_filter_or_test("test", e->name, line);
    const Token& t = cur();
    if (is_op("(")) {
      parse_call_args(e->call);
    } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
                t.type == TokenType::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      ExprPtr arg = parse_primary();
      arg = parse_postfix(std::move(arg));
      e->call.args.push_back(std::move(arg));
    }
    e->items.insert(e->items.begin(), std::move(node));
    return e;
  }

  // Jinja rejects unknown filters/tests when compiling, except inside
  // conditionals (where `x is filter`-style guards may protect them): those
  // fail only if reached.
  void unknown_filter_or_test(const char* kind, const std::string& name, int line) {
    if (soft_depth_ > 0) return;
    JinjaError e("TemplateAssertionError", fmt::format("No {} named '{}'.", kind, name));
    if (std::string_view(kind) == "filter" && is_unsupported_jinja_filter(name)) {
      e.message = fmt::format("No filter named '{}' (a Jinja filter codey does not support).", name);
      e.code = ErrorCode::kUnsupported;
    }
    e.line = line;
    throw e;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  int soft_depth_ = 0;
  std::vector<std::string> block_stack_;
};

}  // namespace

Body parse(std::vector<Token> tokens) { return Parser(std::move(tokens)).parse_template(); }

}  // namespace codey::jinja
