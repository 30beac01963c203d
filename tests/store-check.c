/* store-check.c - drives one store backend through its contract for the
 * t-store-*.sh scripts: writes pages whose bytes are derived from their key,
 * reads them back in batches and checks every byte and every status.
 *
 *   store-check [options] URL open|write|verify|remove|keys
 *     -n N      pages (default 2000)          -b B   batch size (default 64)
 *     -r SEED   region id seed (default 1)    -g G   content generation (default 1)
 *     -V VER    version to write / expect     -m     verify: every page MISSING
 *     -u FILE   verify: the pages listed (one index a line) must be UNAVAILABLE
 *     -c FILE   verify: the pages listed must be CORRUPT
 *     -p        verify: after half the pages print "paused" and wait for a
 *               line on stdin (the script kills a server meanwhile); -u and
 *               -c then apply only to the pages read after the pause
 *   open   prints describe() or the open error (exit 2)
 *   keys   prints "index key" per page, for raw access to the servers
 *
 * Exit 0 when every page is as expected, 1 naming the first wrong pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluidmem/store.h"

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void fill(const struct fm_page_key *k, uint64_t gen, void *page)
{
	uint64_t *w = page;
	uint64_t base = mix(k->region[0] ^ mix(k->region[1] ^ mix(k->page ^ (gen << 48))));
	for (size_t j = 0; j < FM_PAGE_SIZE / 8; j++)
		w[j] = mix(base + j);
}

static unsigned char *load_list(const char *path, size_t n)
{
	unsigned char *l = calloc(n, 1);
	if (!path)
		return l;
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(1);
	}
	unsigned long v;
	while (fscanf(f, "%lu", &v) == 1)
		if (v < n)
			l[v] = 1;
	fclose(f);
	return l;
}

int main(int argc, char **argv)
{
	size_t n = 2000, batch = 64;
	uint64_t seed = 1, gen = 1, version = 0;
	const char *ufile = NULL, *cfile = NULL;
	int expect_missing = 0, pause_half = 0, c;
	while ((c = getopt(argc, argv, "n:b:r:g:V:u:c:mp")) != -1) {
		switch (c) {
		case 'n': n = strtoul(optarg, NULL, 0); break;
		case 'b': batch = strtoul(optarg, NULL, 0); break;
		case 'r': seed = strtoull(optarg, NULL, 0); break;
		case 'g': gen = strtoull(optarg, NULL, 0); break;
		case 'V': version = strtoull(optarg, NULL, 0); break;
		case 'u': ufile = optarg; break;
		case 'c': cfile = optarg; break;
		case 'm': expect_missing = 1; break;
		case 'p': pause_half = 1; break;
		default: fprintf(stderr, "usage: see the header of tests/store-check.c\n"); return 2;
		}
	}
	if (argc - optind != 2 || batch == 0) {
		fprintf(stderr, "usage: store-check [options] URL open|write|verify|remove|keys\n");
		return 2;
	}
	const char *url = argv[optind], *cmd = argv[optind + 1];
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct fm_store *s;
	char err[512] = "";
	int rc = fm_store_open(url, &s, err, sizeof(err));
	if (rc) {
		printf("open failed (%d): %s\n", rc, err);
		return 2;
	}
	char desc[1024] = "";
	if (strcmp(cmd, "open") == 0) {
		if (s->ops->describe)
			s->ops->describe(s, desc, sizeof(desc));
		printf("%s\n", desc);
		fm_store_close(s);
		return 0;
	}

	struct fm_store_io *ios = calloc(batch, sizeof(*ios));
	struct fm_page_key *keys = calloc(batch, sizeof(*keys));
	unsigned char *pages = aligned_alloc(4096, batch * FM_PAGE_SIZE);
	unsigned char *want = aligned_alloc(4096, FM_PAGE_SIZE);
	unsigned char *unavail = load_list(ufile, n), *corrupt = load_list(cfile, n);
	size_t count[5] = { 0 }, wrong = 0;
	int paused = 0;
	for (size_t first = 0; first < n; first += batch) {
		size_t m = n - first < batch ? n - first : batch;
		if (pause_half && !paused && first >= n / 2) {
			printf("paused\n");
			char line[64];
			if (!fgets(line, sizeof(line), stdin))
				fprintf(stderr, "stdin closed, resuming\n");
			paused = 1;
		}
		for (size_t i = 0; i < m; i++) {
			struct fm_store_io *io = &ios[i];
			io->key.region[0] = 0x0123456789abcdefull ^ mix(seed);
			io->key.region[1] = mix(seed + 1);
			io->key.page = first + i;
			io->page = pages + i * FM_PAGE_SIZE;
			io->version = version;
			io->status = -1;
			keys[i] = io->key;
			if (strcmp(cmd, "write") == 0)
				fill(&io->key, gen, io->page);
			else
				memset(io->page, 0xAA, FM_PAGE_SIZE);
		}
		if (strcmp(cmd, "keys") == 0) {
			for (size_t i = 0; i < m; i++) {
				char k[FM_KEY_MAX];
				fm_store_key_format(&ios[i].key, k);
				printf("%zu %s\n", first + i, k);
			}
			continue;
		}
		if (strcmp(cmd, "remove") == 0) {
			rc = fm_store_remove(s, keys, m);
			if (rc) {
				printf("remove of pages %zu..%zu failed: %d\n", first, first + m - 1, rc);
				return 1;
			}
			continue;
		}
		int is_write = strcmp(cmd, "write") == 0;
		if (!is_write && strcmp(cmd, "verify") != 0) {
			fprintf(stderr, "unknown command %s\n", cmd);
			return 2;
		}
		rc = is_write ? fm_store_write(s, ios, m) : fm_store_read(s, ios, m);
		if (rc) {
			printf("%s of pages %zu..%zu failed: %d\n", cmd, first, first + m - 1, rc);
			return 1;
		}
		for (size_t i = 0; i < m; i++) {
			size_t p = first + i;
			int st = ios[i].status;
			int listed = !pause_half || paused;
			int exp = is_write ? FM_STORE_OK
				: unavail[p] && listed ? FM_STORE_UNAVAILABLE
				: corrupt[p] && listed ? FM_STORE_CORRUPT
				: expect_missing ? FM_STORE_MISSING : FM_STORE_OK;
			if (st >= 0 && st < 5)
				count[st]++;
			const char *why = NULL;
			if (st != exp)
				why = "wrong status";
			if (!why && !is_write && st == FM_STORE_OK) {
				fill(&ios[i].key, gen, want);
				if (memcmp(want, ios[i].page, FM_PAGE_SIZE) != 0)
					why = "wrong bytes";
			}
			if (!why && !is_write && st != FM_STORE_OK) {
				/* a failed read must not leave data behind */
				for (size_t j = 0; j < FM_PAGE_SIZE && !why; j++)
					if (((unsigned char *)ios[i].page)[j] != 0xAA)
						why = "failed read wrote into the page";
			}
			if (why) {
				if (wrong < 10)
					printf("page %zu: %s: expected %s, got %s\n", p, why,
					       fm_store_strstatus(exp), fm_store_strstatus(st));
				wrong++;
			}
		}
	}
	if (s->ops->describe)
		s->ops->describe(s, desc, sizeof(desc));
	if (strcmp(cmd, "keys") != 0)
		printf("%s %zu pages: ok=%zu missing=%zu corrupt=%zu unavailable=%zu full=%zu wrong=%zu [%s]\n",
		       cmd, n, count[0], count[1], count[2], count[3], count[4], wrong, desc);
	fm_store_close(s);
	free(ios);
	free(keys);
	free(pages);
	free(want);
	free(unavail);
	free(corrupt);
	return wrong ? 1 : 0;
}
