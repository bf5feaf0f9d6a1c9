/* SPDX-License-Identifier: MIT */
/*
 * MCAP (https://mcap.dev/spec) for `pbring record` and `pbring info`: the
 * writer (zstd chunks, message indexes, a summary for seeking readers) and
 * a reader of what `info` reports (the summary, or a scan of the records).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "mcap.h"

#define OP_HEADER 0x01
#define OP_FOOTER 0x02
#define OP_SCHEMA 0x03
#define OP_CHANNEL 0x04
#define OP_MESSAGE 0x05
#define OP_CHUNK 0x06
#define OP_MESSAGE_INDEX 0x07
#define OP_CHUNK_INDEX 0x08
#define OP_STATISTICS 0x0B
#define OP_SUMMARY_OFFSET 0x0E
#define OP_DATA_END 0x0F

#define ZSTD_LEVEL 1
#define MSG_FIXED 22 /* channel id, sequence, log and publish times */

static const uint8_t magic[8] = {0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'};

/* --- buffers ---------------------------------------------------------- */

static int buf_reserve(struct mcap_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	if (!(p = realloc(b->p, cap)))
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* The callers reserve first: these only store. */
static void put(struct mcap_buf *b, const void *p, size_t n)
{
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_le(struct mcap_buf *b, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct mcap_buf *b, const char *s)
{
	size_t n = strlen(s);

	put_le(b, n, 4);
	put(b, s, n);
}

/* A record's opcode and length, @body bytes to follow. */
static void put_op(struct mcap_buf *b, uint8_t op, uint64_t body)
{
	put_le(b, op, 1);
	put_le(b, body, 8);
}

/* --- writing ---------------------------------------------------------- */

static int w_write(struct mcap_writer *w, const void *p, size_t n)
{
	const uint8_t *c = p;
	ssize_t k;

	while (n && !w->err) {
		k = write(w->fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->err = k < 0 ? errno : EIO;
			break;
		}
		c += k;
		n -= (size_t)k;
		w->off += (uint64_t)k;
	}
	return -w->err;
}

/* Write w->rec and empty it. */
static int w_rec(struct mcap_writer *w)
{
	int rc = w_write(w, w->rec.p, w->rec.len);

	w->rec.len = 0;
	return rc;
}

int mcap_open(struct mcap_writer *w, const char *path, size_t chunk_target)
{
	memset(w, 0, sizeof(*w));
	w->chunk_target = chunk_target ? chunk_target : MCAP_CHUNK;
	w->start = UINT64_MAX;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0)
		return -errno;
	if (!(w->zctx = ZSTD_createCCtx())) {
		close(w->fd);
		return -ENOMEM;
	}
	return 0;
}

int mcap_add_channel(struct mcap_writer *w, const char *topic,
		     const char *schema_name, const void *schema,
		     size_t schema_len)
{
	struct mcap_channel *c = &w->ch[w->nch];

	if (w->nch == MCAP_CHANNELS)
		return -ENOSPC;
	memset(c, 0, sizeof(*c));
	c->id = (uint16_t)(w->nch + 1); /* schema id 0 means "none" */
	c->topic = topic;
	c->schema_name = schema_name;
	c->schema = schema;
	c->schema_len = schema_len;
	return (int)w->nch++;
}

static void put_schema(struct mcap_buf *b, const struct mcap_channel *c)
{
	put_op(b, OP_SCHEMA,
	       2 + 4 + strlen(c->schema_name) + 4 + 8 + 4 + c->schema_len);
	put_le(b, c->id, 2);
	put_str(b, c->schema_name);
	put_str(b, "protobuf");
	put_le(b, c->schema_len, 4);
	put(b, c->schema, c->schema_len);
}

static void put_channel(struct mcap_buf *b, const struct mcap_channel *c)
{
	put_op(b, OP_CHANNEL, 2 + 2 + 4 + strlen(c->topic) + 4 + 8 + 4);
	put_le(b, c->id, 2);
	put_le(b, c->id, 2); /* its schema */
	put_str(b, c->topic);
	put_str(b, "protobuf");
	put_le(b, 0, 4); /* no metadata */
}

/* Reserve w->rec for a channel's schema and channel records. */
static int reserve_channel(struct mcap_writer *w, const struct mcap_channel *c)
{
	return buf_reserve(&w->rec, 128 + strlen(c->schema_name) +
					    c->schema_len + strlen(c->topic));
}

int mcap_begin(struct mcap_writer *w)
{
	unsigned i;
	int rc;

	if ((rc = buf_reserve(&w->rec, 64)))
		return rc;
	put(&w->rec, magic, sizeof(magic));
	put_op(&w->rec, OP_HEADER, 4 + 4 + 6);
	put_str(&w->rec, ""); /* profile */
	put_str(&w->rec, "pbring");
	for (i = 0; i < w->nch && !rc; i++) {
		if ((rc = w_rec(w)) || (rc = reserve_channel(w, &w->ch[i])))
			break;
		put_schema(&w->rec, &w->ch[i]);
		put_channel(&w->rec, &w->ch[i]);
	}
	if (!rc)
		rc = w_rec(w);
	if (!rc)
		w->good = w->off;
	return rc;
}

size_t mcap_pending(const struct mcap_writer *w)
{
	return w->chunk.len;
}

uint64_t mcap_tail(const struct mcap_writer *w)
{
	uint64_t n = 512 + w->chunk_idx.len + 128 * (uint64_t)(w->chunks + 1);
	unsigned i;

	for (i = 0; i < w->nch; i++)
		n += 256 + strlen(w->ch[i].schema_name) + w->ch[i].schema_len +
		     strlen(w->ch[i].topic) + w->ch[i].index.len;
	/* a chunk's compression may add a little to what it holds */
	return n + ZSTD_compressBound(w->chunk.len) - w->chunk.len;
}

int mcap_message(struct mcap_writer *w, unsigned ch, uint32_t seq,
		 uint64_t log_time, const void *data, size_t len)
{
	struct mcap_channel *c = &w->ch[ch];
	int rc;

	if (w->chunk.len >= w->chunk_target && (rc = mcap_flush(w)))
		return rc;
	if ((rc = buf_reserve(&w->chunk, 9 + MSG_FIXED + len)) ||
	    (rc = buf_reserve(&c->index, 16)))
		return rc;
	if (!w->chunk.len)
		w->chunk_start = w->chunk_end = log_time;
	put_le(&c->index, log_time, 8);
	put_le(&c->index, w->chunk.len, 8);
	put_op(&w->chunk, OP_MESSAGE, MSG_FIXED + len);
	put_le(&w->chunk, c->id, 2);
	put_le(&w->chunk, seq, 4);
	put_le(&w->chunk, log_time, 8);
	put_le(&w->chunk, log_time, 8); /* publish time */
	put(&w->chunk, data, len);
	if (log_time < w->chunk_start)
		w->chunk_start = log_time;
	if (log_time > w->chunk_end)
		w->chunk_end = log_time;
	c->count++;
	w->messages++;
	return 0;
}

/* The message index records of the chunk just written, one per channel
 * with messages in it; returns their total length. */
static uint64_t write_indexes(struct mcap_writer *w, unsigned *n)
{
	uint64_t from = w->off;
	unsigned i;

	*n = 0;
	for (i = 0; i < w->nch; i++) {
		struct mcap_channel *c = &w->ch[i];

		if (!c->index.len)
			continue;
		if (buf_reserve(&w->rec, 32)) {
			w->err = w->err ? w->err : ENOMEM;
			return 0;
		}
		c->index_offset = w->off;
		put_op(&w->rec, OP_MESSAGE_INDEX, 2 + 4 + c->index.len);
		put_le(&w->rec, c->id, 2);
		put_le(&w->rec, c->index.len, 4);
		w_rec(w);
		w_write(w, c->index.p, c->index.len);
		(*n)++;
	}
	return w->off - from;
}

/* The chunk index of the chunk just written, kept for the summary. */
static int add_chunk_index(struct mcap_writer *w, uint64_t at, uint64_t len,
			   uint64_t zlen, unsigned nidx, uint64_t idx_len)
{
	struct mcap_buf *b = &w->chunk_idx;
	unsigned i;

	if (buf_reserve(b, 128 + 10 * (size_t)nidx))
		return -ENOMEM;
	put_op(b, OP_CHUNK_INDEX, 8 * 4 + 4 + 10 * nidx + 8 + 8 + 8 + 8);
	put_le(b, w->chunk_start, 8);
	put_le(b, w->chunk_end, 8);
	put_le(b, at, 8);
	put_le(b, len, 8);
	put_le(b, (uint64_t)10 * nidx, 4);
	for (i = 0; i < w->nch; i++) {
		if (!w->ch[i].index.len)
			continue;
		put_le(b, w->ch[i].id, 2);
		put_le(b, w->ch[i].index_offset, 8);
	}
	put_le(b, idx_len, 8);
	put_str(b, "zstd");
	put_le(b, zlen, 8);
	put_le(b, w->chunk.len, 8);
	return 0;
}

/* Compress the chunk in hand into w->zbuf: its length, or 0. */
static size_t compress_chunk(struct mcap_writer *w)
{
	size_t bound = ZSTD_compressBound(w->chunk.len), n;

	w->zbuf.len = 0;
	if (buf_reserve(&w->zbuf, bound))
		return 0;
	n = ZSTD_compressCCtx(w->zctx, w->zbuf.p, bound, w->chunk.p,
			      w->chunk.len, ZSTD_LEVEL);
	return ZSTD_isError(n) ? 0 : n;
}

static void chunk_reset(struct mcap_writer *w)
{
	unsigned i;

	w->chunk.len = 0;
	for (i = 0; i < w->nch; i++)
		w->ch[i].index.len = 0;
	w->chunk_start = w->chunk_end = 0;
}

int mcap_flush(struct mcap_writer *w)
{
	uint64_t at = w->off, idx_len;
	size_t zlen;
	unsigned nidx;

	if (!w->chunk.len || w->err)
		return -w->err;
	if (w->chunk_start < w->start)
		w->start = w->chunk_start;
	if (w->chunk_end > w->end)
		w->end = w->chunk_end;
	if (!(zlen = compress_chunk(w)) || buf_reserve(&w->rec, 64))
		return -(w->err = ENOMEM);
	put_op(&w->rec, OP_CHUNK, 8 + 8 + 8 + 4 + 4 + 4 + 8 + zlen);
	put_le(&w->rec, w->chunk_start, 8);
	put_le(&w->rec, w->chunk_end, 8);
	put_le(&w->rec, w->chunk.len, 8);
	put_le(&w->rec, 0, 4); /* uncompressed crc: not computed */
	put_str(&w->rec, "zstd");
	put_le(&w->rec, zlen, 8);
	w_rec(w);
	w_write(w, w->zbuf.p, zlen);
	idx_len = write_indexes(w, &nidx);
	if (!w->err &&
	    add_chunk_index(w, at, idx_len ? w->off - idx_len - at : 0, zlen,
			    nidx, idx_len))
		w->err = ENOMEM;
	if (w->err)
		return -w->err;
	w->chunks++;
	w->good = w->off;
	for (nidx = 0; nidx < w->nch; nidx++)
		w->ch[nidx].good_count = w->ch[nidx].count;
	chunk_reset(w);
	return 0;
}

/* A summary group: @op's records, already in w->rec; noted in *g. */
struct group {
	uint8_t op;
	uint64_t start, len;
};

static void write_group(struct mcap_writer *w, struct group *g, uint8_t op,
			const struct mcap_buf *b)
{
	g->op = op;
	g->start = w->off;
	if (b)
		w_write(w, b->p, b->len);
	else
		w_rec(w);
	g->len = w->off - g->start;
}

static int put_statistics(struct mcap_writer *w)
{
	struct mcap_buf *b = &w->rec;
	unsigned i;

	if (buf_reserve(b, 128 + 10 * (size_t)w->nch))
		return -ENOMEM;
	put_op(b, OP_STATISTICS, 8 + 2 + 4 * 4 + 8 + 8 + 4 + 10 * w->nch);
	put_le(b, w->messages, 8);
	put_le(b, w->nch, 2); /* schemas: one per channel */
	put_le(b, w->nch, 4);
	put_le(b, 0, 4); /* attachments */
	put_le(b, 0, 4); /* metadata */
	put_le(b, w->chunks, 4);
	put_le(b, w->messages ? w->start : 0, 8);
	put_le(b, w->end, 8);
	put_le(b, (uint64_t)10 * w->nch, 4);
	for (i = 0; i < w->nch; i++) {
		put_le(b, w->ch[i].id, 2);
		put_le(b, w->ch[i].count, 8);
	}
	return 0;
}

/* DataEnd, then the footer (summary at @summary, its offsets at @offsets;
 * 0 for none) and the closing magic. */
static void write_end(struct mcap_writer *w, uint64_t summary, uint64_t offsets)
{
	if (buf_reserve(&w->rec, 64)) {
		w->err = ENOMEM;
		return;
	}
	put_op(&w->rec, OP_FOOTER, 8 + 8 + 4);
	put_le(&w->rec, summary, 8);
	put_le(&w->rec, offsets, 8);
	put_le(&w->rec, 0, 4); /* summary crc: not computed */
	put(&w->rec, magic, sizeof(magic));
	w_rec(w);
}

static void write_summary(struct mcap_writer *w)
{
	struct group g[4];
	uint64_t summary, offsets;
	unsigned i, n = 0;

	summary = w->off;
	for (i = 0; i < w->nch && !reserve_channel(w, &w->ch[i]); i++)
		put_schema(&w->rec, &w->ch[i]);
	write_group(w, &g[n++], OP_SCHEMA, NULL);
	for (i = 0; i < w->nch && !reserve_channel(w, &w->ch[i]); i++)
		put_channel(&w->rec, &w->ch[i]);
	write_group(w, &g[n++], OP_CHANNEL, NULL);
	if (put_statistics(w))
		w->err = ENOMEM;
	write_group(w, &g[n++], OP_STATISTICS, NULL);
	if (w->chunks)
		write_group(w, &g[n++], OP_CHUNK_INDEX, &w->chunk_idx);
	offsets = w->off;
	if (buf_reserve(&w->rec, (size_t)32 * n))
		w->err = w->err ? w->err : ENOMEM;
	for (i = 0; i < n && !w->err; i++) {
		put_op(&w->rec, OP_SUMMARY_OFFSET, 1 + 8 + 8);
		put_le(&w->rec, g[i].op, 1);
		put_le(&w->rec, g[i].start, 8);
		put_le(&w->rec, g[i].len, 8);
	}
	w_rec(w);
	write_end(w, summary, offsets);
}

static void write_data_end(struct mcap_writer *w)
{
	if (buf_reserve(&w->rec, 16)) {
		w->err = ENOMEM;
		return;
	}
	put_op(&w->rec, OP_DATA_END, 4);
	put_le(&w->rec, 0, 4); /* data section crc: not computed */
	w_rec(w);
}

/* After a write error: cut the file back to its last complete chunk and
 * end it there with DataEnd and a footer without summary, if it fits. */
static void close_cut(struct mcap_writer *w)
{
	/* Not even the magic and header made it: leave an empty file, not
	 * one that starts with a footer. */
	if (w->good < 8) {
		w->off = ftruncate(w->fd, 0) ? w->off : 0;
		return;
	}
	if (ftruncate(w->fd, (off_t)w->good) ||
	    lseek(w->fd, (off_t)w->good, SEEK_SET) < 0)
		return;
	w->off = w->good;
	w->err = 0;
	w->rec.len = 0;
	write_data_end(w);
	write_end(w, 0, 0);
	if (w->err && ftruncate(w->fd, (off_t)w->good))
		return; /* a file cut at a chunk: readers scan it */
}

static void free_bufs(struct mcap_writer *w)
{
	unsigned i;

	free(w->chunk.p);
	free(w->zbuf.p);
	free(w->rec.p);
	free(w->chunk_idx.p);
	for (i = 0; i < w->nch; i++)
		free(w->ch[i].index.p);
	ZSTD_freeCCtx(w->zctx);
}

int mcap_close(struct mcap_writer *w)
{
	int err;

	mcap_flush(w);
	if (!w->err)
		write_data_end(w);
	if (!w->err)
		write_summary(w);
	err = w->err;
	if (err)
		close_cut(w);
	if (close(w->fd) && !err)
		err = errno;
	free_bufs(w);
	return -err;
}

/* --- reading ---------------------------------------------------------- */

/* A cursor over a record body; bad is set when it runs past the end. */
struct rd {
	const uint8_t *p;
	uint64_t n, i;
	bool bad;
};

static uint64_t get_le(struct rd *r, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	if (r->bad || r->n - r->i < n) {
		r->bad = true;
		return 0;
	}
	for (i = 0; i < n; i++)
		v |= (uint64_t)r->p[r->i + i] << (8 * i);
	r->i += n;
	return v;
}

/* Pass over @n bytes (fields info does not show). */
static void skip(struct rd *r, uint64_t n)
{
	if (r->bad || r->n - r->i < n)
		r->bad = true;
	else
		r->i += n;
}

/* A u32-prefixed string into @out (cut to fit), or skipped if NULL. */
static void get_str(struct rd *r, char *out, size_t cap)
{
	uint64_t n = get_le(r, 4);

	if (r->bad || r->n - r->i < n) {
		r->bad = true;
		return;
	}
	if (out)
		snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1),
			 (const char *)r->p + r->i);
	r->i += n;
}

static int chan_index(struct mcap_info *in, uint16_t id, bool add)
{
	unsigned i;

	for (i = 0; i < in->nch; i++)
		if (in->ch[i].id == id)
			return (int)i;
	if (!add || in->nch == MCAP_CHANNELS)
		return -1;
	memset(&in->ch[in->nch], 0, sizeof(in->ch[0]));
	in->ch[in->nch].id = id;
	return (int)in->nch++;
}

/* Schema names by id, as the records come; set on the channels at the
 * end. */
struct schemas {
	unsigned n;
	struct {
		uint16_t id;
		char name[256];
	} s[MCAP_CHANNELS];
};

static void on_schema(struct schemas *sc, struct rd *r)
{
	uint16_t id = (uint16_t)get_le(r, 2);

	if (sc->n == MCAP_CHANNELS)
		return;
	sc->s[sc->n].id = id;
	get_str(r, sc->s[sc->n].name, sizeof(sc->s[0].name));
	if (!r->bad)
		sc->n++;
}

static void on_channel(struct mcap_info *in, struct rd *r)
{
	uint16_t id = (uint16_t)get_le(r, 2);
	int k;

	if (r->bad || (k = chan_index(in, id, true)) < 0)
		return;
	in->ch[k].schema_id = (uint16_t)get_le(r, 2);
	get_str(r, in->ch[k].topic, sizeof(in->ch[k].topic));
}

static void on_statistics(struct mcap_info *in, struct rd *r)
{
	uint64_t n, end;
	int k;

	in->summary = true; /* the counts come from here */
	in->messages = get_le(r, 8);
	get_le(r, 2);
	get_le(r, 4);
	get_le(r, 4);
	get_le(r, 4);
	in->chunks = (uint32_t)get_le(r, 4);
	in->start = get_le(r, 8);
	in->end = get_le(r, 8);
	n = get_le(r, 4);
	end = r->i + n;
	while (!r->bad && r->i + 10 <= end) {
		k = chan_index(in, (uint16_t)get_le(r, 2), true);
		n = get_le(r, 8);
		if (k >= 0)
			in->ch[k].count = n;
	}
}

static void on_chunk_index(struct mcap_info *in, struct rd *r)
{
	uint64_t n;

	skip(r, (uint64_t)8 * 4);
	n = get_le(r, 4);
	if (r->bad || r->n - r->i < n) {
		r->bad = true;
		return;
	}
	r->i += n;
	get_le(r, 8);
	get_str(r, in->compression, sizeof(in->compression));
}

/* One message seen in a scan. */
static void on_message(struct mcap_info *in, struct rd *r)
{
	int k = chan_index(in, (uint16_t)get_le(r, 2), true);
	uint64_t t;

	get_le(r, 4);
	t = get_le(r, 8);
	if (r->bad)
		return;
	if (k >= 0)
		in->ch[k].count++;
	if (!in->messages++ || t < in->start)
		in->start = t;
	if (t > in->end)
		in->end = t;
}

/* The records in @p (@n bytes); @scan: a chunk's or the data section's
 * (messages count), else the summary's. -EBADMSG if one is cut. */
static int walk(struct mcap_info *in, struct schemas *sc, const uint8_t *p,
		uint64_t n);

/* NOLINTNEXTLINE(misc-no-recursion): a chunk in a chunk is refused */
static int on_chunk(struct mcap_info *in, struct schemas *sc, struct rd *r)
{
	uint64_t usize, zsize;
	size_t got;
	void *u;
	int rc;

	skip(r, 16);
	usize = get_le(r, 8);
	skip(r, 4);
	get_str(r, in->compression, sizeof(in->compression));
	zsize = get_le(r, 8);
	/* A chunk holds Schema, Channel and Message records only (a nested
	 * one would recurse without bound), and no more than a chunk of
	 * ours can: a few bytes of zstd must not make us fill gigabytes. */
	if (r->bad || r->n - r->i < zsize || usize > MCAP_CHUNK_READ_MAX ||
	    in->no_chunks)
		return -EBADMSG;
	in->chunks++;
	if (strcmp(in->compression, "zstd") && in->compression[0])
		return 0; /* counted, not read */
	in->no_chunks = true;
	if (!in->compression[0]) {
		rc = walk(in, sc, r->p + r->i, zsize);
	} else if (!(u = malloc(usize ? usize : 1))) {
		rc = -ENOMEM;
	} else {
		got = ZSTD_decompress(u, usize, r->p + r->i, zsize);
		rc = ZSTD_isError(got) || got != usize ? -EBADMSG
						       : walk(in, sc, u, usize);
		free(u);
	}
	in->no_chunks = false;
	return rc;
}

/* NOLINTNEXTLINE(misc-no-recursion): a chunk in a chunk is refused */
static int on_record(struct mcap_info *in, struct schemas *sc, uint8_t op,
		     struct rd *r)
{
	switch (op) {
	case OP_SCHEMA:
		on_schema(sc, r);
		break;
	case OP_CHANNEL:
		on_channel(in, r);
		break;
	case OP_MESSAGE:
		on_message(in, r);
		break;
	case OP_CHUNK:
		return on_chunk(in, sc, r);
	case OP_STATISTICS:
		on_statistics(in, r);
		break;
	case OP_CHUNK_INDEX:
		on_chunk_index(in, r);
		break;
	}
	return r->bad ? -EBADMSG : 0;
}

/* NOLINTNEXTLINE(misc-no-recursion): a chunk in a chunk is refused */
static int walk(struct mcap_info *in, struct schemas *sc, const uint8_t *p,
		uint64_t n)
{
	struct rd r;
	uint64_t i = 0, len;
	int rc;

	while (i < n) {
		if (n - i < 9)
			return -EBADMSG;
		memcpy(&len, p + i + 1, 8); /* little-endian hosts */
		if (n - i - 9 < len)
			return -EBADMSG;
		r = (struct rd){.p = p + i + 9, .n = len};
		if ((rc = on_record(in, sc, p[i], &r)))
			return rc;
		i += 9 + len;
	}
	return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t at)
{
	ssize_t k;
	size_t got = 0;

	while (got < n) {
		k = pread(fd, (char *)p + got, n - got, (off_t)(at + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EBADMSG;
		got += (size_t)k;
	}
	return 0;
}

static void name_schemas(struct mcap_info *in, const struct schemas *sc)
{
	unsigned i, k;

	for (i = 0; i < in->nch; i++)
		for (k = 0; k < sc->n; k++)
			if (sc->s[k].id == in->ch[i].schema_id)
				snprintf(in->ch[i].schema,
					 sizeof(in->ch[i].schema), "%s",
					 sc->s[k].name);
}

/* The summary section, [from, to): 0, or -EBADMSG. */
static int read_summary(int fd, struct mcap_info *in, uint64_t from,
			uint64_t to)
{
	static struct schemas sc;
	uint8_t *p;
	int rc;

	if (from < 8 || to < from || to - from > (1ull << 30))
		return -EBADMSG;
	if (!(p = malloc(to - from + 1)))
		return -ENOMEM;
	memset(&sc, 0, sizeof(sc));
	rc = pread_all(fd, p, to - from, from);
	in->no_chunks = true; /* a summary holds no chunks */
	if (!rc)
		rc = walk(in, &sc, p, to - from);
	in->no_chunks = false;
	free(p);
	name_schemas(in, &sc);
	if (!rc && !in->summary)
		rc = -EBADMSG; /* no Statistics: scan for the counts */
	return rc;
}

/* The records of the data section that a scan reads. */
static bool data_record(uint8_t op)
{
	return op == OP_SCHEMA || op == OP_CHANNEL || op == OP_MESSAGE ||
	       op == OP_CHUNK;
}

/* Scan the records from after the magic; stop at the footer, or where
 * the file is cut (info->truncated, info->readable). */
static int scan(int fd, struct mcap_info *in)
{
	static struct schemas sc;
	uint64_t at = 8, len;
	uint8_t hdr[9], *p = NULL;
	int rc = 0;

	memset(&sc, 0, sizeof(sc));
	while (!rc) {
		if (at + 9 > in->size || pread_all(fd, hdr, 9, at))
			break;
		memcpy(&len, hdr + 1, 8);
		if (len > in->size - at - 9)
			break;
		/* DataEnd: every message is counted; what follows is the
		 * summary, whose Statistics would count them again */
		if (hdr[0] == OP_FOOTER || hdr[0] == OP_DATA_END) {
			in->readable = in->size;
			free(p);
			name_schemas(in, &sc);
			return 0;
		}
		if (!data_record(hdr[0])) { /* attachments, indexes, ... */
			at += 9 + len;
			continue;
		}
		free(p);
		if (!(p = malloc(len + 1)))
			return -ENOMEM;
		if (!(rc = pread_all(fd, p, len, at + 9)))
			rc = on_record(in, &sc, hdr[0],
				       &(struct rd){.p = p, .n = len});
		if (!rc)
			at += 9 + len;
	}
	free(p);
	name_schemas(in, &sc);
	in->truncated = true;
	in->readable = at;
	return rc;
}

/* The footer's summary start, if the file ends with one, else 0. */
static uint64_t footer_summary(int fd, const struct mcap_info *in,
			       uint64_t *footer_at)
{
	uint8_t t[9 + 20 + 8];
	uint64_t len, summary;

	if (in->size < 8 + sizeof(t) ||
	    pread_all(fd, t, sizeof(t), in->size - sizeof(t)) ||
	    memcmp(t + 29, magic, 8) || t[0] != OP_FOOTER)
		return 0;
	memcpy(&len, t + 1, 8);
	memcpy(&summary, t + 9, 8);
	*footer_at = in->size - sizeof(t);
	return len == 20 && summary < *footer_at ? summary : 0;
}

int mcap_read_info(const char *path, struct mcap_info *in)
{
	uint8_t head[8];
	uint64_t summary, footer_at = 0;
	struct stat st;
	int fd, rc;

	memset(in, 0, sizeof(*in));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EPROTO;
	}
	in->size = (uint64_t)st.st_size;
	if (in->size < 8 || pread_all(fd, head, 8, 0) ||
	    memcmp(head, magic, 8)) {
		close(fd);
		return -EPROTO;
	}
	summary = footer_summary(fd, in, &footer_at);
	rc = summary ? read_summary(fd, in, summary, footer_at) : -EBADMSG;
	if (rc) {
		memset(in, 0, sizeof(*in));
		in->size = (uint64_t)st.st_size;
		rc = scan(fd, in);
	}
	close(fd);
	return rc;
}

/* --- reading messages ------------------------------------------------- */

int mcap_reader_open(struct mcap_reader *r, const char *path)
{
	uint8_t head[8];
	struct stat st;

	memset(r, 0, sizeof(*r));
	if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno; /* fd -1: closing it is a no-op */
	if (fstat(r->fd, &st) || !S_ISREG(st.st_mode)) {
		close(r->fd);
		r->fd = -1;
		return S_ISDIR(st.st_mode) ? -EISDIR : -EPROTO;
	}
	r->size = (uint64_t)st.st_size;
	if (r->size < 8 || pread_all(r->fd, head, 8, 0) ||
	    memcmp(head, magic, 8)) {
		close(r->fd);
		r->fd = -1;
		return -EPROTO;
	}
	r->at = 8;
	return 0;
}

int mcap_reader_rewind(struct mcap_reader *r)
{
	unsigned i;

	r->at = 8;
	r->nent = r->ient = 0;
	r->messages = 0;
	r->err = 0;
	r->ended = false;
	for (i = 0; i < r->nch; i++)
		r->ch[i].last = 0;
	return 0;
}

void mcap_reader_close(struct mcap_reader *r)
{
	unsigned i;

	for (i = 0; i < r->nschema; i++)
		free(r->schema[i].data);
	free(r->rec.p);
	free(r->chunk.p);
	free(r->ent);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

const struct mcap_rschema *mcap_reader_schema(const struct mcap_reader *r,
					      unsigned ch)
{
	unsigned i;

	for (i = 0; i < r->nschema && r->ch[ch].schema_id; i++)
		if (r->schema[i].id == r->ch[ch].schema_id)
			return &r->schema[i];
	return NULL;
}

/* A Schema record (the first of an id counts; repeats are the same). */
static int r_schema(struct mcap_reader *r, struct rd *d)
{
	struct mcap_rschema *s = &r->schema[r->nschema];
	uint16_t id = (uint16_t)get_le(d, 2);
	uint64_t n;
	unsigned i;

	for (i = 0; i < r->nschema; i++)
		if (r->schema[i].id == id)
			return 0;
	if (r->nschema == MCAP_CHANNELS)
		return -ENOSPC;
	get_str(d, s->name, sizeof(s->name));
	get_str(d, s->encoding, sizeof(s->encoding));
	n = get_le(d, 4);
	if (d->bad || d->n - d->i < n)
		return -EBADMSG;
	if (!(s->data = malloc(n ? n : 1)))
		return -ENOMEM;
	memcpy(s->data, d->p + d->i, n);
	s->len = n;
	s->id = id;
	r->nschema++;
	return 0;
}

/* A Channel record (the first of an id counts). */
static int r_channel(struct mcap_reader *r, struct rd *d)
{
	struct mcap_rchannel *c = &r->ch[r->nch];
	uint16_t id = (uint16_t)get_le(d, 2);
	unsigned i;

	for (i = 0; i < r->nch; i++)
		if (r->ch[i].id == id)
			return 0;
	if (r->nch == MCAP_CHANNELS)
		return -ENOSPC;
	memset(c, 0, sizeof(*c));
	c->schema_id = (uint16_t)get_le(d, 2);
	get_str(d, c->topic, sizeof(c->topic));
	get_str(d, c->encoding, sizeof(c->encoding));
	if (d->bad)
		return -EBADMSG;
	c->id = id;
	r->nch++;
	return 0;
}

/* Parse a Message record's body into *m (channel known, merge key set
 * by the caller): 0 or -EBADMSG. */
static int r_message(struct mcap_reader *r, const uint8_t *p, uint64_t n,
		     struct mcap_msg *m)
{
	struct rd d = {.p = p, .n = n};
	uint16_t id = (uint16_t)get_le(&d, 2);
	unsigned i;

	m->seq = (uint32_t)get_le(&d, 4);
	m->log_time = get_le(&d, 8);
	get_le(&d, 8); /* publish time */
	if (d.bad)
		return -EBADMSG;
	for (i = 0; i < r->nch && r->ch[i].id != id; i++)
		;
	if (i == r->nch)
		return -EBADMSG; /* on a channel not defined before it */
	m->ch = i;
	m->data = p + d.i;
	m->len = (size_t)(n - d.i);
	return 0;
}

/* The merge key of a message of channel @ch at @t (see mcap.h). */
static uint64_t merge_time(struct mcap_reader *r, unsigned ch, uint64_t t)
{
	if (t > r->ch[ch].last)
		r->ch[ch].last = t;
	return r->ch[ch].last;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct mcap_entry *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Already in order (one channel, or channels recorded in time order):
 * no sort to spend time on while a replay waits for the next message. */
static bool ent_sorted(const struct mcap_reader *r)
{
	size_t i;

	for (i = 1; i < r->nent; i++)
		if (r->ent[i].time < r->ent[i - 1].time)
			return false;
	return true;
}

static int ent_add(struct mcap_reader *r, uint64_t time, uint64_t off)
{
	struct mcap_entry *e;
	size_t cap;

	if (r->nent == r->capent) {
		cap = r->capent ? 2 * r->capent : 4096;
		if (!(e = realloc(r->ent, cap * sizeof(*e))))
			return -ENOMEM;
		r->ent = e;
		r->capent = cap;
	}
	r->ent[r->nent++] = (struct mcap_entry){time, off};
	return 0;
}

/* The records of the chunk unpacked in r->chunk: schemas and channels
 * noted, messages listed in r->ent and merged by time. */
static int r_chunk_records(struct mcap_reader *r)
{
	const uint8_t *p = r->chunk.p;
	uint64_t i = 0, n = r->chunk.len, len;
	struct mcap_msg m;
	struct rd d;
	int rc = 0;

	r->nent = r->ient = 0;
	while (i < n && !rc) {
		if (n - i < 9)
			return -EBADMSG;
		memcpy(&len, p + i + 1, 8);
		if (n - i - 9 < len)
			return -EBADMSG;
		d = (struct rd){.p = p + i + 9, .n = len};
		if (p[i] == OP_SCHEMA)
			rc = r_schema(r, &d);
		else if (p[i] == OP_CHANNEL)
			rc = r_channel(r, &d);
		else if (p[i] == OP_MESSAGE &&
			 !(rc = r_message(r, p + i + 9, len, &m)))
			rc = ent_add(r, merge_time(r, m.ch, m.log_time), i);
		else if (p[i] == OP_CHUNK)
			rc = -EBADMSG; /* none may nest */
		i += 9 + len;
	}
	if (!rc && !ent_sorted(r))
		qsort(r->ent, r->nent, sizeof(*r->ent), ent_cmp);
	return rc;
}

/* A Chunk record's body (in r->rec): unpack it and list its messages. */
static int r_chunk(struct mcap_reader *r)
{
	struct rd d = {.p = r->rec.p, .n = r->rec.len};
	char comp[16] = "";
	uint64_t usize, zsize;
	size_t got;

	skip(&d, 16);
	usize = get_le(&d, 8);
	skip(&d, 4);
	get_str(&d, comp, sizeof(comp));
	zsize = get_le(&d, 8);
	if (d.bad || d.n - d.i < zsize || usize > MCAP_CHUNK_READ_MAX)
		return -EBADMSG;
	if (comp[0] && strcmp(comp, "zstd"))
		return -ENOTSUP;
	r->chunk.len = 0;
	if (buf_reserve(&r->chunk, comp[0] ? usize : zsize))
		return -ENOMEM;
	if (!comp[0]) {
		put(&r->chunk, d.p + d.i, zsize);
		return r_chunk_records(r);
	}
	got = ZSTD_decompress(r->chunk.p, usize, d.p + d.i, zsize);
	if (ZSTD_isError(got) || got != usize)
		return -EBADMSG;
	r->chunk.len = got;
	return r_chunk_records(r);
}

/* The records whose bodies the reader needs. */
static bool r_wanted(uint8_t op)
{
	return op == OP_SCHEMA || op == OP_CHANNEL || op == OP_MESSAGE ||
	       op == OP_CHUNK;
}

/* Read the record at r->at (its body into r->rec if wanted): its opcode,
 * or -EPIPE (the file ends in it, or before a footer), -EBADMSG, -EIO. */
static int r_record(struct mcap_reader *r)
{
	uint8_t hdr[9];
	uint64_t len;
	int rc;

	if (r->size - r->at < 9 || pread_all(r->fd, hdr, 9, r->at))
		return -EPIPE;
	memcpy(&len, hdr + 1, 8);
	if (len > r->size - r->at - 9)
		return -EPIPE;
	if (r_wanted(hdr[0])) {
		if (len > MCAP_CHUNK_READ_MAX + 4096)
			return -EBADMSG;
		r->rec.len = 0;
		if (buf_reserve(&r->rec, len + 1))
			return -ENOMEM;
		if ((rc = pread_all(r->fd, r->rec.p, len, r->at + 9)))
			return rc == -EBADMSG ? -EPIPE : -EIO;
		r->rec.len = len;
	}
	r->at += 9 + len;
	return hdr[0];
}

/* One record of the data section: 1 with a top-level message in *m, 0
 * (read on), or a negative error. */
static int r_step(struct mcap_reader *r, struct mcap_msg *m)
{
	int op = r_record(r), rc;
	struct rd d;

	if (op < 0)
		return op;
	d = (struct rd){.p = r->rec.p, .n = r->rec.len};
	switch (op) {
	case OP_DATA_END:
	case OP_FOOTER:
		r->ended = true;
		return 0;
	case OP_SCHEMA:
		return r_schema(r, &d);
	case OP_CHANNEL:
		return r_channel(r, &d);
	case OP_CHUNK:
		return r_chunk(r);
	case OP_MESSAGE:
		if ((rc = r_message(r, r->rec.p, r->rec.len, m)))
			return rc;
		m->time = merge_time(r, m->ch, m->log_time);
		return 1;
	}
	return 0; /* indexes, attachments, metadata, ...: not needed */
}

int mcap_reader_next(struct mcap_reader *r, struct mcap_msg *m)
{
	const struct mcap_entry *e;
	uint64_t len;
	int rc;

	while (!r->err) {
		if (r->ient < r->nent) {
			e = &r->ent[r->ient++];
			memcpy(&len, r->chunk.p + e->off + 1, 8);
			/* parsed once already, when listed: cannot fail */
			if ((rc = r_message(r, r->chunk.p + e->off + 9, len,
					    m))) {
				r->err = rc;
				break;
			}
			m->time = e->time;
			r->messages++;
			return 1;
		}
		if (r->ended)
			return 0;
		if ((rc = r_step(r, m)) < 0)
			r->err = rc;
		else if (rc > 0) {
			r->messages++;
			return 1;
		}
	}
	return r->err;
}
