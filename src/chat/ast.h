// Syntax tree of a parsed Jinja template. Built once by the parser, then
// only read (rendering is const and may run on many threads at once).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.h"

namespace codey::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// A filter or test implementation (builtins.cc). Filters return the new
// value; tests return a bool Value.
using FilterFn = Value (*)(Interpreter& interp, const Value& value, CallArgs& args);
using TestFn = bool (*)(Interpreter& interp, const Value& value, CallArgs& args);

enum class ExprKind {
  kConst,      // value
  kName,       // name
  kList,       // items
  kTuple,      // items
  kDict,       // items: key0, value0, key1, value1, ...
  kGetAttr,    // items[0].name
  kGetItem,    // items[0][items[1]]
  kSlice,      // items[0][items[1]:items[2]:items[3]] (null = omitted)
  kCall,       // items[0](call)
  kFilter,     // items[0] | name(call); items[0] null inside {% filter %}
  kTest,       // items[0] is [not] name(call)
  kNeg,        // -items[0]
  kPos,        // +items[0]
  kNot,        // not items[0]
  kBinary,     // items[0] op items[1]
  kCompare,    // items[0] cmp_ops[0] items[1] cmp_ops[1] items[2] ...
  kAnd,        // items[0] and items[1]
  kOr,         // items[0] or items[1]
  kCondExpr,   // items[1] if items[0] else items[2] (items[2] may be null)
  kConcat,     // items joined with ~
  kBlockValue, // the rendered body inside {% filter %} / {% set x | f %}
};

enum class BinOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct CallExprArgs {
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr star_args;    // *args
  ExprPtr star_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::kConst;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> items;
  BinOp bin_op = BinOp::kAdd;
  std::vector<CmpOp> cmp_ops;
  CallExprArgs call;
  bool negated = false;          // kTest: `is not`
  FilterFn filter = nullptr;     // kFilter, resolved at parse time (null: unknown)
  TestFn test = nullptr;         // kTest
};

// Assignment target: a name, a tuple of targets, or namespace.attr.
struct Target {
  enum class Kind { kName, kTuple, kNamespaceAttr } kind = Kind::kName;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

enum class StmtKind {
  kOutput,       // text
  kPrint,        // {{ expr }}
  kIf,           // branches (cond, body)..., else_body
  kFor,          // for target in expr [if cond] body else else_body
  kSet,          // set target = expr
  kSetBlock,     // set target [| filters (expr)] body endset
  kMacro,        // macro name(params) body
  kCallBlock,    // call(params) expr body
  kFilterBlock,  // filter expr body
  kWith,         // with targets = values body
  kScope,        // a body with its own scope ({% block %}, {% generation %})
  kBreak,
  kContinue,
};

struct Stmt {
  StmtKind kind = StmtKind::kOutput;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  bool recursive = false;
  // macros and call blocks: parameters; defaults align to the last ones
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
  // whether the body reads varargs / kwargs / caller (Jinja decides a
  // macro's signature from that)
  bool catch_varargs = false;
  bool catch_kwargs = false;
  bool uses_caller = false;
  // with: assignments
  std::vector<Target> targets;
  std::vector<ExprPtr> values;
  // Names this statement's scope (loop body, macro, with, ...) starts as
  // undefined, shadowing outer values: Jinja's static scoping (scopes.cc).
  std::vector<std::string> undefined_locals;
  std::vector<std::string> else_undefined_locals;  // for-loop else block
};

}  // namespace codey::jinja
