/*
 * ghostswap-replay: perform a ghostswap event stream on the real kernel.
 *
 * Input: an events file written by ghostswap.calibrate.replayer (header
 * "GSREPLAY", version 2, fill kind, flags (none yet), text pool length,
 * record count; then the text pool; then packed records of pid u32, op u8,
 * npages u32, page u64 — numpy's EVENT_DTYPE). One process: events of
 * other pids are refused when the file is written.
 *
 * Pages get contents of the requested compressibility, stamped with their
 * page number and write version in the first 16 bytes (the stamp is never
 * zero, so a "zero" fill keeps only the stamp-free pages zero: see below).
 * A text page is a window of the model's own text pool, so that zswap and
 * zram compress it as the model does.
 * Every read verifies the stamp; the exit status is 3 when any mismatched.
 *
 * Output (stdout, one line each): "events N", "mismatches N", "seconds S".
 * With a second argument DUMP, the pages of every region are written to
 * that file at the end, in mapping order (for tests of the contents).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

enum {
	OP_READ, OP_WRITE, OP_FREE, OP_MAP, OP_UNMAP, OP_FORK, OP_EXIT, OP_PAGEOUT,
	OP_HUGEPAGE, OP_NOHUGEPAGE,
};
enum { FILL_ZERO, FILL_RANDOM, FILL_HALF, FILL_TEXT };
#define PAGE 4096ul
#define REGION_ALIGN (2ul << 20)

struct __attribute__((packed)) event {
	uint32_t pid;
	uint8_t op;
	uint32_t npages;
	uint64_t page;
};

struct __attribute__((packed)) header {
	char magic[8];
	uint32_t version;
	uint32_t fill;
	uint32_t flags;
	uint32_t text_bytes; /* the text pool that follows the header */
	uint64_t count;
};

struct region {
	uint64_t first, npages; /* in workload pages */
	char *base;
	uint32_t *version; /* write version per page, 0: never written */
};

static struct region *regions;
static size_t nr_regions, cap_regions;
static uint32_t fill;
static char *text_pool;
static size_t text_window; /* how many offsets a text page may start at */
static unsigned long mismatches;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "ghostswap-replay: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Fill one page for (page, version); a zero fill writes nothing at all. */
static void fill_page(char *p, uint64_t page, uint32_t version)
{
	uint64_t *w = (uint64_t *)p;
	uint64_t x = mix(page * 0x9e3779b97f4a7c15ull + version);
	size_t i;

	if (fill == FILL_ZERO) {
		memset(p, 0, PAGE);
		return;
	}
	if (fill == FILL_TEXT) {
		memcpy(p, text_pool + (x % text_window & ~7ull), PAGE);
	} else {
		size_t random_words = fill == FILL_HALF ? PAGE / 16 : PAGE / 8;
		for (i = 0; i < random_words; i++) {
			x = mix(x + i);
			w[i] = x;
		}
		if (fill == FILL_HALF)
			memset(p + PAGE / 2, 0, PAGE / 2);
	}
	w[0] = page + 1;
	w[1] = version;
}

static void check_page(const char *p, uint64_t page, uint32_t version)
{
	const uint64_t *w = (const uint64_t *)p;

	if (fill == FILL_ZERO || version == 0) {
		/* never written or zero-filled: must read back as zero */
		if (w[0] != 0 || w[1] != 0)
			mismatches++;
		return;
	}
	if (w[0] != page + 1 || w[1] != version)
		mismatches++;
}

static struct region *find(uint64_t page)
{
	size_t i;

	for (i = 0; i < nr_regions; i++)
		if (page >= regions[i].first && page < regions[i].first + regions[i].npages)
			return &regions[i];
	return NULL;
}

static struct region *map_region(uint64_t first, uint64_t npages)
{
	size_t len = npages * PAGE;
	char *raw, *base;
	struct region *r;

	/* Align like the workload's page numbers, so mTHP ranges line up. */
	raw = mmap(NULL, len + REGION_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap");
	base = (char *)(((uintptr_t)raw + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1));
	base += (first * PAGE) % REGION_ALIGN;
	if (nr_regions == cap_regions) {
		cap_regions = cap_regions ? 2 * cap_regions : 16;
		regions = realloc(regions, cap_regions * sizeof(*regions));
		if (!regions)
			die("realloc");
	}
	r = &regions[nr_regions++];
	r->first = first;
	r->npages = npages;
	r->base = base;
	r->version = calloc(npages, sizeof(uint32_t));
	if (!r->version)
		die("calloc");
	return r;
}

/* Pages outside any mapping get the aligned 2 MiB region around them. */
static struct region *region_of(uint64_t page)
{
	struct region *r = find(page);
	uint64_t per = REGION_ALIGN / PAGE;

	return r ? r : map_region(page - page % per, per);
}

static void do_range(const struct event *e)
{
	uint64_t p, end = e->page + e->npages;

	for (p = e->page; p < end;) {
		struct region *r = region_of(p);
		uint64_t stop = r->first + r->npages < end ? r->first + r->npages : end;
		char *addr = r->base + (p - r->first) * PAGE;
		size_t len = (stop - p) * PAGE;
		uint64_t q;

		switch (e->op) {
		case OP_READ:
			for (q = p; q < stop; q++)
				check_page(r->base + (q - r->first) * PAGE, q, r->version[q - r->first]);
			break;
		case OP_WRITE:
			for (q = p; q < stop; q++) {
				uint32_t v = ++r->version[q - r->first];
				fill_page(r->base + (q - r->first) * PAGE, q, v);
			}
			break;
		case OP_FREE:
		case OP_UNMAP:
			if (madvise(addr, len, MADV_DONTNEED))
				die("madvise(MADV_DONTNEED)");
			memset(&r->version[p - r->first], 0, (stop - p) * sizeof(uint32_t));
			break;
		case OP_PAGEOUT:
			if (madvise(addr, len, MADV_PAGEOUT) && errno != EINVAL)
				die("madvise(MADV_PAGEOUT)");
			break;
		case OP_HUGEPAGE:
			if (madvise(addr, len, MADV_HUGEPAGE))
				die("madvise(MADV_HUGEPAGE)");
			break;
		case OP_NOHUGEPAGE:
			if (madvise(addr, len, MADV_NOHUGEPAGE))
				die("madvise(MADV_NOHUGEPAGE)");
			break;
		}
		p = stop;
	}
}

static void dump(const char *path)
{
	FILE *out = fopen(path, "wb");
	size_t i;

	if (!out)
		die(path);
	for (i = 0; i < nr_regions; i++)
		if (fwrite(regions[i].base, PAGE, regions[i].npages, out) != regions[i].npages)
			die(path);
	if (fclose(out))
		die(path);
}

int main(int argc, char **argv)
{
	struct header h;
	struct event e;
	FILE *f;
	uint64_t i;
	double t0;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: ghostswap-replay EVENTS [DUMP]\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f)
		die(argv[1]);
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, "GSREPLAY", 8) || h.version != 2 ||
	    (h.fill == FILL_TEXT && h.text_bytes <= PAGE)) {
		fprintf(stderr, "ghostswap-replay: %s: not a replay file\n", argv[1]);
		return 2;
	}
	fill = h.fill;
	text_pool = malloc(h.text_bytes + 1);
	if (!text_pool)
		die("text pool");
	if (fread(text_pool, 1, h.text_bytes, f) != h.text_bytes) {
		fprintf(stderr, "ghostswap-replay: %s: truncated text pool\n", argv[1]);
		return 2;
	}
	text_window = h.text_bytes > PAGE ? h.text_bytes - PAGE : 0;
	t0 = now();
	for (i = 0; i < h.count; i++) {
		if (fread(&e, sizeof(e), 1, f) != 1) {
			fprintf(stderr, "ghostswap-replay: %s: truncated at event %lu\n", argv[1],
				(unsigned long)i);
			return 2;
		}
		if (e.op == OP_MAP) {
			if (!find(e.page))
				map_region(e.page, e.npages);
		} else if (e.op == OP_EXIT) {
			break;
		} else {
			do_range(&e);
		}
	}
	printf("events %lu\nmismatches %lu\nseconds %.3f\n", (unsigned long)i, mismatches,
	       now() - t0);
	if (argc == 3)
		dump(argv[2]);
	fflush(stdout);
	return mismatches ? 3 : 0;
}
