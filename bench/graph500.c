/* graph500.c - a Graph500-style breadth-first search benchmark, single-threaded and
 * deterministic, used to run a real graph workload with and without fluidmem.
 *
 * Follows the Graph500 specification (kernel 1 and kernel 2):
 *   - generator: the Kronecker / R-MAT edge generator of the reference
 *     kronecker_generator.m (initiator A=0.57, B=0.19, C=0.19, D=0.05), then a random
 *     permutation of vertex labels and a random shuffle of the edge list;
 *   - kernel 1: CSR construction from the edge list (self-loops dropped, duplicate
 *     edges kept, undirected: each edge stored in both directions);
 *   - kernel 2: top-down BFS from sampled roots (distinct, degree > 0), producing a
 *     parent array;
 *   - validation of each BFS tree as the specification lists it: the parent array is
 *     a tree rooted at the root (no cycles), each tree edge joins levels differing by
 *     exactly one and is an edge of the input list, every input edge joins vertices
 *     whose levels differ by at most one, and every vertex of the root's component
 *     is in the tree;
 *   - TEPS per root = input edges in the root's component / BFS time; the harmonic
 *     mean is reported, as the specification asks.
 *
 * All randomness comes from splitmix64 keyed by the seed, so the graph, the roots
 * and the BFS trees are the same on every run: the "checksum:" line hashes the
 * edge list, the CSR, and every root's level and parent arrays, and is what the
 * scripts under bench/apps compare across run modes. Timings go on other lines.
 *
 * The big arrays come from malloc (so the fluidmem preload library places them in
 * monitored regions). What it does not do: MPI, threads, the direction-optimizing
 * BFS, or the SSSP kernel 3.
 *
 * Usage: graph500 [-s SCALE] [-e EDGEFACTOR] [-r NROOTS] [-S SEED] [-v] [-x]
 * (-x corrupts the first BFS tree on purpose, to show the validation catches it.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct edge {
	int64_t u, v;
};

struct graph {
	int64_t nv;         /* vertices: 2^scale */
	int64_t ne;         /* input edges: edgefactor * nv */
	struct edge *edges; /* the input edge list, kept for validation */
	int64_t *xadj;      /* CSR row starts, nv + 1 entries */
	int64_t *adj;       /* CSR neighbours, xadj[nv] entries */
};

static int verbose, corrupt;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "graph500: %s\n", what);
	exit(2);
}

static void *xmalloc(size_t n, const char *what)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "graph500: out of memory allocating %zu bytes for %s\n", n, what);
		exit(2);
	}
	return p;
}

/* splitmix64: the generator and the hash. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

static double rng_unit(struct rng *r) /* uniform in [0, 1) */
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static uint64_t rng_below(struct rng *r, uint64_t n) /* uniform in [0, n), n > 0 */
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
	do
		x = rng_next(r);
	while (x >= lim);
	return x % n;
}

/* A streaming 64-bit hash of 64-bit words (order-sensitive). */
struct hash {
	uint64_t h;
};

static void hash_word(struct hash *h, uint64_t w)
{
	h->h = mix64(h->h ^ mix64(w + 0x632be59bd9b4e019ULL));
}

static void hash_array(struct hash *h, const int64_t *a, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		hash_word(h, (uint64_t)a[i]);
}

/* Kronecker generator, as kronecker_generator.m: per edge and per level, two draws
 * choose the quadrant. Each edge has its own stream (seed, edge index), so the
 * result does not depend on generation order. Then vertex labels are permuted
 * and the edge list shuffled, both from the seed. */
static void generate(struct graph *g, int scale, uint64_t seed)
{
	const double A = 0.57, B = 0.19, C = 0.19;
	const double ab = A + B, c_norm = C / (1.0 - (A + B)), a_norm = A / (A + B);

	for (int64_t e = 0; e < g->ne; e++) {
		struct rng r = { mix64(seed * 0x9e3779b97f4a7c15ULL + 1) ^ mix64((uint64_t)e) };
		int64_t u = 0, v = 0;
		for (int ib = 0; ib < scale; ib++) {
			int ii = rng_unit(&r) > ab;
			int jj = rng_unit(&r) > (ii ? c_norm : a_norm);
			u |= (int64_t)ii << ib;
			v |= (int64_t)jj << ib;
		}
		g->edges[e].u = u;
		g->edges[e].v = v;
	}

	struct rng r = { mix64(seed ^ 0x5851f42d4c957f2dULL) };
	int64_t *perm = xmalloc((size_t)g->nv * sizeof *perm, "vertex permutation");
	for (int64_t i = 0; i < g->nv; i++)
		perm[i] = i;
	for (int64_t i = g->nv - 1; i > 0; i--) {
		int64_t j = (int64_t)rng_below(&r, (uint64_t)i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (int64_t e = 0; e < g->ne; e++) {
		g->edges[e].u = perm[g->edges[e].u];
		g->edges[e].v = perm[g->edges[e].v];
	}
	free(perm);
	for (int64_t e = g->ne - 1; e > 0; e--) {
		int64_t j = (int64_t)rng_below(&r, (uint64_t)e + 1);
		struct edge t = g->edges[e];
		g->edges[e] = g->edges[j];
		g->edges[j] = t;
	}
}

/* Kernel 1: undirected CSR, self-loops dropped, duplicates kept. */
static void build_csr(struct graph *g)
{
	g->xadj = xmalloc((size_t)(g->nv + 1) * sizeof *g->xadj, "CSR index");
	memset(g->xadj, 0, (size_t)(g->nv + 1) * sizeof *g->xadj);
	for (int64_t e = 0; e < g->ne; e++) {
		const struct edge *ed = &g->edges[e];
		if (ed->u == ed->v)
			continue;
		g->xadj[ed->u + 1]++;
		g->xadj[ed->v + 1]++;
	}
	for (int64_t i = 0; i < g->nv; i++)
		g->xadj[i + 1] += g->xadj[i];
	g->adj = xmalloc((size_t)g->xadj[g->nv] * sizeof *g->adj, "CSR adjacency");
	int64_t *fill = xmalloc((size_t)g->nv * sizeof *fill, "CSR fill cursor");
	memcpy(fill, g->xadj, (size_t)g->nv * sizeof *fill);
	for (int64_t e = 0; e < g->ne; e++) {
		const struct edge *ed = &g->edges[e];
		if (ed->u == ed->v)
			continue;
		g->adj[fill[ed->u]++] = ed->v;
		g->adj[fill[ed->v]++] = ed->u;
	}
	free(fill);
}

/* Kernel 2: top-down BFS. parent[v] = -1 for unreached vertices. */
static void bfs(const struct graph *g, int64_t root, int64_t *parent, int64_t *queue)
{
	for (int64_t i = 0; i < g->nv; i++)
		parent[i] = -1;
	int64_t head = 0, tail = 0;
	parent[root] = root;
	queue[tail++] = root;
	while (head < tail) {
		int64_t u = queue[head++];
		for (int64_t k = g->xadj[u]; k < g->xadj[u + 1]; k++) {
			int64_t v = g->adj[k];
			if (parent[v] < 0) {
				parent[v] = u;
				queue[tail++] = v;
			}
		}
	}
}

/* The specification's validation. Computes level[] from parent[] (so the BFS need
 * not produce it), counts the input edges in the root's component into *nedge, and
 * returns NULL or a description of the first error found. tmp: nv entries. */
static const char *validate(const struct graph *g, int64_t root, const int64_t *parent,
			    int64_t *level, int64_t *tmp, int64_t *nedge, char *why, size_t whylen)
{
	const int64_t nv = g->nv;
	if (parent[root] != root) {
		snprintf(why, whylen, "parent of root %" PRId64 " is %" PRId64, root, parent[root]);
		return why;
	}
	for (int64_t i = 0; i < nv; i++) {
		if (parent[i] < -1 || parent[i] >= nv) {
			snprintf(why, whylen, "parent of %" PRId64 " out of range: %" PRId64, i, parent[i]);
			return why;
		}
		level[i] = parent[i] < 0 ? -1 : (i == root ? 0 : -2); /* -2: not yet known */
	}
	/* Levels by walking each vertex's parent chain; a chain longer than nv is a
	 * cycle. tmp holds the chain. */
	for (int64_t i = 0; i < nv; i++) {
		if (level[i] != -2)
			continue;
		int64_t n = 0, v = i;
		while (level[v] == -2) {
			if (n >= nv) {
				snprintf(why, whylen, "cycle in the parent array through %" PRId64, i);
				return why;
			}
			tmp[n++] = v;
			level[v] = -3; /* on the current chain */
			v = parent[v];
		}
		if (level[v] < 0) {
			snprintf(why, whylen, "vertex %" PRId64 " reaches %s instead of the root", i,
				 level[v] == -3 ? "a cycle" : "an unreached vertex");
			return why;
		}
		int64_t l = level[v];
		while (n > 0)
			level[tmp[--n]] = ++l;
	}
	/* tmp[v] = 1 once the tree edge (v, parent[v]) is seen in the input list. */
	for (int64_t i = 0; i < nv; i++)
		tmp[i] = 0;
	int64_t count = 0;
	for (int64_t e = 0; e < g->ne; e++) {
		int64_t u = g->edges[e].u, v = g->edges[e].v;
		int64_t lu = level[u], lv = level[v];
		if (lu < 0 && lv < 0)
			continue;
		if (lu < 0 || lv < 0) {
			snprintf(why, whylen, "edge (%" PRId64 ",%" PRId64 ") leaves the tree: vertex %" PRId64
				 " in the root's component is not reached", u, v, lu < 0 ? u : v);
			return why;
		}
		if (lu - lv > 1 || lv - lu > 1) {
			snprintf(why, whylen, "edge (%" PRId64 ",%" PRId64 ") joins levels %" PRId64 " and %" PRId64,
				 u, v, lu, lv);
			return why;
		}
		count++;
		if (u != v && parent[u] == v)
			tmp[u] = 1;
		if (u != v && parent[v] == u)
			tmp[v] = 1;
	}
	for (int64_t i = 0; i < nv; i++) {
		if (i == root || parent[i] < 0)
			continue;
		if (level[i] != level[parent[i]] + 1) {
			snprintf(why, whylen, "tree edge (%" PRId64 ",%" PRId64 ") joins levels %" PRId64 " and %" PRId64,
				 parent[i], i, level[parent[i]], level[i]);
			return why;
		}
		if (!tmp[i]) {
			snprintf(why, whylen, "tree edge (%" PRId64 ",%" PRId64 ") is not in the input graph",
				 parent[i], i);
			return why;
		}
	}
	*nedge = count;
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: graph500 [-s SCALE] [-e EDGEFACTOR] [-r NROOTS] [-S SEED] [-v] [-x]\n"
			"  SCALE: log2 of the vertex count (default 16)\n"
			"  EDGEFACTOR: edges per vertex (default 16)\n"
			"  NROOTS: BFS roots sampled (default 8; the specification uses 64)\n"
			"  SEED: generator seed (default 1)\n");
	exit(2);
}

static long parse_long(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *end || v < lo || v > hi)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	int scale = 16, edgefactor = 16, nroots = 8;
	uint64_t seed = 1;
	int opt;
	while ((opt = getopt(argc, argv, "s:e:r:S:vx")) != -1) {
		switch (opt) {
		case 's': scale = (int)parse_long(optarg, 1, 40); break;
		case 'e': edgefactor = (int)parse_long(optarg, 1, 1024); break;
		case 'r': nroots = (int)parse_long(optarg, 1, 1 << 20); break;
		case 'S': seed = (uint64_t)parse_long(optarg, 0, (long)(~0UL >> 1)); break;
		case 'v': verbose = 1; break;
		case 'x': corrupt = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	struct graph g = { .nv = (int64_t)1 << scale };
	g.ne = g.nv * edgefactor;
	printf("graph500: scale=%d edgefactor=%d vertices=%" PRId64 " edges=%" PRId64 " roots=%d seed=%" PRIu64 "\n",
	       scale, edgefactor, g.nv, g.ne, nroots, seed);
	fflush(stdout);

	double t0 = now();
	g.edges = xmalloc((size_t)g.ne * sizeof *g.edges, "edge list");
	generate(&g, scale, seed);
	double t1 = now();
	build_csr(&g);
	double t2 = now();

	int64_t *parent = xmalloc((size_t)g.nv * sizeof *parent, "parent array");
	int64_t *level = xmalloc((size_t)g.nv * sizeof *level, "level array");
	int64_t *tmp = xmalloc((size_t)g.nv * sizeof *tmp, "BFS queue / validation scratch");
	size_t bytes = (size_t)g.ne * sizeof *g.edges + (size_t)(g.nv + 1) * 8 + (size_t)g.xadj[g.nv] * 8 +
		       3 * (size_t)g.nv * 8;
	printf("memory: %.1f MiB in the graph and BFS arrays\n", (double)bytes / (1 << 20));
	printf("time generation: %.3f s construction: %.3f s\n", t1 - t0, t2 - t1);

	struct hash h = { 0x243f6a8885a308d3ULL };
	hash_word(&h, (uint64_t)g.nv);
	hash_word(&h, (uint64_t)g.ne);
	for (int64_t e = 0; e < g.ne; e++) {
		hash_word(&h, (uint64_t)g.edges[e].u);
		hash_word(&h, (uint64_t)g.edges[e].v);
	}
	hash_array(&h, g.xadj, g.nv + 1);
	hash_array(&h, g.adj, g.xadj[g.nv]);

	/* Roots: distinct, degree > 0, from the seed. Give up after many draws on a
	 * graph that has fewer such vertices than roots asked for. */
	struct rng rr = { mix64(seed ^ 0xda942042e4dd58b5ULL) };
	int64_t *roots = xmalloc((size_t)nroots * sizeof *roots, "roots");
	int found = 0;
	for (int64_t tries = 0; found < nroots && tries < 64 * g.nv; tries++) {
		int64_t r = (int64_t)rng_below(&rr, (uint64_t)g.nv);
		if (g.xadj[r + 1] == g.xadj[r])
			continue;
		int dup = 0;
		for (int i = 0; i < found; i++)
			dup |= roots[i] == r;
		if (!dup)
			roots[found++] = r;
	}
	if (found < nroots)
		die("too few vertices with edges for the roots asked for");

	double inv_teps_sum = 0, bfs_total = 0;
	int bad = 0;
	char why[256];
	for (int i = 0; i < nroots; i++) {
		double b0 = now();
		bfs(&g, roots[i], parent, tmp);
		double b1 = now();
		if (corrupt && i == 0) {
			/* Hang the last vertex the BFS reached straight under the root. */
			int64_t last = roots[i];
			for (int64_t v = 0; v < g.nv; v++)
				if (parent[v] >= 0)
					last = v;
			parent[last] = roots[i];
		}
		int64_t nedge = 0;
		const char *err = validate(&g, roots[i], parent, level, tmp, &nedge, why, sizeof why);
		double b2 = now();
		int64_t reached = 0, maxlevel = 0;
		for (int64_t v = 0; v < g.nv; v++) {
			if (level[v] >= 0)
				reached++;
			if (level[v] > maxlevel)
				maxlevel = level[v];
		}
		double teps = (double)nedge / (b1 - b0);
		if (!err)
			inv_teps_sum += 1.0 / teps;
		bfs_total += b1 - b0;
		hash_word(&h, (uint64_t)roots[i]);
		hash_word(&h, (uint64_t)nedge);
		hash_array(&h, level, g.nv);
		hash_array(&h, parent, g.nv);
		if (err) {
			bad++;
			printf("bfs %d root=%" PRId64 " INVALID: %s\n", i, roots[i], err);
		} else if (verbose) {
			printf("bfs %d root=%" PRId64 " reached=%" PRId64 " levels=%" PRId64 " edges=%" PRId64
			       " time=%.4f s teps=%.4g validate=%.4f s\n",
			       i, roots[i], reached, maxlevel + 1, nedge, b1 - b0, teps, b2 - b1);
		}
	}
	printf("time bfs total: %.3f s all: %.3f s\n", bfs_total, now() - t0);
	printf("harmonic_mean_TEPS: %.6g\n", bad < nroots ? (nroots - bad) / inv_teps_sum : 0.0);
	printf("validation: %s (%d of %d roots valid)\n", bad ? "FAILED" : "passed", nroots - bad, nroots);
	printf("checksum: %016" PRIx64 "\n", h.h);

	free(roots);
	free(tmp);
	free(level);
	free(parent);
	free(g.adj);
	free(g.xadj);
	free(g.edges);
	return bad ? 1 : 0;
}
