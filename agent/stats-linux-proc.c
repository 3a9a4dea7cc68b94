/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The `top_processes` section: /proc/<pid>/stat of every process.
 *
 * Every process is looked at, kernel threads included (they can use CPU;
 * their RSS is 0), up to STATS_PROCESSES_MAX per sample; more set
 * "truncated" in top_processes.  A process is a thread group: its stat line
 * sums the CPU time of all its threads.
 *
 * cpu_percent is (utime + stime now - utime + stime at the previous sample)
 * / clock ticks / period_seconds * 100: percent of one CPU.  A process is
 * matched to the previous sample by pid and start time (so a reused pid is a
 * new process); one that started after the previous sample counts all of
 * its CPU time.  Without a base (first sample, or no top_processes section
 * in the previous one) cpu_percent is unknown: `by_cpu` is left out and
 * `by_memory` entries carry no cpu_percent.
 *
 * Order: by_cpu by CPU time used in the period, by_memory by RSS, both
 * descending, ties by ascending pid.  rss_bytes is the RSS page count of the
 * stat line times the page size.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats-linux-private.h"

/* A stat line is "pid (comm) " plus 50 numbers: 1 KiB is plenty. */
#define STATS_PROC_STAT_MAX 2048u

typedef struct ProcInfo {
        int pid;
        bool have_delta;
        uint64_t start_ticks, ticks, delta_ticks, rss_bytes;
        char comm[STATS_COMM_MAX + 1];
} ProcInfo;

/* Skips n blank-separated words. */
static const char *skip_words(const char *p, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return NULL;
                while (*p && *p != ' ')
                        p++;
        }
        return p;
}

/* "pid (comm) state ppid ..." — comm may contain anything, even ") ", so
 * it ends at the last ')'.  Field numbers as in proc(5). */
static int parse_proc_stat(const char *buf, const GlStatsCollector *c, ProcInfo *ret) {
        const char *open = strchr(buf, '('), *close = strrchr(buf, ')'), *p;
        uint64_t utime, stime, start, rss;
        size_t len;

        if (!open || !close || close < open)
                return -EINVAL;
        len = (size_t) (close - open - 1);
        if (len > STATS_COMM_MAX)
                len = STATS_COMM_MAX;
        memcpy(ret->comm, open + 1, len);
        ret->comm[len] = '\0';
        p = skip_words(close + 1, 11); /* state (3) ... cmajflt (13) */
        if (!p || stats_parse_u64(&p, &utime) < 0 || stats_parse_u64(&p, &stime) < 0)
                return -EINVAL;
        p = skip_words(p, 6); /* cutime (16) ... itrealvalue (21), some signed */
        if (!p || stats_parse_u64(&p, &start) < 0)
                return -EINVAL;
        p = skip_words(p, 1); /* vsize (23) */
        if (!p || stats_parse_u64(&p, &rss) < 0)
                return -EINVAL;
        if (utime > UINT64_MAX - stime || rss > UINT64_MAX / c->page_size)
                return -ERANGE;
        ret->ticks = utime + stime;
        ret->start_ticks = start;
        ret->rss_bytes = rss * c->page_size;
        return 0;
}

static int read_proc(int dir_fd, const char *name, const GlStatsCollector *c, ProcInfo *ret) {
        char rel[32], buf[STATS_PROC_STAT_MAX];
        ssize_t n;
        size_t len = 0;
        int fd;

        snprintf(rel, sizeof(rel), "%s/stat", name);
        fd = openat(dir_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno; /* exited meanwhile */
        while (len < sizeof(buf) - 1) {
                n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        if (len == 0 || len == sizeof(buf) - 1)
                return -EINVAL;
        buf[len] = '\0';
        if (strlen(buf) != len)
                return -EINVAL;
        return parse_proc_stat(buf, c, ret);
}

static int parse_pid(const char *s) {
        long v = 0;

        if (*s < '1' || *s > '9')
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (INT_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return (int) v;
}

static int cmp_ticks_pid(const void *a, const void *b) {
        const StatsProcTicks *x = a, *y = b;

        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int cmp_by_cpu(const void *a, const void *b) {
        const ProcInfo *x = *(const ProcInfo *const *) a, *y = *(const ProcInfo *const *) b;

        if (x->delta_ticks != y->delta_ticks)
                return x->delta_ticks > y->delta_ticks ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int cmp_by_memory(const void *a, const void *b) {
        const ProcInfo *x = *(const ProcInfo *const *) a, *y = *(const ProcInfo *const *) b;

        if (x->rss_bytes != y->rss_bytes)
                return x->rss_bytes > y->rss_bytes ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Fills have_delta/delta_ticks against the previous sample. */
static void proc_delta(const StatsCtx *x, const StatsSample *base, ProcInfo *p) {
        StatsProcTicks key = { .pid = p->pid };
        const StatsProcTicks *old;

        old = bsearch(&key, base->procs, base->n_procs, sizeof(*base->procs), cmp_ticks_pid);
        if (old && old->start_ticks == p->start_ticks) {
                if (p->ticks >= old->ticks) {
                        p->delta_ticks = p->ticks - old->ticks;
                        p->have_delta = true;
                }
                return;
        }
        /* Not seen before: new since the previous sample when it started after it. */
        if (base->have_uptime && (double) p->start_ticks >= base->uptime_seconds * (double) x->c->clk_tck) {
                p->delta_ticks = p->ticks;
                p->have_delta = true;
        }
}

static void add_list(StatsCtx *x, json_object *o, const char *key, ProcInfo **v, size_t n) {
        json_object *list = stats_array_new(&x->b);

        for (size_t i = 0; i < n && i < x->top_processes; i++) {
                json_object *e = stats_object_new(&x->b);

                stats_add_u64(&x->b, e, "pid", (uint64_t) v[i]->pid);
                stats_add_string(&x->b, e, "name", v[i]->comm);
                if (v[i]->have_delta)
                        stats_add_number(
                                &x->b, e, "cpu_percent",
                                (double) v[i]->delta_ticks / (double) x->c->clk_tck / x->period_seconds * 100.0, 2);
                stats_add_u64(&x->b, e, "rss_bytes", v[i]->rss_bytes);
                stats_append(&x->b, list, e);
        }
        stats_add(&x->b, o, key, list);
}

void stats_collect_top_processes(StatsCtx *x) {
        const StatsSample *base = x->prev && (x->prev->sections & STATS_BIT(GL_STATS_TOP_PROCESSES)) ? x->prev : NULL;
        ProcInfo *procs = NULL, **order = NULL;
        StatsProcTicks *ticks = NULL;
        size_t n = 0, alloc = 0, n_cpu = 0;
        bool truncated = false;
        struct dirent *de;
        json_object *o;
        char *path;
        DIR *d;
        int r;

        if (x->top_processes == 0)
                return;
        r = stats_path(x->c, "proc", &path);
        if (r < 0) {
                x->b.r = r;
                return;
        }
        d = opendir(path);
        free(path);
        if (!d)
                return;
        while ((de = readdir(d))) {
                ProcInfo p = { .pid = parse_pid(de->d_name) };

                if (p.pid <= 0)
                        continue;
                if (n == STATS_PROCESSES_MAX) {
                        truncated = true;
                        break;
                }
                if (read_proc(dirfd(d), de->d_name, x->c, &p) < 0)
                        continue;
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 256;
                        ProcInfo *a = reallocarray(procs, na, sizeof(*a));

                        if (!a) {
                                r = -ENOMEM;
                                break;
                        }
                        procs = a;
                        alloc = na;
                }
                procs[n++] = p;
        }
        closedir(d);
        if (r < 0)
                goto finish;
        ticks = calloc(n ? n : 1, sizeof(*ticks));
        order = calloc(n ? n : 1, sizeof(*order));
        if (!ticks || !order) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                ticks[i] = (StatsProcTicks){ procs[i].pid, procs[i].start_ticks, procs[i].ticks };
                if (base)
                        proc_delta(x, base, &procs[i]);
        }
        qsort(ticks, n, sizeof(*ticks), cmp_ticks_pid);

        o = stats_object_new(&x->b);
        if (base) {
                for (size_t i = 0; i < n; i++)
                        if (procs[i].have_delta)
                                order[n_cpu++] = &procs[i];
                qsort(order, n_cpu, sizeof(*order), cmp_by_cpu);
                add_list(x, o, "by_cpu", order, n_cpu);
        }
        for (size_t i = 0; i < n; i++)
                order[i] = &procs[i];
        qsort(order, n, sizeof(*order), cmp_by_memory);
        add_list(x, o, "by_memory", order, n);
        if (truncated)
                stats_add_bool(&x->b, o, "truncated", true);
        stats_add(&x->b, x->root, "top_processes", o);
        x->cur->procs = ticks;
        x->cur->n_procs = n;
        x->cur->sections |= STATS_BIT(GL_STATS_TOP_PROCESSES);
        ticks = NULL;
finish:
        if (r == -ENOMEM)
                x->b.r = r;
        free(ticks);
        free(order);
        free(procs);
}
