/*
 * secret.h - frame-authentication secrets, read from files.
 *
 * The whole content of the file is the secret (QKD_SECRET_MIN..QKD_SECRET_MAX
 * octets). The file must be a regular file that only its owner can read or
 * write (mode 0600 or stricter); a looser one is refused, naming the mode.
 */
#ifndef QKD_SECRET_H
#define QKD_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/*
 * Reads the secret in path into buf (cap >= QKD_SECRET_MAX), *len its size.
 * Returns 0, or -1 with err naming the file and what is wrong; buf is wiped
 * on failure. The caller wipes buf after use (OPENSSL_cleanse).
 */
int qkd_secret_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *err,
                    size_t errlen);

/* qkd_secret_read() then qkd_key_init(), wiping the secret copy in between. */
int qkd_key_load(struct qkd_key *key, const char *path, char *err, size_t errlen);

#endif
