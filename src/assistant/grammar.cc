// Grammar-constrained sampling: a byte NFA walked as a lazily built DFA, JSON
// schemas compiled into it, and the token constraint that masks logits with a
// prefix walk over the vocabulary's sorted pieces.
#include <algorithm>
#include <array>
#include <functional>
#include <cmath>
#include <limits>

#include "codey/assistant.h"

namespace codey {

// ---------------------------------------------------------------- Grammar --

Grammar::Grammar() { nodes_.emplace_back(); }

Grammar::Node Grammar::add_node() {
  CODEY_ASSERT(dfa_.empty());  // the NFA is frozen once matching started
  nodes_.emplace_back();
  return static_cast<Node>(nodes_.size() - 1);
}

void Grammar::epsilon(Node from, Node to) {
  CODEY_ASSERT(dfa_.empty());
  nodes_[static_cast<size_t>(from)].eps.push_back(to);
}

void Grammar::range(Node from, Node to, uint8_t lo, uint8_t hi) {
  CODEY_ASSERT(dfa_.empty() && lo <= hi);
  nodes_[static_cast<size_t>(from)].edges.push_back({lo, hi, to});
}

Grammar::Node Grammar::literal(Node from, std::string_view bytes) {
  Node cur = from;
  for (char c : bytes) {
    const Node n = add_node();
    range(cur, n, static_cast<uint8_t>(c), static_cast<uint8_t>(c));
    cur = n;
  }
  return cur;
}

Grammar::Node Grammar::one_of(Node from, std::span<const std::string> literals) {
  const Node end = add_node();
  for (const auto& l : literals) epsilon(literal(from, l), end);
  return end;
}

void Grammar::accept(Node node) {
  CODEY_ASSERT(dfa_.empty());
  nodes_[static_cast<size_t>(node)].accept = true;
}

void Grammar::close(std::vector<Node>& set) const {
  std::vector<Node> stack(set.begin(), set.end());
  std::vector<uint8_t> seen(nodes_.size(), 0);
  for (Node n : set) seen[static_cast<size_t>(n)] = 1;
  while (!stack.empty()) {
    const Node n = stack.back();
    stack.pop_back();
    for (Node e : nodes_[static_cast<size_t>(n)].eps)
      if (!seen[static_cast<size_t>(e)]) {
        seen[static_cast<size_t>(e)] = 1;
        set.push_back(e);
        stack.push_back(e);
      }
  }
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
}

int32_t Grammar::intern(std::vector<Node> closure) {
  if (closure.empty()) return kDead;
  std::string key(reinterpret_cast<const char*>(closure.data()), closure.size() * sizeof(Node));
  if (auto it = dfa_index_.find(key); it != dfa_index_.end()) return it->second;
  DfaState d;
  d.nodes = std::move(closure);
  d.next.assign(256, -2);
  for (Node n : d.nodes) d.accept = d.accept || nodes_[static_cast<size_t>(n)].accept;
  dfa_.push_back(std::move(d));
  const auto id = static_cast<int32_t>(dfa_.size() - 1);
  dfa_index_.emplace(std::move(key), id);
  return id;
}

int32_t Grammar::dfa_start() {
  if (dfa_.empty()) {
    std::vector<Node> s{0};
    close(s);
    return intern(std::move(s));
  }
  return 0;  // the start set is always interned first
}

int32_t Grammar::step(int32_t state, uint8_t byte) {
  if (state < 0) return kDead;
  int32_t& cached = dfa_[static_cast<size_t>(state)].next[byte];
  if (cached != -2) return cached;
  std::vector<Node> next;
  for (Node n : dfa_[static_cast<size_t>(state)].nodes)
    for (const Edge& e : nodes_[static_cast<size_t>(n)].edges)
      if (byte >= e.lo && byte <= e.hi) next.push_back(e.to);
  close(next);
  const int32_t id = intern(std::move(next));
  dfa_[static_cast<size_t>(state)].next[byte] = id;  // re-index: intern may have grown dfa_
  return id;
}

int32_t Grammar::step(int32_t state, std::string_view bytes) {
  for (char c : bytes) {
    state = step(state, static_cast<uint8_t>(c));
    if (state == kDead) break;
  }
  return state;
}

bool Grammar::can_continue(int32_t state) {
  if (state < 0) return false;
  if (dfa_[static_cast<size_t>(state)].live >= 0) return dfa_[static_cast<size_t>(state)].live != 0;
  bool live = false;
  for (int b = 0; b < 256 && !live; ++b) live = step(state, static_cast<uint8_t>(b)) != kDead;
  dfa_[static_cast<size_t>(state)].live = live ? 1 : 0;
  return live;
}

bool Grammar::matches(std::string_view text) { return accepting(step(dfa_start(), text)); }
bool Grammar::is_prefix(std::string_view text) { return step(dfa_start(), text) != kDead; }

// ------------------------------------------------------------ JSON schema --

std::string json_quote(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

using Node = Grammar::Node;
using json = nlohmann::ordered_json;

constexpr int kMaxDepth = 32;
constexpr int kMaxIntDigits = 18;
constexpr int kMaxFracDigits = 16;
constexpr int64_t kMaxBoundedLength = 4096;  // longer maxLength: unbounded loop (the NFA stays small)

class SchemaCompiler {
 public:
  explicit SchemaCompiler(Grammar& g) : g_(g) {}

  Result<Node> value(Node from, const json& s, int depth) {
    if (depth > kMaxDepth) return make_error(ErrorCode::kUnsupported, "JSON schema nested deeper than {}", kMaxDepth);
    if (s.is_boolean()) {
      if (s.get<bool>()) return make_error(ErrorCode::kUnsupported, "JSON schema 'true' (any value) is not supported");
      return make_error(ErrorCode::kInvalidArgument, "JSON schema 'false' allows no value");
    }
    if (!s.is_object()) return make_error(ErrorCode::kInvalidArgument, "a JSON schema must be an object, got {}", s.dump());
    for (const auto& [k, v] : s.items()) {
      static constexpr std::string_view kKnown[] = {
          "type",  "enum",    "const",       "properties", "required", "items",   "minItems",
          "maxItems", "minLength", "maxLength", "anyOf",  "oneOf",    "description", "title",
          "default", "examples", "$schema",  "$id",        "$comment", "additionalProperties"};
      if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown))
        return make_error(ErrorCode::kUnsupported, "unsupported JSON schema keyword '{}'", k);
    }
    if (s.contains("const")) return g_.literal(from, s["const"].dump());
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty())
        return make_error(ErrorCode::kInvalidArgument, "'enum' must be a non-empty array, got {}", e.dump());
      std::vector<std::string> lits;
      for (const auto& v : e) lits.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
      return g_.one_of(from, lits);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& alts = s[key];
      if (!alts.is_array() || alts.empty())
        return make_error(ErrorCode::kInvalidArgument, "'{}' must be a non-empty array", key);
      const Node end = g_.add_node();
      for (const auto& a : alts) {
        auto e = value(from, a, depth + 1);
        if (!e) return e;
        g_.epsilon(*e, end);
      }
      return end;
    }
    if (!s.contains("type"))
      return make_error(ErrorCode::kUnsupported, "a JSON schema without 'type', 'enum', 'const' or 'anyOf' (any value) is not supported");
    const json& t = s["type"];
    if (t.is_array()) {
      if (t.empty()) return make_error(ErrorCode::kInvalidArgument, "'type' must not be an empty list");
      const Node end = g_.add_node();
      for (const auto& one : t) {
        if (!one.is_string()) return make_error(ErrorCode::kInvalidArgument, "'type' entries must be strings");
        auto e = typed(from, one.get<std::string>(), s, depth);
        if (!e) return e;
        g_.epsilon(*e, end);
      }
      return end;
    }
    if (!t.is_string()) return make_error(ErrorCode::kInvalidArgument, "'type' must be a string or a list, got {}", t.dump());
    return typed(from, t.get<std::string>(), s, depth);
  }

 private:
  // Optional single space: enough for both compact and json.dumps() style.
  Node ws(Node from) {
    const Node n = g_.add_node();
    g_.epsilon(from, n);
    g_.range(from, n, ' ', ' ');
    return n;
  }

  Result<int64_t> bound(const json& s, const char* key, int64_t dflt) {
    if (!s.contains(key)) return dflt;
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return make_error(ErrorCode::kInvalidArgument, "'{}' must be a non-negative integer, got {}", key, v.dump());
    return v.get<int64_t>();
  }

  // One JSON string character (UTF-8 validated, escapes) from `from` to `to`.
  void string_char(Node from, Node to) {
    g_.range(from, to, 0x20, 0x21);
    g_.range(from, to, 0x23, 0x5b);
    g_.range(from, to, 0x5d, 0x7f);
    auto cont = [&](Node a, int n) {  // n continuation bytes from a to `to`
      Node cur = a;
      for (int i = 0; i < n; ++i) {
        const Node nx = i + 1 == n ? to : g_.add_node();
        g_.range(cur, nx, 0x80, 0xbf);
        cur = nx;
      }
    };
    auto lead = [&](uint8_t lo, uint8_t hi, uint8_t c1lo, uint8_t c1hi, int rest) {
      const Node a = g_.add_node();
      g_.range(from, a, lo, hi);
      if (rest == 0) {
        g_.range(a, to, c1lo, c1hi);
        return;
      }
      const Node b = g_.add_node();
      g_.range(a, b, c1lo, c1hi);
      cont(b, rest);
    };
    lead(0xc2, 0xdf, 0x80, 0xbf, 0);
    lead(0xe0, 0xe0, 0xa0, 0xbf, 1);
    lead(0xe1, 0xec, 0x80, 0xbf, 1);
    lead(0xed, 0xed, 0x80, 0x9f, 1);
    lead(0xee, 0xef, 0x80, 0xbf, 1);
    lead(0xf0, 0xf0, 0x90, 0xbf, 2);
    lead(0xf1, 0xf3, 0x80, 0xbf, 2);
    lead(0xf4, 0xf4, 0x80, 0x8f, 2);
    const Node esc = g_.add_node();
    g_.range(from, esc, '\\', '\\');
    for (char c : std::string_view("\"\\/bfnrt")) g_.range(esc, to, static_cast<uint8_t>(c), static_cast<uint8_t>(c));
    Node cur = g_.add_node();
    g_.range(esc, cur, 'u', 'u');
    for (int i = 0; i < 4; ++i) {
      const Node nx = i == 3 ? to : g_.add_node();
      g_.range(cur, nx, '0', '9');
      g_.range(cur, nx, 'a', 'f');
      g_.range(cur, nx, 'A', 'F');
      cur = nx;
    }
  }

  Result<Node> string(Node from, const json& s) {
    auto lo = bound(s, "minLength", 0);
    if (!lo) return std::unexpected(lo.error());
    auto hi = bound(s, "maxLength", -1);
    if (!hi) return std::unexpected(hi.error());
    if (*hi >= 0 && *hi < *lo) return make_error(ErrorCode::kInvalidArgument, "maxLength {} < minLength {}", *hi, *lo);
    const Node open = g_.literal(from, "\"");
    const Node end = g_.add_node();
    Node cur = open;
    const bool bounded = *hi >= 0 && *hi <= kMaxBoundedLength;
    const int64_t chain = bounded ? *hi : std::min<int64_t>(*lo, kMaxBoundedLength);
    for (int64_t i = 0; i <= chain; ++i) {
      if (i >= *lo) g_.range(cur, end, '"', '"');
      if (i == chain) break;
      const Node nx = g_.add_node();
      string_char(cur, nx);
      cur = nx;
    }
    if (!bounded) string_char(cur, cur);  // then any number more
    return end;
  }

  Node digits(Node from, int min, int max) {  // [0-9]{min,max}
    const Node end = g_.add_node();
    Node cur = from;
    for (int i = 0; i <= max; ++i) {
      if (i >= min) g_.epsilon(cur, end);
      if (i == max) break;
      const Node nx = g_.add_node();
      g_.range(cur, nx, '0', '9');
      cur = nx;
    }
    return end;
  }

  Node integer(Node from) {
    const Node sign = g_.add_node();
    g_.epsilon(from, sign);
    g_.range(from, sign, '-', '-');
    const Node end = g_.add_node();
    g_.range(sign, end, '0', '0');
    const Node first = g_.add_node();
    g_.range(sign, first, '1', '9');
    g_.epsilon(digits(first, 0, kMaxIntDigits - 1), end);
    return end;
  }

  Node number(Node from) {
    const Node ip = integer(from);
    const Node frac_end = g_.add_node();
    g_.epsilon(ip, frac_end);
    g_.epsilon(digits(g_.literal(ip, "."), 1, kMaxFracDigits), frac_end);
    const Node end = g_.add_node();
    g_.epsilon(frac_end, end);
    const Node e = g_.add_node();
    g_.range(frac_end, e, 'e', 'e');
    g_.range(frac_end, e, 'E', 'E');
    const Node sign = g_.add_node();
    g_.epsilon(e, sign);
    g_.range(e, sign, '+', '+');
    g_.range(e, sign, '-', '-');
    g_.epsilon(digits(sign, 1, 2), end);  // |exponent| < 100: always a finite double
    return end;
  }

  Result<Node> object(Node from, const json& s, int depth) {
    std::vector<std::pair<std::string, const json*>> props;
    if (s.contains("properties")) {
      const json& p = s["properties"];
      if (!p.is_object()) return make_error(ErrorCode::kInvalidArgument, "'properties' must be an object");
      for (const auto& [k, v] : p.items()) props.emplace_back(k, &v);
    }
    std::vector<bool> required(props.size(), false);
    if (s.contains("required")) {
      const json& r = s["required"];
      if (!r.is_array()) return make_error(ErrorCode::kInvalidArgument, "'required' must be an array");
      for (const auto& name : r) {
        if (!name.is_string()) return make_error(ErrorCode::kInvalidArgument, "'required' entries must be strings");
        auto it = std::find_if(props.begin(), props.end(), [&](const auto& p) { return p.first == name.get<std::string>(); });
        if (it == props.end())
          return make_error(ErrorCode::kInvalidArgument, "required property '{}' is not in 'properties'",
                            name.get<std::string>());
        required[static_cast<size_t>(it - props.begin())] = true;
      }
    }
    const Node open = ws(g_.literal(from, "{"));
    const Node close = g_.add_node();
    const Node end = g_.literal(ws(close), "}");
    // member(i, first): the members from the i-th on; a DAG of 2n entry nodes,
    // since optional members make the separator depend on what came before.
    std::vector<std::array<Node, 2>> memo(props.size() + 1, {-1, -1});
    std::function<Result<Node>(size_t, bool)> member = [&](size_t i, bool first) -> Result<Node> {
      Node& m = memo[i][first ? 1 : 0];
      if (m >= 0) return m;
      const Node n = g_.add_node();
      m = n;
      if (i == props.size()) {
        g_.epsilon(n, close);
        return n;
      }
      if (!required[i]) {
        auto skip = member(i + 1, first);
        if (!skip) return skip;
        g_.epsilon(n, *skip);
      }
      Node cur = n;
      if (!first) cur = ws(g_.literal(ws(cur), ","));
      cur = ws(g_.literal(ws(g_.literal(cur, json_quote(props[i].first))), ":"));
      auto v = value(cur, *props[i].second, depth + 1);
      if (!v) return v;
      auto rest = member(i + 1, false);
      if (!rest) return rest;
      g_.epsilon(*v, *rest);
      return n;
    };
    auto first = member(0, true);
    if (!first) return first;
    g_.epsilon(open, *first);
    return end;
  }

  Result<Node> array(Node from, const json& s, int depth) {
    if (!s.contains("items")) return make_error(ErrorCode::kUnsupported, "an array schema without 'items' is not supported");
    auto lo = bound(s, "minItems", 0);
    if (!lo) return std::unexpected(lo.error());
    auto hi = bound(s, "maxItems", -1);
    if (!hi) return std::unexpected(hi.error());
    if (*hi >= 0 && *hi < *lo) return make_error(ErrorCode::kInvalidArgument, "maxItems {} < minItems {}", *hi, *lo);
    if (*lo > 256 || *hi > 256) return make_error(ErrorCode::kUnsupported, "array bounds above 256 items are not supported");
    const json& item = s["items"];
    const Node close = g_.add_node();
    const Node end = g_.literal(ws(close), "]");
    Node cur = ws(g_.literal(from, "["));
    const int64_t chain = *hi >= 0 ? *hi : std::max<int64_t>(*lo, 1);
    for (int64_t k = 0;; ++k) {
      if (k >= *lo) g_.epsilon(cur, close);
      if (k == chain) break;
      Node start = cur;
      if (k > 0) start = ws(g_.literal(ws(start), ","));
      auto v = value(start, item, depth + 1);
      if (!v) return v;
      const Node after = g_.add_node();
      g_.epsilon(*v, after);
      cur = after;
    }
    if (*hi < 0) {  // more items, unbounded: loop back through a separator
      auto v = value(ws(g_.literal(ws(cur), ",")), item, depth + 1);
      if (!v) return v;
      g_.epsilon(*v, cur);
    }
    return end;
  }

  Result<Node> typed(Node from, const std::string& type, const json& s, int depth) {
    if (type == "string") return string(from, s);
    if (type == "integer") return integer(from);
    if (type == "number") return number(from);
    if (type == "boolean") return g_.one_of(from, std::vector<std::string>{"true", "false"});
    if (type == "null") return g_.literal(from, "null");
    if (type == "object") return object(from, s, depth);
    if (type == "array") return array(from, s, depth);
    return make_error(ErrorCode::kInvalidArgument, "unknown JSON schema type '{}'", type);
  }

  Grammar& g_;
};

}  // namespace

Result<Grammar::Node> add_json_schema(Grammar& g, Grammar::Node from, const nlohmann::ordered_json& schema) {
  return SchemaCompiler(g).value(from, schema, 0);
}

Result<Grammar> json_schema_grammar(const nlohmann::ordered_json& schema) {
  Grammar g;
  auto end = add_json_schema(g, g.start(), schema);
  if (!end) return std::unexpected(end.error());
  g.accept(*end);
  return g;
}

// ------------------------------------------------------------- VocabIndex --

std::shared_ptr<const VocabIndex> VocabIndex::build(const Tokenizer& tokenizer) {
  auto v = std::make_shared<VocabIndex>();
  const int32_t n = tokenizer.n_tokens();
  v->n_tokens_ = n;
  v->offset_.reserve(static_cast<size_t>(n) + 1);
  v->eog_mask_.assign(static_cast<size_t>(n), 0);
  std::vector<TokenId> candidates;
  candidates.reserve(static_cast<size_t>(n));
  for (TokenId id = 0; id < n; ++id) {
    v->offset_.push_back(static_cast<uint32_t>(v->bytes_.size()));
    const std::string_view piece = tokenizer.token_to_piece(id, /*render_special=*/true);
    v->bytes_.append(piece);
    if (tokenizer.is_eog(id)) {
      v->eog_mask_[static_cast<size_t>(id)] = 1;
      v->eog_.push_back(id);
      continue;
    }
    const uint32_t attr = tokenizer.token_attr(id);
    if (piece.empty() || (attr & (kAttrUnused | kAttrUnknown))) continue;
    candidates.push_back(id);
  }
  v->offset_.push_back(static_cast<uint32_t>(v->bytes_.size()));
  std::sort(candidates.begin(), candidates.end(), [&](TokenId a, TokenId b) {
    const auto pa = v->piece(a), pb = v->piece(b);
    return pa != pb ? pa < pb : a < b;
  });
  v->lcp_.assign(candidates.size(), 0);
  for (size_t i = 1; i < candidates.size(); ++i) {
    const auto a = v->piece(candidates[i - 1]), b = v->piece(candidates[i]);
    size_t k = 0;
    const size_t m = std::min({a.size(), b.size(), size_t{0xffff}});
    while (k < m && a[k] == b[k]) ++k;
    v->lcp_[i] = static_cast<uint16_t>(k);
  }
  v->sorted_ = std::move(candidates);
  return v;
}

std::string_view VocabIndex::piece(TokenId id) const {
  if (id < 0 || id >= n_tokens_) return {};
  const auto i = static_cast<size_t>(id);
  return std::string_view(bytes_).substr(offset_[i], offset_[i + 1] - offset_[i]);
}

bool VocabIndex::is_eog(TokenId id) const { return id >= 0 && id < n_tokens_ && eog_mask_[static_cast<size_t>(id)]; }

void VocabIndex::allowed(Grammar& g, int32_t state, std::vector<TokenId>& out) const {
  // st[k]: the DFA state after the first k bytes of the previous piece; valid
  // for k <= valid. Sorted order makes shared prefixes adjacent, so a dead
  // prefix skips its whole range with integer compares only.
  std::vector<int32_t> st(1, state);
  size_t valid = 0;
  const size_t n = sorted_.size();
  size_t i = 0;
  while (i < n) {
    const TokenId id = sorted_[i];
    const std::string_view p = piece(id);
    if (st.size() < p.size() + 1) st.resize(p.size() + 1);
    size_t k = i == 0 ? 0 : std::min<size_t>(lcp_[i], valid);
    bool dead = false;
    for (; k < p.size(); ++k) {
      const int32_t s = g.step(st[k], static_cast<uint8_t>(p[k]));
      if (s == Grammar::kDead) {
        dead = true;
        break;
      }
      st[k + 1] = s;
    }
    if (dead) {
      // Skip every token sharing the dead prefix p[0..k] (a contiguous range):
      // binary search, so a dead first byte costs O(log n), not its range.
      valid = k;
      const std::string_view dead_prefix = p.substr(0, k + 1);
      i = static_cast<size_t>(std::upper_bound(sorted_.begin() + static_cast<std::ptrdiff_t>(i) + 1, sorted_.end(),
                                               dead_prefix,
                                               [&](std::string_view key, TokenId t) {
                                                 return key < piece(t).substr(0, key.size());
                                               }) -
                              sorted_.begin());
      continue;
    }
    valid = p.size();
    out.push_back(id);
    ++i;
  }
}

// ------------------------------------------------------ GrammarConstraint --

GrammarConstraint::GrammarConstraint(std::shared_ptr<const VocabIndex> vocab, Grammar grammar)
    : vocab_(std::move(vocab)), grammar_(std::move(grammar)) {
  state_ = grammar_.dfa_start();
}

bool GrammarConstraint::complete() const { return grammar_.accepting(state_); }

void GrammarConstraint::apply(std::span<float> logits) {
  const auto t0 = Clock::now();
  auto it = allowed_memo_.find(state_);
  if (it == allowed_memo_.end()) {
    std::vector<TokenId> ids;
    if (!done_) vocab_->allowed(grammar_, state_, ids);
    it = allowed_memo_.emplace(state_, std::move(ids)).first;
  }
  // Gather the allowed logits, blank everything, put them back: O(allowed)
  // plus one fill, whatever the vocabulary size.
  keep_.clear();
  auto keep = [&](TokenId id) {
    if (static_cast<size_t>(id) < logits.size()) keep_.emplace_back(id, logits[static_cast<size_t>(id)]);
  };
  for (TokenId id : it->second) keep(id);
  // End of generation where the sentence may end, or as the only way out when
  // the vocabulary cannot spell any continuation (the result is then incomplete).
  eog_allowed_ = grammar_.accepting(state_) || keep_.empty();
  if (eog_allowed_)
    for (TokenId id : vocab_->eog()) keep(id);
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  for (const auto& [id, v] : keep_) logits[static_cast<size_t>(id)] = v;
  mask_seconds_ += seconds_since(t0);
}

void GrammarConstraint::accept(TokenId token) {
  ++steps_;
  if (done_) return;
  if (vocab_->is_eog(token)) {
    violated_ = !eog_allowed_;
    done_ = true;
    return;
  }
  const int32_t s = grammar_.step(state_, vocab_->piece(token));
  if (s == Grammar::kDead || vocab_->piece(token).empty()) {
    violated_ = true;
    done_ = true;
    return;
  }
  state_ = s;
  text_.append(vocab_->piece(token));
  if (grammar_.accepting(state_) && !grammar_.can_continue(state_)) done_ = true;
}

}  // namespace codey
