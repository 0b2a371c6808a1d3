/*
 * reader.c: the parser, from characters to values.
 *
 * A source is a malloc'd buffer, refilled a line at a time from a stream
 * when it has one (the REPL).  Waiting for a line of input can block for
 * ever, so the read runs between gc_blocking_begin and gc_blocking_end:
 * the collector need not stop this thread meanwhile.  Nothing in that
 * window touches the heap; the partly read datum stays on the C stack,
 * whose top mgc recorded on entry.
 *
 * Syntax: lists and dotted pairs, vectors #( ... ), strings with \n \t \\
 * \" escapes, characters #\a #\space #\newline #\tab, #t #f, integers
 * (fixnums, or flonums when they overflow), decimals, symbols (kept as
 * written: case-sensitive), ' ` , ,@ and ; comments.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scheme.h"

void source_init_string(struct source *s, char *buf, size_t len) {
  *s = (struct source){.buf = buf, .len = len, .line = 1};
}

void source_init_stream(struct source *s, FILE *fp, const char *prompt) {
  *s = (struct source){.fp = fp, .line = 1, .prompt = prompt};
}

void source_free(struct source *s) {
  free(s->buf);
  s->buf = NULL;
}

/* Fetch one more line from the stream; false at end of input. */
static bool source_refill(struct source *s) {
  if (!s->fp) return false;
  if (s->prompt) {
    fputs(s->prompt, stdout);
    fflush(stdout);
  }
  char *line = NULL;
  size_t cap = 0;
  gc_blocking_begin();
  ssize_t n = getline(&line, &cap, s->fp);
  gc_blocking_end();
  if (n <= 0) {
    free(line);
    return false;
  }
  free(s->buf);
  s->buf = line;
  s->len = (size_t)n;
  s->pos = 0;
  return true;
}

static int peekc(struct source *s) {
  while (s->pos >= s->len)
    if (!source_refill(s)) return EOF;
  return (unsigned char)s->buf[s->pos];
}

static int getc_src(struct source *s) {
  int c = peekc(s);
  if (c != EOF) {
    s->pos++;
    if (c == '\n') s->line++;
  }
  return c;
}

static void skip_space(struct source *s) {
  for (;;) {
    int c = peekc(s);
    if (c == ';') {
      while ((c = getc_src(s)) != EOF && c != '\n') {}
    } else if (c != EOF && isspace(c)) {
      getc_src(s);
    } else {
      return;
    }
  }
}

static bool is_delimiter(int c) {
  return c == EOF || isspace(c) || c == '(' || c == ')' || c == '"' || c == ';' || c == '\'';
}

/* A growable malloc buffer for tokens and string literals. */
struct tok { char *b; size_t n, cap; };
static void tok_push(struct tok *t, char c) {
  if (t->n + 1 >= t->cap) {
    t->cap = t->cap ? t->cap * 2 : 64;
    char *nb = realloc(t->b, t->cap);
    if (!nb) { free(t->b); scheme_error("read: out of memory"); }
    t->b = nb;
  }
  t->b[t->n++] = c;
  t->b[t->n] = '\0';
}

static val read_string_lit(struct source *s) {
  struct tok t = {0};
  tok_push(&t, 0); t.n = 0;
  for (;;) {
    int c = getc_src(s);
    if (c == EOF) { free(t.b); scheme_error("read: end of input inside a string (line %d)", s->line); }
    if (c == '"') break;
    if (c == '\\') {
      c = getc_src(s);
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case '0': c = '\0'; break;
      case EOF: free(t.b); scheme_error("read: end of input inside a string");
      default: break;
      }
    }
    tok_push(&t, (char)c);
  }
  val str = make_string(t.b, t.n);
  free(t.b);
  return str;
}

static void read_token(struct source *s, struct tok *t) {
  while (!is_delimiter(peekc(s))) tok_push(t, (char)getc_src(s));
}

/* A number if the token is one, else 0. */
static val parse_number(const char *tok) {
  char *end;
  errno = 0;
  long long n = strtoll(tok, &end, 10);
  if (*tok && *end == '\0' && (isdigit((unsigned char)tok[0]) || tok[1])) {
    if (errno == 0 && n >= FIXNUM_MIN && n <= FIXNUM_MAX) return make_fixnum((intptr_t)n);
    return make_flonum(strtod(tok, NULL));
  }
  double d = strtod(tok, &end);
  if (*end == '\0' && end != tok && strpbrk(tok, "0123456789") && !strpbrk(tok, "xXpP")
      && !strstr(tok, "nf") && !strstr(tok, "an"))
    return make_flonum(d);
  return 0;
}

static val read_char_lit(struct source *s) {
  struct tok t = {0};
  tok_push(&t, (char)getc_src(s));     /* at least one character, even a delimiter */
  read_token(s, &t);
  unsigned c;
  if (t.n == 1) c = (unsigned char)t.b[0];
  else if (!strcmp(t.b, "space")) c = ' ';
  else if (!strcmp(t.b, "newline")) c = '\n';
  else if (!strcmp(t.b, "tab")) c = '\t';
  else if (!strcmp(t.b, "nul")) c = 0;
  else {
    char copy[32];
    snprintf(copy, sizeof copy, "%s", t.b);
    free(t.b);
    scheme_error("read: unknown character #\\%s", copy);
  }
  free(t.b);
  return make_char(c);
}

static val read_list(struct source *s, int close);

static val read_hash(struct source *s) {
  int c = peekc(s);
  if (c == '(') {
    getc_src(s);
    val items = read_list(s, ')');
    size_t n = list_length(items);
    val v = make_vector(n, UNSPEC);
    for (size_t i = 0; i < n; i++, items = cdr(items)) set_field(&AS(vector, v)->items[i], car(items));
    return v;
  }
  if (c == '\\') {
    getc_src(s);
    return read_char_lit(s);
  }
  struct tok t = {0};
  read_token(s, &t);
  val v = 0;
  if (t.b && (!strcmp(t.b, "t") || !strcmp(t.b, "true"))) v = TRUE_V;
  else if (t.b && (!strcmp(t.b, "f") || !strcmp(t.b, "false"))) v = FALSE_V;
  else if (t.b && !strcmp(t.b, "eof")) v = EOF_V;
  char copy[32];
  snprintf(copy, sizeof copy, "%s", t.b ? t.b : "");
  free(t.b);
  if (!v) scheme_error("read: unknown syntax #%s (line %d)", copy, s->line);
  return v;
}

static val read_quoted(struct source *s, val sym) {
  val d = read_datum(s);
  if (d == EOF_V) scheme_error("read: end of input after a quote");
  return cons(sym, cons(d, NIL));
}

static val read_atom(struct source *s) {
  struct tok t = {0};
  read_token(s, &t);
  if (!t.b) {
    int c = getc_src(s);
    scheme_error("read: unexpected '%c' (line %d)", c, s->line);
  }
  val v = parse_number(t.b);
  if (!v) v = intern(t.b, t.n);
  free(t.b);
  return v;
}

val read_datum(struct source *s) {
  stack_check();
  skip_space(s);
  int c = peekc(s);
  switch (c) {
  case EOF: return EOF_V;
  case '(': case '[': getc_src(s); return read_list(s, c == '(' ? ')' : ']');
  case ')': case ']': getc_src(s); scheme_error("read: unexpected '%c' (line %d)", c, s->line);
  case '"': getc_src(s); return read_string_lit(s);
  case '#': getc_src(s); return read_hash(s);
  case '\'': getc_src(s); return read_quoted(s, R.sym_quote);
  case '`': getc_src(s); return read_quoted(s, R.sym_quasiquote);
  case ',':
    getc_src(s);
    if (peekc(s) == '@') { getc_src(s); return read_quoted(s, R.sym_unquote_splicing); }
    return read_quoted(s, R.sym_unquote);
  default: return read_atom(s);
  }
}

/* Reads items up to `close`; builds the list front to back through a tail
 * pointer.  head lives on the stack, so the partial list stays alive. */
static val read_list(struct source *s, int close) {
  val head = NIL, tail = NIL;
  for (;;) {
    skip_space(s);
    int c = peekc(s);
    if (c == EOF) scheme_error("read: end of input inside a list (line %d)", s->line);
    if (c == ')' || c == ']') {
      getc_src(s);
      if (c != close) scheme_error("read: '%c' closes a list opened with '%c'", c, close == ')' ? '(' : '[');
      return head;
    }
    if (c == '.' && s->pos + 1 <= s->len &&
        is_delimiter(s->pos + 1 < s->len ? (unsigned char)s->buf[s->pos + 1] : ' ') && head != NIL) {
      getc_src(s);
      val last = read_datum(s);
      set_field(&AS(pair, tail)->cdr, last);
      skip_space(s);
      c = getc_src(s);
      if (c != close) scheme_error("read: bad dotted list (line %d)", s->line);
      return head;
    }
    val cell = cons(read_datum(s), NIL);
    if (head == NIL) head = cell;
    else set_field(&AS(pair, tail)->cdr, cell);
    tail = cell;
  }
}
