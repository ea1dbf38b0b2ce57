#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crit/codec.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define B64_LINE_BYTES 57	/* 76 characters */

char *base64_encode(const uint8_t *data, size_t len, size_t *out_len)
{
	size_t lines = (len + B64_LINE_BYTES - 1) / B64_LINE_BYTES;
	char *out = malloc((len + 2) / 3 * 4 + lines + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = data[i] << 16 | (i + 1 < len ? data[i + 1] << 8 : 0) | (i + 2 < len ? data[i + 2] : 0);
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
		if ((i + 3) % B64_LINE_BYTES == 0 || i + 3 >= len)
			*o++ = '\n';
	}
	*o = 0;
	*out_len = o - out;
	return out;
}

/* As python's decodebytes: what is not of the alphabet (newlines) is
 * skipped; the text ends at its padding. */
uint8_t *base64_decode(const char *text, size_t len, size_t *out_len)
{
	uint8_t *out = malloc(len / 4 * 3 + 3), *o = out;
	uint32_t acc = 0;
	int bits = 0, chars = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len && text[i] != '='; i++) {
		const char *p = text[i] ? strchr(b64, text[i]) : NULL;
		if (!p)
			continue;
		acc = acc << 6 | (p - b64);
		bits += 6;
		chars++;
		if (bits >= 8) {
			bits -= 8;
			*o++ = acc >> bits;
		}
	}
	if (chars % 4 == 1) {	/* six bits: no byte */
		free(out);
		return NULL;
	}
	*out_len = o - out;
	return out;
}

/* ---- quoted-printable ---- */

#define QP_LINE 76

struct qp {
	char *out;
	size_t n, line;
	const char *nl;		/* the data's own line break */
};

static void qp_put(struct qp *q, const char *s)
{
	size_t n = strlen(s);
	memcpy(q->out + q->n, s, n);
	q->n += n;
}

static void qp_escape(struct qp *q, uint8_t c)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[4] = { '=', hex[c >> 4], hex[c & 15], 0 };
	qp_put(q, e);
}

/* The bytes that can't go as they are: the binary ones, '=', a space or
 * tab that would end the data, a '.' alone on a line. */
static bool qp_must_escape(const uint8_t *d, size_t len, size_t i, size_t line)
{
	uint8_t c = d[i];
	bool last = i + 1 == len;
	if (c > 126 || c == '=')
		return true;
	if (c == '.' && line == 0 && (last || d[i + 1] == '\n' || d[i + 1] == '\r' || d[i + 1] == 0))
		return true;
	if ((c == ' ' || c == '\t') && last)
		return true;
	return c < 33 && c != '\r' && c != '\n' && c != ' ' && c != '\t';
}

/* A line break of the data is kept (in its own style), a space or tab
 * before it escaped; long lines are broken with "=" + line break. */
char *qp_encode(const uint8_t *d, size_t len, size_t *out_len)
{
	const uint8_t *lf = len ? memchr(d, '\n', len) : NULL;
	struct qp q = { .out = malloc(len * 6 + 1), .nl = lf && lf > d && lf[-1] == '\r' ? "\r\n" : "\n" };

	if (!q.out)
		return NULL;
	for (size_t i = 0; i < len;) {
		if (qp_must_escape(d, len, i, q.line)) {
			if (q.line + 3 >= QP_LINE) {
				qp_put(&q, "=");
				qp_put(&q, q.nl);
				q.line = 0;
			}
			qp_escape(&q, d[i++]);
			q.line += 3;
		} else if (d[i] == '\n' || (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n')) {
			if (q.n && (q.out[q.n - 1] == ' ' || q.out[q.n - 1] == '\t'))
				qp_escape(&q, q.out[--q.n]);
			qp_put(&q, q.nl);
			q.line = 0;
			i += d[i] == '\r' ? 2 : 1;
		} else {
			if (i + 1 != len && d[i + 1] != '\n' && q.line + 1 >= QP_LINE) {
				qp_put(&q, "=");
				qp_put(&q, q.nl);
				q.line = 0;
			}
			q.out[q.n++] = d[i++];
			q.line++;
		}
	}
	q.out[q.n] = 0;
	*out_len = q.n;
	return q.out;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "=XX" is a byte, "=" and a line break nothing (a soft break); anything
 * else stands for itself. */
uint8_t *qp_decode(const char *t, size_t len, size_t *out_len)
{
	uint8_t *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (t[i] != '=') {
			*o++ = t[i];
		} else if (i + 1 < len && t[i + 1] == '\n') {
			i++;
		} else if (i + 2 < len && t[i + 1] == '\r' && t[i + 2] == '\n') {
			i += 2;
		} else if (i + 2 < len && hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0) {
			*o++ = hexval(t[i + 1]) << 4 | hexval(t[i + 2]);
			i += 2;
		} else {
			*o++ = '=';
		}
	}
	*out_len = o - out;
	return out;
}
