/*
 * epoch.h - the sender's epoch, persisted and raised at every start
 * (protocol.md §5.2), so that a restarted sender's frames are newer than any
 * it sent before and receivers' replay marks never refuse it.
 */
#ifndef QKD_EPOCH_H
#define QKD_EPOCH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the epoch stored in path (a decimal number and a newline; a missing
 * file counts as 0), stores epoch + 1 durably (temporary file, fsync, rename,
 * fsync of the folder, mode 0600) and returns it in *epoch. Call once per
 * start, before the first frame, and again when the sequence number would wrap.
 * Returns 0, or -1 with err naming the file and the problem (unreadable,
 * not a number, at its maximum, cannot be written).
 */
int qkd_epoch_next(const char *path, uint32_t *epoch, char *err, size_t errlen);

#endif
