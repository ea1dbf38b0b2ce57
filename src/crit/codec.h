/* The text crit gives raw bytes: base64 as python's base64.encodebytes
 * writes it (lines of 76 characters, each ended by a newline), and, for
 * unix socket names, quoted-printable as python's quopri writes it. */
#ifndef STASIS_CRIT_CODEC_H
#define STASIS_CRIT_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Each returns a malloc'ed result (text NUL-terminated), its length in
 * *out_len; NULL when out of memory, or for a decoder, when the text is
 * not of its kind. */
char *base64_encode(const uint8_t *data, size_t len, size_t *out_len);
uint8_t *base64_decode(const char *text, size_t len, size_t *out_len);
char *qp_encode(const uint8_t *data, size_t len, size_t *out_len);
uint8_t *qp_decode(const char *text, size_t len, size_t *out_len);

#endif
