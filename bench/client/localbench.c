/*
 * localbench - the `local` row of bench/: the operations nfsbench makes
 * through NFS, made as direct system calls on the export's own filesystem
 * (the physical limit the servers are measured against).  Same modes,
 * options and RESULT line as nfsbench; DIR replaces the URL.
 *
 *   localbench DIR MODE [options]
 *
 *   MODE  seqwrite | seqread | randread | randwrite | meta | mkfiles | readdir
 *   -f NAME -s SIZE -b SIZE -q N -t SEC -n N -z SIZE   as nfsbench
 *   -S        meta: fsync the directory after every create and remove (what
 *             volnfs does for `sync` exports); without it, no commit (what
 *             nfs-ganesha does)
 *
 *   mkfiles   -d SUB -n N [-w W]: N empty files under DIR/SUB (made if needed),
 *             W per subdirectory d00000/, d00001/, ... (-w 0: all in SUB itself);
 *             the trees bench/growth.sh serves (no timing promised)
 *   readdir   -d SUB: list DIR/SUB and fstatat every entry, what a READDIRPLUS
 *             reply needs from the filesystem (the local row of the listing)
 *
 * qd N runs N threads, each with one call in flight.  Writes are buffered
 * (like UNSTABLE WRITE3) and seqwrite/randwrite end with an fsync, which is
 * timed; every 4 KiB written starts with its own offset and reads check it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096
#define MAGIC 0x6e667362656e6368ULL

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "localbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1024 * 1024; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
	}
	return (uint64_t)v;
}

static void fill(char *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i + 16 <= len; i += CHUNK) {
		uint64_t o = off + i, m = MAGIC;
		memcpy(buf + i, &o, 8);
		memcpy(buf + i + 8, &m, 8);
	}
}

static int check(const char *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i + 16 <= len; i += CHUNK) {
		uint64_t o, m;
		memcpy(&o, buf + i, 8);
		memcpy(&m, buf + i + 8, 8);
		if (o != off + i || m != MAGIC)
			return 0;
	}
	return 1;
}

/* ---------- latencies, merged from all threads ---------- */
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static double *lat;
static size_t nlat, caplat;
static void lat_merge(const double *v, size_t n)
{
	pthread_mutex_lock(&lat_mu);
	if (nlat + n > caplat) {
		caplat = (nlat + n) * 2;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (!lat) die("realloc");
	}
	memcpy(lat + nlat, v, n * sizeof(*v));
	nlat += n;
	pthread_mutex_unlock(&lat_mu);
}
static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
static double lat_pct(double p)
{
	if (!nlat) return 0;
	qsort(lat, nlat, sizeof(*lat), dcmp);
	size_t i = (size_t)(p / 100.0 * (nlat - 1));
	return lat[i];
}

/* ---------- random I/O ---------- */
struct rio { int fd, write, verify; uint64_t size, bs, ops; double deadline; unsigned seed; int bad; };

static void *rio_thread(void *p)
{
	struct rio *r = p;
	char *buf = aligned_alloc(4096, r->bs);
	double *l = malloc(sizeof(double) * (1 << 20));
	size_t nl = 0, cap = 1 << 20;
	if (!buf || !l) die("malloc");
	uint64_t blocks = r->size / r->bs;
	while (now() < r->deadline) {
		uint64_t off = (rand_r(&r->seed) % blocks) * r->bs;
		double t0 = now();
		ssize_t n;
		if (r->write) {
			fill(buf, off, r->bs);
			n = pwrite(r->fd, buf, r->bs, off);
		} else {
			n = pread(r->fd, buf, r->bs, off);
			if (n == (ssize_t)r->bs && r->verify && !check(buf, off, r->bs))
				r->bad = 1;
		}
		if (n != (ssize_t)r->bs) die(r->write ? "pwrite" : "pread");
		if (nl == cap) { cap *= 2; l = realloc(l, cap * sizeof(double)); if (!l) die("realloc"); }
		l[nl++] = now() - t0;
		r->ops++;
	}
	lat_merge(l, nl);
	free(l);
	free(buf);
	return NULL;
}

static void run_rand(const char *path, int write, uint64_t size, uint64_t bs, int qd, double secs, int verify)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) die(path);
	struct rio *r = calloc(qd, sizeof(*r));
	pthread_t *t = calloc(qd, sizeof(*t));
	double c0 = cpu_self(), t0 = now();
	for (int i = 0; i < qd; i++) {
		r[i] = (struct rio){ .fd = fd, .write = write, .verify = verify, .size = size, .bs = bs,
				     .deadline = t0 + secs, .seed = 1234 + i };
		pthread_create(&t[i], NULL, rio_thread, &r[i]);
	}
	uint64_t ops = 0;
	int bad = 0;
	for (int i = 0; i < qd; i++) {
		pthread_join(t[i], NULL);
		ops += r[i].ops;
		bad |= r[i].bad;
	}
	double c1 = now();
	if (write && fsync(fd) < 0) die("fsync");
	double el = now() - t0, commit = now() - c1;
	if (bad) { fprintf(stderr, "localbench: data mismatch\n"); exit(1); }
	printf("RESULT mode=%s qd=%d ops=%" PRIu64 " secs=%.4f iops=%.0f lat_p50_us=%.1f lat_p99_us=%.1f"
	       " commit_secs=%.4f client_cpu_s=%.3f\n", write ? "randwrite" : "randread", qd, ops, el, ops / el,
	       lat_pct(50) * 1e6, lat_pct(99) * 1e6, commit, cpu_self() - c0);
	close(fd);
}

/* ---------- sequential ---------- */
static void run_seq(const char *path, int write, uint64_t size, uint64_t bs, int verify)
{
	int fd = open(path, write ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0644);
	if (fd < 0) die(path);
	char *buf = aligned_alloc(4096, bs);
	if (!buf) die("malloc");
	double c0 = cpu_self(), t0 = now();
	for (uint64_t off = 0; off < size; off += bs) {
		size_t len = size - off < bs ? size - off : bs;
		if (write) {
			fill(buf, off, len);
			if (pwrite(fd, buf, len, off) != (ssize_t)len) die("pwrite");
		} else {
			if (pread(fd, buf, len, off) != (ssize_t)len) die("pread");
			if (verify && !check(buf, off, len)) { fprintf(stderr, "localbench: data mismatch\n"); exit(1); }
		}
	}
	double c1 = now();
	if (write && fsync(fd) < 0) die("fsync");
	double el = now() - t0;
	printf("RESULT mode=%s bytes=%" PRIu64 " secs=%.4f MBps=%.1f commit_secs=%.4f client_cpu_s=%.3f\n",
	       write ? "seqwrite" : "seqread", size, el, size / el / 1e6, now() - c1, cpu_self() - c0);
	close(fd);
}

/* ---------- metadata ---------- */
struct mt { int dirfd, phase, sync, next, n, stride, fails; uint64_t fsize; double *l; size_t nl; char *wbuf; };

static void *meta_thread(void *p)
{
	struct mt *m = p;
	char name[64];
	for (int i = m->next; i < m->n; i += m->stride) {
		snprintf(name, sizeof(name), "f%07d", i);
		double t0 = now();
		if (m->phase == 0) {
			int fd = openat(m->dirfd, name, O_RDWR | O_CREAT | O_EXCL, 0644);
			if (fd < 0) die("create");
			if (m->fsize && pwrite(fd, m->wbuf, m->fsize, 0) != (ssize_t)m->fsize) die("write");
			if (m->fsize && fsync(fd) < 0) die("fsync");
			close(fd);
			if (m->sync && fsync(m->dirfd) < 0) die("fsync dir");
		} else if (m->phase == 1) {
			struct stat st;
			if (fstatat(m->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) die("stat");
			if ((uint64_t)st.st_size != m->fsize) { fprintf(stderr, "localbench: %s: wrong size\n", name); exit(1); }
		} else {
			if (unlinkat(m->dirfd, name, 0) < 0) die("unlink");
			if (m->sync && fsync(m->dirfd) < 0) die("fsync dir");
		}
		m->l[m->nl++] = now() - t0;
	}
	return NULL;
}

static void run_meta(const char *root, const char *dir, int n, uint64_t fsize, int qd, int sync)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) die(path);
	int dirfd = open(path, O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) die(path);
	const char *names[3] = { "create", "stat", "remove" };
	double secs[3], p50[3], p99[3];
	char *wbuf = calloc(1, fsize ? fsize : 1);
	double c0 = cpu_self(), tall = now();
	for (int ph = 0; ph < 3; ph++) {
		struct mt *m = calloc(qd, sizeof(*m));
		pthread_t *t = calloc(qd, sizeof(*t));
		nlat = 0;
		double t0 = now();
		for (int i = 0; i < qd; i++) {
			m[i] = (struct mt){ .dirfd = dirfd, .phase = ph, .sync = sync, .next = i, .n = n, .stride = qd,
					    .fsize = fsize, .l = malloc(sizeof(double) * (n / qd + 2)), .wbuf = wbuf };
			pthread_create(&t[i], NULL, meta_thread, &m[i]);
		}
		for (int i = 0; i < qd; i++) {
			pthread_join(t[i], NULL);
			lat_merge(m[i].l, m[i].nl);
			free(m[i].l);
		}
		secs[ph] = now() - t0;
		p50[ph] = lat_pct(50) * 1e6;
		p99[ph] = lat_pct(99) * 1e6;
		free(m);
		free(t);
	}
	double el = now() - tall;
	close(dirfd);
	if (rmdir(path) < 0) die("rmdir");
	printf("RESULT mode=meta files=%d fsize=%" PRIu64 " qd=%d secs=%.4f ops_per_s=%.0f", n, fsize, qd, el, 3.0 * n / el);
	for (int ph = 0; ph < 3; ph++)
		printf(" %s_per_s=%.0f %s_p50_us=%.1f %s_p99_us=%.1f", names[ph], n / secs[ph], names[ph], p50[ph], names[ph], p99[ph]);
	printf(" client_cpu_s=%.3f\n", cpu_self() - c0);
}

static void run_mkfiles(const char *root, const char *sub, int n, int width)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	int dfd = -1, made = 0;
	double t0 = now();
	for (int i = 0; i < n; i++) {
		if (dfd < 0 || (width > 0 && i % width == 0)) {
			if (dfd >= 0)
				close(dfd);
			if (width > 0)
				snprintf(path, sizeof(path), "%s/%s/d%05d", root, sub, i / width);
			else
				snprintf(path, sizeof(path), "%s/%s", root, sub);
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				die(path);
			dfd = open(path, O_RDONLY | O_DIRECTORY);
			if (dfd < 0)
				die(path);
		}
		char name[64];
		snprintf(name, sizeof(name), "f%07d", i);
		int fd = openat(dfd, name, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			die(name);
		close(fd);
		made++;
	}
	if (dfd >= 0)
		close(dfd);
	double el = now() - t0;
	printf("RESULT mode=mkfiles files=%d width=%d secs=%.4f per_s=%.0f\n", made, width, el, made / el);
}

static void run_readdir(const char *root, const char *sub)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, sub);
	double c0 = cpu_self(), t0 = now();
	DIR *d = opendir(path);
	if (!d)
		die(path);
	uint64_t entries = 0, sum = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die(e->d_name);
		entries++;
		sum += st.st_ino;
	}
	closedir(d);
	double el = now() - t0;
	printf("RESULT mode=readdir entries=%" PRIu64 " secs=%.4f us_per_entry=%.3f client_cpu_s=%.3f chk=%" PRIu64 "\n",
	       entries, el, el * 1e6 / (entries ? entries : 1), cpu_self() - c0, sum % 7);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: localbench DIR seqwrite|seqread|randread|randwrite|meta|mkfiles|readdir [nfsbench options] [-S] [-w W]\n");
		return 2;
	}
	const char *root = argv[1], *mode = argv[2];
	const char *file = "nfsbench.dat", *dir = "nfsbench-meta";
	uint64_t size = 1ULL << 30, bs = 1 << 20, fsize = 0;
	int qd = 1, n = 10000, verify = 1, sync = 0, width = 1000, c;
	double secs = 10;
	optind = 3;
	while ((c = getopt(argc, argv, "f:d:s:b:q:t:n:z:VSw:")) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 'd': dir = optarg; break;
		case 's': size = parse_size(optarg); break;
		case 'b': bs = parse_size(optarg); break;
		case 'q': qd = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'z': fsize = parse_size(optarg); break;
		case 'V': verify = 0; break;
		case 'S': sync = 1; break;
		case 'w': width = atoi(optarg); break;
		default: return 2;
		}
	}
	if (qd < 1) qd = 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, file);
	if (!strcmp(mode, "seqwrite") || !strcmp(mode, "seqread"))
		run_seq(path, mode[3] == 'w', size, bs, verify);
	else if (!strcmp(mode, "randread") || !strcmp(mode, "randwrite"))
		run_rand(path, mode[4] == 'w', size, bs, qd, secs, verify);
	else if (!strcmp(mode, "meta"))
		run_meta(root, dir, n, fsize, qd, sync);
	else if (!strcmp(mode, "mkfiles"))
		run_mkfiles(root, dir, n, width);
	else if (!strcmp(mode, "readdir"))
		run_readdir(root, dir);
	else {
		fprintf(stderr, "localbench: mode %s has no local equivalent\n", mode);
		return 2;
	}
	return 0;
}
