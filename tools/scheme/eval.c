/*
 * eval.c: the evaluator.
 *
 * eval() walks the s-expression directly.  Proper tail calls: every
 * expression in tail position (the branches of if/cond/case/when/unless,
 * the last expression of a body, the body of a procedure called in tail
 * position) is evaluated by going round eval's loop with new x and env,
 * never by a C call, so a tail-recursive loop runs in constant C stack.
 * `apply` and cond's `=>` also call in tail position.
 *
 * Arguments are evaluated into a small array on the C stack (scanned by
 * mgc conservatively, so the values stay alive), or, for long argument
 * lists, into a heap vector held through an interior pointer.  A closure
 * call then builds one frame (env.c) for its parameters.
 *
 * Special forms are recognised by their symbol's header (the special-form
 * id set by eval_init); their names are reserved, not shadowable.
 */
#include <string.h>

#include "scheme.h"

#define STACK_ARGS 8

static val sym_of(const char *name, enum special sf) {
  val s = intern_cstr(name);
  AS(symbol, s)->hdr = OBJ_HDR(K_SYMBOL, sf);   /* a header, not a pointer: no barrier */
  return s;
}

void eval_init(void) {
  R.sym_quote = sym_of("quote", SF_QUOTE);
  R.sym_quasiquote = sym_of("quasiquote", SF_QUASIQUOTE);
  R.sym_unquote = intern_cstr("unquote");
  R.sym_unquote_splicing = intern_cstr("unquote-splicing");
  R.sym_else = intern_cstr("else");
  R.sym_arrow = intern_cstr("=>");
  R.sym_define = sym_of("define", SF_DEFINE);
  R.sym_lambda = sym_of("lambda", SF_LAMBDA);
  sym_of("if", SF_IF);
  sym_of("set!", SF_SET);
  sym_of("begin", SF_BEGIN);
  sym_of("let", SF_LET);
  sym_of("let*", SF_LETSTAR);
  sym_of("letrec", SF_LETREC);
  sym_of("letrec*", SF_LETREC);
  sym_of("cond", SF_COND);
  sym_of("case", SF_CASE);
  sym_of("and", SF_AND);
  sym_of("or", SF_OR);
  sym_of("when", SF_WHEN);
  sym_of("unless", SF_UNLESS);
  sym_of("do", SF_DO);
}

/* ---- syntax helpers --------------------------------------------------------- */

_Noreturn static void bad_syntax(val x) { scheme_error_val("bad syntax", x); }

/* Element i of the form x, which must have it. */
static val form_ref(val x, int i) {
  val l = x;
  for (; i > 0 && is_pair(l); i--) l = cdr(l);
  if (!is_pair(l)) bad_syntax(x);
  return car(l);
}

static val form_tail(val x, int i) {
  val l = x;
  for (; i > 0 && is_pair(l); i--) l = cdr(l);
  if (i > 0) bad_syntax(x);
  return l;
}

/* Evaluate all but the last expression of a body; return the last, for
 * the caller to evaluate in tail position. */
static val eval_body(val body, val env) {
  if (!is_pair(body)) scheme_error("empty body");
  for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env);
  return car(body);
}

/* ---- arguments ----------------------------------------------------------------- */

/* Evaluate the argument expressions into buf (STACK_ARGS long) or, when
 * there are more, into a fresh heap vector; returns where they are. */
static val *eval_args(val exprs, val env, val *buf, int *argc) {
  int n = 0;
  for (val l = exprs; is_pair(l); l = cdr(l)) n++;
  *argc = n;
  if (n <= STACK_ARGS) {
    for (int i = 0; i < n; i++, exprs = cdr(exprs)) buf[i] = eval(car(exprs), env);
    return buf;
  }
  val v = make_vector((size_t)n, FALSE_V);
  val *items = AS(vector, v)->items;   /* interior pointer: keeps v alive */
  for (int i = 0; i < n; i++, exprs = cdr(exprs)) set_field(&items[i], eval(car(exprs), env));
  return items;
}

/* The same for a list of values (apply). */
static val *spread_list(val list, val *buf, int *argc) {
  int n = (int)list_length(list);
  *argc = n;
  if (n <= STACK_ARGS) {
    for (int i = 0; i < n; i++, list = cdr(list)) buf[i] = car(list);
    return buf;
  }
  val v = make_vector((size_t)n, FALSE_V);
  val *items = AS(vector, v)->items;
  for (int i = 0; i < n; i++, list = cdr(list)) set_field(&items[i], car(list));
  return items;
}

/* (apply f a b ... list): argv[0] is f; the arguments are argv[1..argc-2]
 * followed by the elements of argv[argc-1].  Returns the new argv. */
static val *apply_spread(int argc, val *argv, val *buf, int *out_argc) {
  val list = argv[argc - 1];
  for (int i = argc - 2; i >= 1; i--) list = cons(argv[i], list);
  return spread_list(list, buf, out_argc);
}

val prim_apply(int argc, val *argv);
val prim_apply(int argc, val *argv) {
  val buf[STACK_ARGS];
  int n;
  val *args = apply_spread(argc, argv, buf, &n);
  return apply_procedure(argv[0], n, args);
}

/* A new frame binding closure c's parameters to the arguments. */
static val bind_params(val c, int argc, val *argv) {
  val params = AS(closure, c)->params;
  int required = 0;
  val p = params;
  for (; is_pair(p); p = cdr(p)) required++;
  bool rest = p != NIL;
  if (argc < required || (!rest && argc > required)) {
    val name = AS(closure, c)->name;
    scheme_error("%s: expected %s%d argument%s, got %d",
                 is_symbol(name) ? symbol_name(name) : "#<procedure>", rest ? "at least " : "",
                 required, required == 1 ? "" : "s", argc);
  }
  val f = make_frame((size_t)required + rest, AS(closure, c)->env);
  val *slots = AS(frame, f)->slots;
  p = params;
  for (int i = 0; i < required; i++, p = cdr(p)) {
    set_field(&slots[2 * i], car(p));
    set_field(&slots[2 * i + 1], argv[i]);
  }
  if (rest) {
    val list = NIL;
    for (int i = argc - 1; i >= required; i--) list = cons(argv[i], list);
    set_field(&slots[2 * required], p);
    set_field(&slots[2 * required + 1], list);
  }
  return f;
}

static val call_primitive(val f, int argc, val *argv) {
  struct primitive *p = AS(primitive, f);
  int min = (int)(HDR_COUNT(p->hdr) & 0xff), max = (int)(HDR_COUNT(p->hdr) >> 8 & 0xff);
  if (argc < min || (max != ANY_ARGS && argc > max))
    scheme_error("%s: expected %s%d argument%s, got %d", p->name,
                 max == ANY_ARGS ? "at least " : (min == max ? "" : "at most "),
                 max == ANY_ARGS || min == max ? min : max, (min == max && min == 1) ? "" : "s", argc);
  return p->fn(argc, argv);
}

val apply_procedure(val f, int argc, val *argv) {
  if (has_kind(f, K_PRIMITIVE)) return call_primitive(f, argc, argv);
  if (!has_kind(f, K_CLOSURE)) scheme_error_val("not a procedure", f);
  val env = bind_params(f, argc, argv);
  return eval(eval_body(AS(closure, f)->body, env), env);
}

/* ---- quasiquote --------------------------------------------------------------- */

static val quasi(val t, val env, int depth);

static val quasi_list(val t, val env, int depth) {
  val head = NIL, tail = NIL;
  for (; is_pair(t); t = cdr(t)) {
    if (car(t) == R.sym_unquote || car(t) == R.sym_quasiquote) break;  /* (a . ,b) */
    val item = car(t), piece;
    if (depth == 1 && is_pair(item) && car(item) == R.sym_unquote_splicing) {
      piece = eval(form_ref(item, 1), env);
      /* copy the spliced list (it may be shared) */
      val copy = NIL, ctail = NIL;
      for (; is_pair(piece); piece = cdr(piece)) {
        val cell = cons(car(piece), NIL);
        if (copy == NIL) copy = cell; else set_field(&AS(pair, ctail)->cdr, cell);
        ctail = cell;
      }
      if (copy == NIL) continue;
      if (head == NIL) head = copy; else set_field(&AS(pair, tail)->cdr, copy);
      tail = ctail;
      continue;
    }
    val cell = cons(quasi(item, env, depth), NIL);
    if (head == NIL) head = cell; else set_field(&AS(pair, tail)->cdr, cell);
    tail = cell;
  }
  if (t != NIL) {
    val last = quasi(t, env, depth);
    if (head == NIL) return last;
    set_field(&AS(pair, tail)->cdr, last);
  }
  return head;
}

static val quasi(val t, val env, int depth) {
  if (is_vector(t)) {
    size_t n = vector_length(t);
    val l = NIL;
    for (size_t i = n; i > 0; i--) l = cons(AS(vector, t)->items[i - 1], l);
    l = quasi_list(l, env, depth);
    n = list_length(l);
    val v = make_vector(n, FALSE_V);
    for (size_t i = 0; i < n; i++, l = cdr(l)) set_field(&AS(vector, v)->items[i], car(l));
    return v;
  }
  if (!is_pair(t)) return t;
  if (car(t) == R.sym_unquote) {
    if (depth == 1) return eval(form_ref(t, 1), env);
    return cons(R.sym_unquote, cons(quasi(form_ref(t, 1), env, depth - 1), NIL));
  }
  if (car(t) == R.sym_quasiquote)
    return cons(R.sym_quasiquote, cons(quasi(form_ref(t, 1), env, depth + 1), NIL));
  return quasi_list(t, env, depth);
}

/* ---- binding forms -------------------------------------------------------------- */

/* (let ((v init) ...) body): a frame with the inits evaluated in env. */
static val let_frame(val bindings, val env) {
  size_t n = list_length(bindings);
  val f = make_frame(n, env);
  val *slots = AS(frame, f)->slots;
  for (size_t i = 0; i < n; i++, bindings = cdr(bindings)) {
    val b = car(bindings);
    if (!is_pair(b) || !is_symbol(car(b))) bad_syntax(b);
    set_field(&slots[2 * i], car(b));
    set_field(&slots[2 * i + 1], is_pair(cdr(b)) ? eval(form_ref(b, 1), env) : UNSPEC);
  }
  return f;
}

static val letstar_frame(val bindings, val env) {
  if (bindings == NIL) return make_frame(0, env);
  for (; is_pair(bindings); bindings = cdr(bindings)) {
    val b = car(bindings);
    if (!is_pair(b) || !is_symbol(car(b))) bad_syntax(b);
    val value = is_pair(cdr(b)) ? eval(form_ref(b, 1), env) : UNSPEC;
    val f = make_frame(1, env);
    set_field(&AS(frame, f)->slots[0], car(b));
    set_field(&AS(frame, f)->slots[1], value);
    env = f;
  }
  return env;
}

static val letrec_frame(val bindings, val env) {
  size_t n = list_length(bindings);
  val f = make_frame(n, env);
  val *slots = AS(frame, f)->slots;
  val b = bindings;
  for (size_t i = 0; i < n; i++, b = cdr(b)) {
    if (!is_pair(car(b)) || !is_symbol(car(car(b)))) bad_syntax(car(b));
    set_field(&slots[2 * i], car(car(b)));
    set_field(&slots[2 * i + 1], UNBOUND);
  }
  for (size_t i = 0; i < n; i++, bindings = cdr(bindings))
    set_field(&slots[2 * i + 1], eval(form_ref(car(bindings), 1), f));
  return f;
}

/* (define name expr), (define (name . params) body...) */
static void eval_define(val x, val env) {
  val target = form_ref(x, 1);
  if (is_pair(target)) {
    /* curried form (define ((f a) b) ...) is not supported */
    val name = car(target);
    if (!is_symbol(name)) bad_syntax(x);
    env_define(env, name, make_closure(cdr(target), form_tail(x, 2), env, name));
    return;
  }
  if (!is_symbol(target)) bad_syntax(x);
  val value = is_pair(cdr(cdr(x))) ? eval(form_ref(x, 2), env) : UNSPEC;
  if (has_kind(value, K_CLOSURE) && !is_symbol(AS(closure, value)->name))
    set_field(&AS(closure, value)->name, target);
  env_define(env, target, value);
}

/* (do ((var init step)...) (test result...) body...): returns the result
 * expression for tail evaluation and sets *envp to its environment, or
 * returns 0 when there are no result expressions. */
static val eval_do(val x, val *envp) {
  val specs = form_ref(x, 1), exit_clause = form_ref(x, 2), body = form_tail(x, 3);
  val env = *envp;
  size_t n = list_length(specs);
  val f = let_frame(specs, env);
  for (;;) {
    if (truthy(eval(form_ref(exit_clause, 0), f))) {
      *envp = f;
      return cdr(exit_clause) == NIL ? 0 : eval_body(cdr(exit_clause), f);
    }
    for (val b = body; is_pair(b); b = cdr(b)) eval(car(b), f);
    /* a fresh frame per iteration, so closures made in the body keep theirs */
    val next = make_frame(n, env);
    val s = specs;
    for (size_t i = 0; i < n; i++, s = cdr(s)) {
      val spec = car(s);
      val value = is_pair(form_tail(spec, 2)) ? eval(form_ref(spec, 2), f) : AS(frame, f)->slots[2 * i + 1];
      set_field(&AS(frame, next)->slots[2 * i], car(spec));
      set_field(&AS(frame, next)->slots[2 * i + 1], value);
    }
    f = next;
  }
}

/* ---- eval ------------------------------------------------------------------------ */

val eval(val x, val env) {
  val buf[STACK_ARGS];
  val f, *argv;
  int argc;
  stack_check();
  for (;;) {
    if (is_symbol(x)) return env_lookup(env, x);
    if (!is_pair(x)) {
      if (x == NIL) scheme_error("cannot evaluate the empty combination ()");
      return x;
    }
    val op = car(x);
    if (is_symbol(op) && HDR_COUNT(AS(symbol, op)->hdr) != SF_NONE) {
      switch ((enum special)HDR_COUNT(AS(symbol, op)->hdr)) {
      case SF_QUOTE: return form_ref(x, 1);
      case SF_QUASIQUOTE: return quasi(form_ref(x, 1), env, 1);
      case SF_IF:
        if (truthy(eval(form_ref(x, 1), env))) { x = form_ref(x, 2); continue; }
        if (!is_pair(form_tail(x, 3))) return UNSPEC;
        x = form_ref(x, 3);
        continue;
      case SF_DEFINE: eval_define(x, env); return UNSPEC;
      case SF_SET: {
        val sym = form_ref(x, 1);
        if (!is_symbol(sym)) bad_syntax(x);
        val value = eval(form_ref(x, 2), env);
        val *slot = env_lookup_slot(env, sym);
        if (!slot) scheme_error("set!: unbound variable: %s", symbol_name(sym));
        set_field(slot, value);
        return UNSPEC;
      }
      case SF_LAMBDA: return make_closure(form_ref(x, 1), form_tail(x, 2), env, FALSE_V);
      case SF_BEGIN:
        if (form_tail(x, 1) == NIL) return UNSPEC;
        x = eval_body(form_tail(x, 1), env);
        continue;
      case SF_LET: {
        val second = form_ref(x, 1);
        if (is_symbol(second)) {          /* named let */
          val bindings = form_ref(x, 2), vars = NIL, tail = NIL;
          for (val b = bindings; is_pair(b); b = cdr(b)) {
            val cell = cons(form_ref(car(b), 0), NIL);
            if (vars == NIL) vars = cell; else set_field(&AS(pair, tail)->cdr, cell);
            tail = cell;
          }
          val loop_env = make_frame(1, env);
          f = make_closure(vars, form_tail(x, 3), loop_env, second);
          set_field(&AS(frame, loop_env)->slots[0], second);
          set_field(&AS(frame, loop_env)->slots[1], f);
          val inits = NIL;
          tail = NIL;
          for (val b = bindings; is_pair(b); b = cdr(b)) {
            val cell = cons(form_ref(car(b), 1), NIL);
            if (inits == NIL) inits = cell; else set_field(&AS(pair, tail)->cdr, cell);
            tail = cell;
          }
          argv = eval_args(inits, env, buf, &argc);
          goto apply;
        }
        env = let_frame(second, env);
        x = eval_body(form_tail(x, 2), env);
        continue;
      }
      case SF_LETSTAR:
        env = letstar_frame(form_ref(x, 1), env);
        x = eval_body(form_tail(x, 2), env);
        continue;
      case SF_LETREC:
        env = letrec_frame(form_ref(x, 1), env);
        x = eval_body(form_tail(x, 2), env);
        continue;
      case SF_COND: {
        val clause = NIL;
        val test = FALSE_V;
        for (val c = form_tail(x, 1); is_pair(c); c = cdr(c)) {
          clause = car(c);
          if (!is_pair(clause)) bad_syntax(clause);
          if (car(clause) == R.sym_else) { test = TRUE_V; break; }
          test = eval(car(clause), env);
          if (truthy(test)) break;
        }
        if (!truthy(test)) return UNSPEC;
        if (cdr(clause) == NIL) return test;
        if (form_ref(clause, 1) == R.sym_arrow) {
          f = eval(form_ref(clause, 2), env);
          buf[0] = test;
          argv = buf;
          argc = 1;
          goto apply;
        }
        x = eval_body(cdr(clause), env);
        continue;
      }
      case SF_CASE: {
        val key = eval(form_ref(x, 1), env);
        val body = 0;
        for (val c = form_tail(x, 2); is_pair(c) && !body; c = cdr(c)) {
          val clause = car(c);
          if (!is_pair(clause)) bad_syntax(clause);
          if (car(clause) == R.sym_else) { body = cdr(clause); break; }
          for (val d = car(clause); is_pair(d); d = cdr(d))
            if (eqv(car(d), key)) { body = cdr(clause); break; }
        }
        if (!body) return UNSPEC;
        x = eval_body(body, env);
        continue;
      }
      case SF_AND: case SF_OR: {
        bool is_and = HDR_COUNT(AS(symbol, op)->hdr) == SF_AND;
        val l = form_tail(x, 1);
        if (l == NIL) return make_bool(is_and);
        for (; is_pair(cdr(l)); l = cdr(l)) {
          val v = eval(car(l), env);
          if (truthy(v) != is_and) return v;
        }
        x = car(l);
        continue;
      }
      case SF_WHEN: case SF_UNLESS: {
        bool want = HDR_COUNT(AS(symbol, op)->hdr) == SF_WHEN;
        if (truthy(eval(form_ref(x, 1), env)) != want) return UNSPEC;
        x = eval_body(form_tail(x, 2), env);
        continue;
      }
      case SF_DO:
        x = eval_do(x, &env);
        if (!x) return UNSPEC;
        continue;
      case SF_NONE: break;
      }
    }
    f = eval(op, env);
    argv = eval_args(cdr(x), env, buf, &argc);
  apply:
    if (has_kind(f, K_PRIMITIVE)) {
      if (AS(primitive, f)->fn != prim_apply) return call_primitive(f, argc, argv);
      if (argc < 2) scheme_error("apply: expected at least 2 arguments, got %d", argc);
      f = argv[0];
      argv = apply_spread(argc, argv, buf, &argc);
      goto apply;
    }
    if (!has_kind(f, K_CLOSURE)) scheme_error_val("not a procedure", f);
    env = bind_params(f, argc, argv);
    x = eval_body(AS(closure, f)->body, env);
  }
}
