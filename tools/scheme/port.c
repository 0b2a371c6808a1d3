/*
 * port.c: file ports and output primitives.
 *
 * A port owns a stdio stream (malloc memory, invisible to mgc).  The
 * program closes it with close-port; if it drops the port instead, the
 * port's finalizer closes the stream (flushing what was written) on mgc's
 * finalizer thread once the collector finds the port unreachable.
 *
 * Who touches port->fp: the interpreter thread while the port is
 * reachable, the finalizer thread after it is not; never both, so no lock.
 * fp is not a heap pointer: plain stores.  The standard ports (PORT_STD)
 * have no finalizer and are never closed.
 *
 * Reads that may block (stdin) run between gc_blocking_begin/end, with no
 * heap access inside.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "scheme.h"

#define UNUSED_ARGC (void)argc

/* Streams closed by finalizers so far (for (ports-finalized)). */
static atomic_long finalized_ports;

static void port_finalize(void *obj, void *data) {
  (void)data;
  struct port *p = obj;
  FILE *fp = p->fp;
  if (fp && !(HDR_COUNT(p->hdr) & PORT_STD)) {
    p->fp = NULL;
    fclose(fp);
    atomic_fetch_add(&finalized_ports, 1);
  }
}

static val check_port(const char *who, val v, unsigned direction) {
  if (!has_kind(v, K_PORT) || !(HDR_COUNT(as_obj(v)->hdr) & direction))
    type_error(who, direction == PORT_INPUT ? "an input port" : "an output port", v);
  if (!AS(port, v)->fp) scheme_error_val("port is closed:", v);
  return v;
}

static FILE *port_in(const char *who, int argc, val *argv, int i) {
  return AS(port, check_port(who, argc > i ? argv[i] : R.stdin_port, PORT_INPUT))->fp;
}

FILE *port_out(const char *who, int argc, val *argv, int i) {
  return AS(port, check_port(who, argc > i ? argv[i] : R.stdout_port, PORT_OUTPUT))->fp;
}

static val open_file(const char *who, val path, const char *mode, unsigned flags) {
  if (!is_string(path)) type_error(who, "a file name", path);
  FILE *fp = fopen(AS(string, path)->bytes, mode);
  if (!fp) scheme_error("%s: cannot open %s: %s", who, AS(string, path)->bytes, strerror(errno));
  val port = make_port(fp, flags, path);
  /* On failure the port still works; it just would leak its stream if
   * dropped unclosed. */
  if (gc_set_finalizer((void *)port, port_finalize, NULL) != 0)
    fprintf(stderr, "mgscheme: %s: no finalizer for %s\n", who, AS(string, path)->bytes);
  return port;
}

static val p_open_input_file(int argc, val *argv) { UNUSED_ARGC; return open_file("open-input-file", argv[0], "r", PORT_INPUT); }
static val p_open_output_file(int argc, val *argv) {
  bool append = argc > 1 && truthy(argv[1]);
  return open_file("open-output-file", argv[0], append ? "a" : "w", PORT_OUTPUT);
}

static val p_close_port(int argc, val *argv) {
  UNUSED_ARGC;
  if (!has_kind(argv[0], K_PORT)) type_error("close-port", "a port", argv[0]);
  struct port *p = AS(port, argv[0]);
  if (HDR_COUNT(p->hdr) & PORT_STD) return UNSPEC;
  FILE *fp = p->fp;
  p->fp = NULL;
  if (fp) {
    gc_set_finalizer(p, NULL, NULL);   /* nothing left to finalize */
    if (fclose(fp) != 0) scheme_error("close-port: %s", strerror(errno));
  }
  return UNSPEC;
}

/* Only the terminal/pipe on stdin can block for long; files are read
 * without the bracket's cost. */
static void blocking_begin(FILE *fp) { if (fp == stdin) gc_blocking_begin(); }
static void blocking_end(FILE *fp) { if (fp == stdin) gc_blocking_end(); }

static val p_read_line(int argc, val *argv) {
  FILE *fp = port_in("read-line", argc, argv, 0);
  char *line = NULL;
  size_t cap = 0;
  blocking_begin(fp);
  ssize_t n = getline(&line, &cap, fp);
  blocking_end(fp);
  if (n < 0) {
    free(line);
    return EOF_V;
  }
  if (n > 0 && line[n - 1] == '\n') n--;
  val s = make_string(line, (size_t)n);
  free(line);
  return s;
}

static val p_read_char(int argc, val *argv) {
  FILE *fp = port_in("read-char", argc, argv, 0);
  blocking_begin(fp);
  int c = getc(fp);
  blocking_end(fp);
  return c == EOF ? EOF_V : make_char((unsigned)c);
}

static val p_peek_char(int argc, val *argv) {
  FILE *fp = port_in("peek-char", argc, argv, 0);
  blocking_begin(fp);
  int c = getc(fp);
  if (c != EOF) ungetc(c, fp);
  blocking_end(fp);
  return c == EOF ? EOF_V : make_char((unsigned)c);
}

static val p_eof_objectp(int argc, val *argv) { UNUSED_ARGC; return make_bool(argv[0] == EOF_V); }

static val p_display(int argc, val *argv) { print_value(port_out("display", argc, argv, 1), argv[0], false); return UNSPEC; }
static val p_write(int argc, val *argv) { print_value(port_out("write", argc, argv, 1), argv[0], true); return UNSPEC; }
static val p_newline(int argc, val *argv) { putc('\n', port_out("newline", argc, argv, 0)); return UNSPEC; }
static val p_write_string(int argc, val *argv) {
  if (!is_string(argv[0])) type_error("write-string", "a string", argv[0]);
  FILE *out = port_out("write-string", argc, argv, 1);
  fwrite(AS(string, argv[0])->bytes, 1, string_length(argv[0]), out);
  return UNSPEC;
}
static val p_write_char(int argc, val *argv) {
  if (!is_char(argv[0])) type_error("write-char", "a character", argv[0]);
  putc((int)char_value(argv[0]), port_out("write-char", argc, argv, 1));
  return UNSPEC;
}
static val p_flush_output(int argc, val *argv) { fflush(port_out("flush-output", argc, argv, 0)); return UNSPEC; }

static val p_current_output_port(int argc, val *argv) { (void)argc; (void)argv; return R.stdout_port; }
static val p_current_input_port(int argc, val *argv) { (void)argc; (void)argv; return R.stdin_port; }
static val p_current_error_port(int argc, val *argv) { (void)argc; (void)argv; return R.stderr_port; }
static val p_portp(int argc, val *argv) { UNUSED_ARGC; return make_bool(has_kind(argv[0], K_PORT)); }
static val p_input_portp(int argc, val *argv) {
  UNUSED_ARGC;
  return make_bool(has_kind(argv[0], K_PORT) && (HDR_COUNT(as_obj(argv[0])->hdr) & PORT_INPUT));
}
static val p_output_portp(int argc, val *argv) {
  UNUSED_ARGC;
  return make_bool(has_kind(argv[0], K_PORT) && (HDR_COUNT(as_obj(argv[0])->hdr) & PORT_OUTPUT));
}

static val p_file_existsp(int argc, val *argv) {
  UNUSED_ARGC;
  if (!is_string(argv[0])) type_error("file-exists?", "a file name", argv[0]);
  return make_bool(access(AS(string, argv[0])->bytes, F_OK) == 0);
}
static val p_delete_file(int argc, val *argv) {
  UNUSED_ARGC;
  if (!is_string(argv[0])) type_error("delete-file", "a file name", argv[0]);
  if (unlink(AS(string, argv[0])->bytes) != 0)
    scheme_error("delete-file: %s: %s", AS(string, argv[0])->bytes, strerror(errno));
  return UNSPEC;
}

static val p_ports_finalized(int argc, val *argv) {
  (void)argc; (void)argv;
  return make_fixnum(atomic_load(&finalized_ports));
}

void port_init(void) {
  R.stdin_port = make_port(stdin, PORT_INPUT | PORT_STD, make_string("stdin", 5));
  R.stdout_port = make_port(stdout, PORT_OUTPUT | PORT_STD, make_string("stdout", 6));
  R.stderr_port = make_port(stderr, PORT_OUTPUT | PORT_STD, make_string("stderr", 6));
  defprim("open-input-file", p_open_input_file, 1, 1);
  defprim("open-output-file", p_open_output_file, 1, 2);
  defprim("close-port", p_close_port, 1, 1);
  defprim("close-input-port", p_close_port, 1, 1);
  defprim("close-output-port", p_close_port, 1, 1);
  defprim("read-line", p_read_line, 0, 1);
  defprim("read-char", p_read_char, 0, 1);
  defprim("peek-char", p_peek_char, 0, 1);
  defprim("eof-object?", p_eof_objectp, 1, 1);
  defprim("display", p_display, 1, 2);
  defprim("write", p_write, 1, 2);
  defprim("newline", p_newline, 0, 1);
  defprim("write-string", p_write_string, 1, 2);
  defprim("write-char", p_write_char, 1, 2);
  defprim("flush-output", p_flush_output, 0, 1);
  defprim("current-output-port", p_current_output_port, 0, 0);
  defprim("current-input-port", p_current_input_port, 0, 0);
  defprim("current-error-port", p_current_error_port, 0, 0);
  defprim("port?", p_portp, 1, 1);
  defprim("input-port?", p_input_portp, 1, 1);
  defprim("output-port?", p_output_portp, 1, 1);
  defprim("file-exists?", p_file_existsp, 1, 1);
  defprim("delete-file", p_delete_file, 1, 1);
  defprim("ports-finalized", p_ports_finalized, 0, 0);
}
