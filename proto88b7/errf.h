/*
 * errf.h - proto88b7's one way to report an error: format it into the
 * caller's buffer and return -1. Internal to the module.
 */
#ifndef QKD_ERRF_H
#define QKD_ERRF_H

#include <stddef.h>

/* Writes the message into err (if err and errlen); always returns -1. */
int qkd_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
