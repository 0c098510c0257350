// Jinja's static scope analysis (see scopes.h). Jinja compiles every scope
// (template root, loop body, macro, with, ...) to Python locals. A name a
// scope assigns gets a local whose initial value depends on its first use in
// that scope, in source order:
//   - read first, or assigned in only some branches of an {% if %}: the
//     outer value (codey's scope chain gives the same);
//   - assigned first, unconditionally, and no enclosing scope knows the
//     name: *undefined* until assigned - even if the context has a value.
// Only the last case differs from a plain scope chain, so only those names
// are recorded; the interpreter binds them to Undefined on scope entry.
#include "chat/scopes.h"

#include <map>
#include <set>

namespace codey::jinja {
namespace {

enum class Init { kParam, kResolve, kAlias, kUndefined };

struct Symbols {
  const Symbols* parent = nullptr;
  std::map<std::string, Init> refs;
  std::set<std::string> stores;

  bool find_ref(const std::string& name) const {
    return refs.count(name) != 0 || (parent && parent->find_ref(name));
  }
  void load(const std::string& name) {
    if (!find_ref(name)) refs[name] = Init::kResolve;
  }
  void store(const std::string& name) {
    stores.insert(name);
    if (refs.count(name)) return;
    refs[name] = (parent && parent->find_ref(name)) ? Init::kAlias : Init::kUndefined;
  }
  void param(const std::string& name) {
    stores.insert(name);
    refs[name] = Init::kParam;
  }
  // After an {% if %}: names assigned in only some branches read the outer
  // value when the branch that assigns them did not run.
  void branch_update(const std::vector<Symbols>& branches) {
    std::map<std::string, size_t> counts;
    for (const auto& b : branches)
      for (const auto& t : b.stores)
        if (!stores.count(t)) ++counts[t];
    for (const auto& b : branches) {
      for (const auto& [k, v] : b.refs) refs[k] = v;
      stores.insert(b.stores.begin(), b.stores.end());
    }
    for (const auto& [name, n] : counts) {
      if (n == branches.size()) continue;
      refs[name] = (parent && parent->find_ref(name)) ? Init::kAlias : Init::kResolve;
    }
  }
  std::vector<std::string> undefined_names() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : refs)
      if (v == Init::kUndefined) out.push_back(k);
    return out;
  }
};

void visit_body(Symbols& sym, Body& body);

void visit_expr(Symbols& sym, const Expr* e) {
  if (!e) return;
  if (e->kind == ExprKind::kName) sym.load(e->name);
  for (const auto& i : e->items) visit_expr(sym, i.get());
  for (const auto& a : e->call.args) visit_expr(sym, a.get());
  for (const auto& [k, v] : e->call.kwargs) visit_expr(sym, v.get());
  visit_expr(sym, e->call.star_args.get());
  visit_expr(sym, e->call.star_kwargs.get());
}

void store_target(Symbols& sym, const Target& t) {
  switch (t.kind) {
    case Target::Kind::kName: sym.store(t.name); return;
    case Target::Kind::kTuple:
      for (const auto& i : t.items) store_target(sym, i);
      return;
    case Target::Kind::kNamespaceAttr: sym.load(t.name); return;
  }
}

void param_target(Symbols& sym, const Target& t) {
  if (t.kind == Target::Kind::kName) sym.param(t.name);
  for (const auto& i : t.items) param_target(sym, i);
}

// A nested scope: analyzed against its parent, results stored on the Stmt.
Symbols inner(const Symbols& parent) {
  Symbols s;
  s.parent = &parent;
  return s;
}

void visit_macro_like(Symbols& sym, Stmt& s) {
  Symbols m = inner(sym);
  for (const auto& p : s.params) m.param(p);
  if (s.uses_caller) m.param("caller");
  if (s.catch_varargs) m.param("varargs");
  if (s.catch_kwargs) m.param("kwargs");
  for (const auto& d : s.defaults) visit_expr(m, d.get());
  visit_body(m, s.body);
  s.undefined_locals = m.undefined_names();
}

void visit_stmt(Symbols& sym, Stmt& s) {
  switch (s.kind) {
    case StmtKind::kOutput:
    case StmtKind::kBreak:
    case StmtKind::kContinue: return;
    case StmtKind::kPrint: visit_expr(sym, s.expr.get()); return;
    case StmtKind::kIf: {
      // Jinja's shape: If(test, body, elif_=[If...], else_), each branch
      // analyzed on a copy, then merged.
      visit_expr(sym, s.branches[0].first.get());
      auto branch = [&](auto&& fill) {
        Symbols copy = sym;
        fill(copy);
        return copy;
      };
      Symbols body = branch([&](Symbols& c) { visit_body(c, s.branches[0].second); });
      Symbols elifs = branch([&](Symbols& c) {
        for (size_t i = 1; i < s.branches.size(); ++i) {
          visit_expr(c, s.branches[i].first.get());
          Symbols b = c;
          visit_body(b, s.branches[i].second);
          Symbols e1 = c, e2 = c;
          c.branch_update({b, e1, e2});
        }
      });
      Symbols els = branch([&](Symbols& c) { visit_body(c, s.else_body); });
      sym.branch_update({body, elifs, els});
      return;
    }
    case StmtKind::kFor: {
      visit_expr(sym, s.expr.get());
      Symbols loop = inner(sym);
      param_target(loop, s.target);
      visit_body(loop, s.body);
      s.undefined_locals = loop.undefined_names();
      Symbols els = inner(sym);
      visit_body(els, s.else_body);
      s.else_undefined_locals = els.undefined_names();
      // The loop filter (`for x in y if cond`) runs in a copy of the loop
      // scope; its reads need no locals of their own.
      return;
    }
    case StmtKind::kSet:
      visit_expr(sym, s.expr.get());
      store_target(sym, s.target);
      return;
    case StmtKind::kSetBlock: {
      store_target(sym, s.target);
      Symbols block = inner(sym);
      visit_body(block, s.body);
      s.undefined_locals = block.undefined_names();
      return;
    }
    case StmtKind::kMacro:
      sym.store(s.name);
      visit_macro_like(sym, s);
      return;
    case StmtKind::kCallBlock:
      visit_expr(sym, s.expr.get());
      visit_macro_like(sym, s);
      return;
    case StmtKind::kFilterBlock: {
      visit_expr(sym, s.expr.get());
      Symbols block = inner(sym);
      visit_body(block, s.body);
      s.undefined_locals = block.undefined_names();
      return;
    }
    case StmtKind::kWith: {
      for (const auto& v : s.values) visit_expr(sym, v.get());
      Symbols w = inner(sym);
      for (const auto& t : s.targets) param_target(w, t);
      visit_body(w, s.body);
      s.undefined_locals = w.undefined_names();
      return;
    }
    case StmtKind::kScope: {
      Symbols w = inner(sym);
      visit_body(w, s.body);
      s.undefined_locals = w.undefined_names();
      return;
    }
  }
}

void visit_body(Symbols& sym, Body& body) {
  for (auto& s : body) visit_stmt(sym, *s);
}

}  // namespace

std::vector<std::string> analyze_scopes(Body& body) {
  Symbols root;
  visit_body(root, body);
  return root.undefined_names();
}

}  // namespace codey::jinja
