/*
 * config.h: settings read once from the environment by gc_init.
 *
 * Every MGC_* variable is described by one row of the table in config.c:
 * its name, how to parse it and the accepted forms.  A bad value is never
 * taken and never crashes: exactly one "mgc:" line names the variable, the
 * value, the accepted forms and the default, which stays.
 */
#ifndef MGC_CONFIG_H
#define MGC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/compiler.h"

struct mgc_config {
  int gogc;               /* MGC_GOGC: percent, < 0 = off */
  uint64_t memlimit;      /* MGC_MEMLIMIT: bytes, UINT64_MAX = none */
  int mark_workers;       /* MGC_MARK_WORKERS */
  bool mark_workers_set;  /* given in the environment */
  bool concurrent;        /* MGC_CONCURRENT */
  int trace;              /* MGC_TRACE: 0, 1 or 2 */
  bool verify;            /* MGC_VERIFY */
  int stop_signal;        /* MGC_STOP_SIGNAL */
};

extern MGC_HIDDEN struct mgc_config config;

/* Fill `config` from the environment (defaults first). */
void config_load(void);

/* Parsers, exposed for tests.  Each returns false on a bad value. */
bool config_parse_gogc(const char *s, int *out);
bool config_parse_bytes(const char *s, uint64_t *out);
bool config_parse_int(const char *s, long lo, long hi, long *out);
bool config_parse_signal(const char *s, int *out);
/* Can mgc stop threads with signal number sig? */
bool config_signal_is_usable(long sig);

#endif /* MGC_CONFIG_H */
