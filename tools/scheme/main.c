/*
 * main.c: mgscheme's entry point, REPL and script mode.
 *
 *   mgscheme                 REPL on stdin (prompts when it is a terminal)
 *   mgscheme FILE.scm        run the program; exit 1 on an uncaught error
 *   mgscheme -e EXPR ...     evaluate expressions given as arguments
 *
 * mgc is the only heap.  At exit, when MGC_VERIFY found objects the
 * concurrent mark missed (a missing write barrier), the exit status is 3,
 * so the test suite fails on a barrier bug even if the output was right.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "scheme.h"

#define EXIT_VERIFY_MISSES 3

static void init(void *stack_base) {
  gc_init();
  stack_check_init(stack_base);
  scheme_roots_init();
  heap_init();
  eval_init();
  port_init();
  prim_num_init();
  prim_list_init();
  prim_string_init();
  prim_sys_init();
  table_init();
}

int verify_status(int status) {
  struct gc_stats st = {.size = sizeof st};
  fflush(stdout);
  if (gc_get_stats(&st) == 0 && st.verify_misses > 0) {
    fprintf(stderr, "mgscheme: MGC_VERIFY: the concurrent mark missed %llu objects\n",
            (unsigned long long)st.verify_misses);
    return EXIT_VERIFY_MISSES;
  }
  return status;
}

/* Evaluate every datum of src; on an error report it (prefixed by where)
 * and return false, or go on with the next datum when `keep_going`. */
static bool run_source(struct source *src, const char *where, bool keep_going, bool print_results) {
  struct handler h;
  h.prev = error_handler;
  error_handler = &h;
  volatile bool ok = true;
  for (;;) {
    if (setjmp(h.jb)) {
      fflush(stdout);
      fprintf(stderr, "%s:%d: error: %s\n", where, src->line, h.message);
      ok = false;
      if (!keep_going) break;
      if (src->fp) {                      /* drop the rest of the bad line */
        for (; src->pos < src->len; src->pos++)
          if (src->buf[src->pos] == '\n') src->line++;
      }
      continue;
    }
    val x = read_datum(src);
    if (x == EOF_V) break;
    stack_scrub();
    val v = eval(x, NIL);
    if (print_results && v != UNSPEC) {
      print_value(stdout, v, true);
      putchar('\n');
    }
    fflush(stdout);
  }
  error_handler = h.prev;
  return ok;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len + 4096 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, cap);
      if (!nb) { free(buf); fclose(f); errno = ENOMEM; return NULL; }
      buf = nb;
    }
    size_t n = fread(buf + *len, 1, cap - *len, f);
    *len += n;
    if (n == 0) break;
  }
  fclose(f);
  return buf;
}

static bool run_file(const char *path) {
  size_t len;
  char *buf = read_file(path, &len);
  if (!buf) {
    fprintf(stderr, "mgscheme: cannot read %s: %s\n", path, strerror(errno));
    return false;
  }
  struct source src;
  source_init_string(&src, buf, len);
  bool ok = run_source(&src, path, false, false);
  source_free(&src);
  return ok;
}

/* (load "file"): run a file in the global environment. */
static val p_load(int argc, val *argv) {
  (void)argc;
  if (!is_string(argv[0])) type_error("load", "a file name", argv[0]);
  if (!run_file(AS(string, argv[0])->bytes)) scheme_error("load: %s failed", AS(string, argv[0])->bytes);
  return UNSPEC;
}

int main(int argc, char **argv) {
  int base;
  init(&base);
  defprim("load", p_load, 1, 1);
  if (argc >= 3 && strcmp(argv[1], "-e") == 0) {
    bool ok = true;
    for (int i = 2; i < argc && ok; i++) {
      struct source src;
      source_init_string(&src, strdup(argv[i]), strlen(argv[i]));
      ok = run_source(&src, "-e", false, true);
      source_free(&src);
    }
    return verify_status(ok ? 0 : 1);
  }
  if (argc >= 2 && strcmp(argv[1], "-") != 0) return verify_status(run_file(argv[1]) ? 0 : 1);
  struct source src;
  bool tty = isatty(STDIN_FILENO);
  source_init_stream(&src, stdin, tty ? "> " : NULL);
  run_source(&src, "stdin", true, true);
  if (tty) putchar('\n');
  source_free(&src);
  return verify_status(0);
}
