/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux stats collector: the collector object, file helpers, and the
 * small sections read from /proc (cpu, load, memory, processes, pressure).
 * Filesystems are in stats-linux-fs.c, disks/network/power supplies in
 * stats-linux-dev.c, top processes in stats-linux-proc.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats-linux-private.h"

/* ---- the collector ---------------------------------------------------- */

static void sample_clear(StatsSample *s) {
        free(s->cpus);
        free(s->disks);
        free(s->interfaces);
        free(s->procs);
        *s = (StatsSample){ 0 };
}

static char *root_normalize(const char *root) {
        size_t n = strlen(root);

        while (n > 0 && root[n - 1] == '/')
                n--;
        return strndup(root, n);
}

GlStatsCollector *gl_stats_collector_new(const char *root) {
        GlStatsCollector *c;
        long page_size = sysconf(_SC_PAGESIZE), clk_tck = sysconf(_SC_CLK_TCK);

        if (!root || root[0] != '/')
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->root = root_normalize(root);
        if (!c->root) {
                free(c);
                return NULL;
        }
        c->page_size = page_size > 0 ? (uint64_t) page_size : 4096;
        c->clk_tck = clk_tck > 0 ? (uint64_t) clk_tck : 100;
        c->fs_usage = stats_fs_usage_statvfs;
        return c;
}

GlStatsCollector *gl_stats_collector_free(GlStatsCollector *c) {
        if (!c)
                return NULL;
        sample_clear(&c->prev);
        free(c->root);
        free(c);
        return NULL;
}

int stats_collector_set_root(GlStatsCollector *c, const char *root) {
        char *r;

        if (!root || root[0] != '/')
                return -EINVAL;
        r = root_normalize(root);
        if (!r)
                return -ENOMEM;
        free(c->root);
        c->root = r;
        return 0;
}

void stats_collector_set_sysconf(GlStatsCollector *c, uint64_t page_size, uint64_t clk_tck) {
        if (page_size > 0)
                c->page_size = page_size;
        if (clk_tck > 0)
                c->clk_tck = clk_tck;
}

void stats_collector_set_fs_usage(GlStatsCollector *c, StatsFsUsageFunc f, void *userdata) {
        c->fs_usage = f ? f : stats_fs_usage_statvfs;
        c->fs_usage_userdata = f ? userdata : NULL;
}

/* ---- files and numbers ------------------------------------------------ */

int stats_path(const GlStatsCollector *c, const char *rel, char **ret) {
        char *p;

        if (asprintf(&p, "%s/%s", c->root, rel[0] == '/' ? rel + 1 : rel) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

FILE *stats_fopen(const GlStatsCollector *c, const char *rel) {
        char *path;
        FILE *f;
        int r;

        r = stats_path(c, rel, &path);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        f = fopen(path, "re");
        free(path);
        return f;
}

int stats_read_line(FILE *f, char *buf, size_t size) {
        size_t n;

        if (size < 2 || size > INT32_MAX)
                return -EINVAL;
        if (!fgets(buf, (int) size, f))
                return ferror(f) ? -EIO : 0;
        n = strlen(buf);
        if (n > 0 && buf[n - 1] == '\n') {
                buf[n - 1] = '\0';
                return 1;
        }
        if (n + 1 < size || feof(f))
                return 1; /* last line without newline, or a NUL inside the line */
        /* Too long: skip the rest of it. */
        for (int ch = getc(f); ch != EOF && ch != '\n'; ch = getc(f))
                ;
        if (ferror(f))
                return -EIO;
        return -ENOBUFS;
}

int stats_read_small_file(const GlStatsCollector *c, const char *rel, char *buf, size_t size) {
        FILE *f;
        size_t n;
        int r = 0;

        f = stats_fopen(c, rel);
        if (!f)
                return -errno;
        n = fread(buf, 1, size - 1, f);
        if (ferror(f))
                r = -EIO;
        else if (n == size - 1 && getc(f) != EOF)
                r = -EFBIG;
        fclose(f);
        if (r < 0)
                return r;
        buf[n] = '\0';
        if (strlen(buf) != n)
                return -EINVAL; /* a NUL byte inside */
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        return 0;
}

static const char *skip_blanks(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

bool stats_at_end(const char *p) {
        p = skip_blanks(p);
        return *p == '\0' || *p == '\n';
}

int stats_parse_u64(const char **p, uint64_t *ret) {
        const char *s = skip_blanks(*p);
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned) (*s - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

int stats_parse_double(const char **p, double *ret) {
        const char *s = skip_blanks(*p);
        uint64_t ip, fp = 0, scale = 1;
        int r;

        r = stats_parse_u64(&s, &ip);
        if (r < 0)
                return r;
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                for (; *s >= '0' && *s <= '9'; s++)
                        if (scale < UINT64_C(1000000000)) { /* digits beyond 9 are noise */
                                fp = fp * 10 + (unsigned) (*s - '0');
                                scale *= 10;
                        }
        }
        if (ip < (UINT64_C(1) << 53) / scale)
                *ret = (double) (ip * scale + fp) / (double) scale; /* exact numerator: correctly rounded */
        else
                *ret = (double) ip + (double) fp / (double) scale;
        *p = s;
        return 0;
}

bool stats_rate(const StatsCtx *x, uint64_t prev, uint64_t cur, double *ret) {
        if (!x->prev || cur < prev || !(x->period_seconds > 0))
                return false;
        *ret = (double) (cur - prev) / x->period_seconds;
        return true;
}

/* ---- /proc/stat: cpu and processes ---------------------------------- */

typedef struct ProcStat {
        bool have_total;
        StatsCpuTimes total;
        StatsCpu *cpus; /* only when asked for */
        size_t n_cpus;
        unsigned count; /* cpuN lines, also those beyond the bound */
        bool truncated;
        bool have_running, have_blocked;
        uint64_t running, blocked;
} ProcStat;

static int parse_cpu_times(const char *p, StatsCpuTimes *ret) {
        uint64_t v[8] = { 0 };
        unsigned n = 0;

        /* user nice system idle [iowait irq softirq [steal [guest [guest_nice]]]]; guest time is already part
         * of user and nice, so it is not read. */
        for (; n < 8; n++) {
                if (stats_at_end(p))
                        break;
                if (stats_parse_u64(&p, &v[n]) < 0)
                        return -EINVAL;
        }
        if (n < 4)
                return -EINVAL;
        for (unsigned i = 0; i < 2 && !stats_at_end(p); i++) {
                uint64_t guest;

                if (stats_parse_u64(&p, &guest) < 0)
                        return -EINVAL;
        }
        if (!stats_at_end(p))
                return -EINVAL;
        *ret = (StatsCpuTimes){
                .user = v[0],
                .nice = v[1],
                .system = v[2],
                .idle = v[3],
                .iowait = v[4],
                .irq = v[5],
                .softirq = v[6],
                .steal = v[7],
        };
        return 0;
}

static int parse_named_u64(const char *line, const char *key, bool *have, uint64_t *ret) {
        size_t n = strlen(key);
        const char *p;

        if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t'))
                return 0;
        p = line + n;
        if (stats_parse_u64(&p, ret) < 0 || !stats_at_end(p))
                return 0;
        *have = true;
        return 1;
}

/* 0 with ret filled, -ENOMEM, or another negative errno when /proc/stat
 * cannot be read. */
static int read_proc_stat(const GlStatsCollector *c, bool want_cpus, ProcStat *ret) {
        ProcStat s = { 0 };
        char line[STATS_LINE_MAX];
        size_t alloc = 0;
        FILE *f;
        int r = 0;

        f = stats_fopen(c, "proc/stat");
        if (!f)
                return -errno;
        for (unsigned n = 0; n < STATS_FILE_LINES_MAX; n++) {
                StatsCpuTimes t;
                const char *p;
                uint64_t id;

                r = stats_read_line(f, line, sizeof(line));
                if (r == -ENOBUFS)
                        continue;
                if (r <= 0)
                        break;
                if (strncmp(line, "cpu", 3) != 0) {
                        if (parse_named_u64(line, "procs_running", &s.have_running, &s.running) == 0)
                                parse_named_u64(line, "procs_blocked", &s.have_blocked, &s.blocked);
                        continue;
                }
                p = line + 3;
                if (*p == ' ') {
                        if (!s.have_total && parse_cpu_times(p, &s.total) == 0)
                                s.have_total = true;
                        continue;
                }
                if (stats_parse_u64(&p, &id) < 0 || *p != ' ' || id > UINT32_MAX || parse_cpu_times(p, &t) < 0)
                        continue; /* malformed: this CPU is left out */
                s.count++;
                if (!want_cpus)
                        continue;
                if (s.n_cpus >= GL_STATS_MAX_CPUS) {
                        s.truncated = true;
                        continue;
                }
                if (s.n_cpus == alloc) {
                        size_t na = alloc ? alloc * 2 : 16;
                        StatsCpu *a = reallocarray(s.cpus, na, sizeof(*a));

                        if (!a) {
                                r = -ENOMEM;
                                break;
                        }
                        s.cpus = a;
                        alloc = na;
                }
                s.cpus[s.n_cpus++] = (StatsCpu){ .id = (unsigned) id, .t = t };
        }
        fclose(f);
        if (r == -ENOMEM || r == -EIO) {
                free(s.cpus);
                return r;
        }
        *ret = s;
        return 0;
}

static uint64_t cpu_total(const StatsCpuTimes *t) {
        return t->user + t->nice + t->system + t->idle + t->iowait + t->irq + t->softirq + t->steal;
}

static bool cpu_times_ge(const StatsCpuTimes *a, const StatsCpuTimes *b) {
        return a->user >= b->user && a->nice >= b->nice && a->system >= b->system && a->idle >= b->idle &&
               a->iowait >= b->iowait && a->irq >= b->irq && a->softirq >= b->softirq && a->steal >= b->steal;
}

/* Percent of (cur - prev) total time; false without a usable delta. */
static bool cpu_delta(const StatsCpuTimes *prev, const StatsCpuTimes *cur, StatsCpuTimes *ret_delta,
                      uint64_t *ret_total) {
        StatsCpuTimes d;
        uint64_t total;

        if (!cpu_times_ge(cur, prev))
                return false; /* counters went back: CPU hot-plugged, or a new boot */
        d = (StatsCpuTimes){
                .user = cur->user - prev->user,
                .nice = cur->nice - prev->nice,
                .system = cur->system - prev->system,
                .idle = cur->idle - prev->idle,
                .iowait = cur->iowait - prev->iowait,
                .irq = cur->irq - prev->irq,
                .softirq = cur->softirq - prev->softirq,
                .steal = cur->steal - prev->steal,
        };
        total = cpu_total(&d);
        if (total == 0)
                return false;
        *ret_delta = d;
        *ret_total = total;
        return true;
}

static double percent(uint64_t part, uint64_t whole) {
        return 100.0 * (double) part / (double) whole;
}

static const StatsCpu *cpu_find(const StatsSample *s, unsigned id) {
        for (size_t i = 0; i < s->n_cpus; i++)
                if (s->cpus[i].id == id)
                        return &s->cpus[i];
        return NULL;
}

void stats_collect_cpu(StatsCtx *x) {
        const StatsSample *base = x->prev && (x->prev->sections & STATS_BIT(GL_STATS_CPU)) ? x->prev : NULL;
        ProcStat s;
        StatsCpuTimes d;
        uint64_t total;
        json_object *o, *list;
        int r;

        r = read_proc_stat(x->c, true, &s);
        if (r == -ENOMEM)
                x->b.r = r;
        if (r < 0 || !s.have_total) {
                if (r >= 0)
                        free(s.cpus);
                return;
        }
        o = stats_object_new(&x->b);
        stats_add_u64(&x->b, o, "count", s.count);
        if (base && cpu_delta(&base->cpu_total, &s.total, &d, &total)) {
                stats_add_number(&x->b, o, "usage_percent", percent(total - d.idle - d.iowait, total), 2);
                stats_add_number(&x->b, o, "user_percent", percent(d.user + d.nice, total), 2);
                stats_add_number(&x->b, o, "system_percent", percent(d.system + d.irq + d.softirq, total), 2);
                stats_add_number(&x->b, o, "iowait_percent", percent(d.iowait, total), 2);
                stats_add_number(&x->b, o, "steal_percent", percent(d.steal, total), 2);
        }
        if (base) {
                list = stats_array_new(&x->b);
                for (size_t i = 0; i < s.n_cpus; i++) {
                        const StatsCpu *p = cpu_find(base, s.cpus[i].id);
                        json_object *e;

                        if (!p || !cpu_delta(&p->t, &s.cpus[i].t, &d, &total))
                                continue; /* came online since the last sample */
                        e = stats_object_new(&x->b);
                        stats_add_u64(&x->b, e, "id", s.cpus[i].id);
                        stats_add_number(&x->b, e, "usage_percent", percent(total - d.idle - d.iowait, total), 2);
                        stats_append(&x->b, list, e);
                }
                stats_add(&x->b, o, "per_cpu", list);
                if (s.truncated)
                        stats_add_bool(&x->b, o, "truncated", true);
        }
        stats_add(&x->b, x->root, "cpu", o);
        x->cur->cpu_total = s.total;
        x->cur->cpus = s.cpus;
        x->cur->n_cpus = s.n_cpus;
        x->cur->sections |= STATS_BIT(GL_STATS_CPU);
}

/* ---- /proc/loadavg, /proc/stat: load and processes ------------------- */

typedef struct LoadAvg {
        double avg[3];
        uint64_t tasks;
} LoadAvg;

static int read_loadavg(const GlStatsCollector *c, LoadAvg *ret) {
        char buf[256];
        const char *p = buf;
        LoadAvg l;
        uint64_t running;
        int r;

        r = stats_read_small_file(c, "proc/loadavg", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 3; i++)
                if (stats_parse_double(&p, &l.avg[i]) < 0 || *p != ' ')
                        return -EINVAL;
        if (stats_parse_u64(&p, &running) < 0 || *p++ != '/' || stats_parse_u64(&p, &l.tasks) < 0)
                return -EINVAL;
        *ret = l;
        return 0;
}

void stats_collect_load(StatsCtx *x) {
        LoadAvg l;
        json_object *o;

        if (read_loadavg(x->c, &l) < 0)
                return;
        o = stats_object_new(&x->b);
        stats_add_number(&x->b, o, "avg1", l.avg[0], 2);
        stats_add_number(&x->b, o, "avg5", l.avg[1], 2);
        stats_add_number(&x->b, o, "avg15", l.avg[2], 2);
        stats_add(&x->b, x->root, "load", o);
}

void stats_collect_processes(StatsCtx *x) {
        ProcStat s;
        LoadAvg l;
        bool have_l;
        json_object *o;
        int r;

        have_l = read_loadavg(x->c, &l) >= 0;
        r = read_proc_stat(x->c, false, &s);
        if (r == -ENOMEM)
                x->b.r = r;
        if (r < 0)
                s = (ProcStat){ 0 };
        if (!have_l && !s.have_running && !s.have_blocked)
                return;
        o = stats_object_new(&x->b);
        if (have_l)
                stats_add_u64(&x->b, o, "total", l.tasks);
        if (s.have_running)
                stats_add_u64(&x->b, o, "running", s.running);
        if (s.have_blocked)
                stats_add_u64(&x->b, o, "blocked", s.blocked);
        stats_add(&x->b, x->root, "processes", o);
}

/* ---- /proc/meminfo ---------------------------------------------------- */

void stats_collect_memory(StatsCtx *x) {
        static const struct {
                const char *key, *member;
        } fields[] = {
                { "MemTotal", "total_bytes" },         { "MemFree", "free_bytes" },
                { "MemAvailable", "available_bytes" }, { "Cached", "cached_bytes" },
                { "Buffers", "buffers_bytes" },        { "SwapTotal", "swap_total_bytes" },
                { "SwapFree", "swap_free_bytes" },
        };
        uint64_t value[sizeof(fields) / sizeof(fields[0])];
        bool have[sizeof(fields) / sizeof(fields[0])] = { false };
        char line[STATS_LINE_MAX];
        json_object *o;
        FILE *f;

        f = stats_fopen(x->c, "proc/meminfo");
        if (!f)
                return;
        for (unsigned n = 0; n < STATS_FILE_LINES_MAX; n++) {
                const char *p;
                size_t klen;
                uint64_t kb;
                int r;

                r = stats_read_line(f, line, sizeof(line));
                if (r == -ENOBUFS)
                        continue;
                if (r <= 0)
                        break;
                p = strchr(line, ':');
                if (!p)
                        continue;
                klen = (size_t) (p - line);
                p++;
                for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                        if (have[i] || strlen(fields[i].key) != klen || strncmp(line, fields[i].key, klen) != 0)
                                continue;
                        if (stats_parse_u64(&p, &kb) < 0 || strcmp(p, " kB") != 0 || kb > UINT64_MAX / 1024)
                                break; /* malformed: the member is left out */
                        value[i] = kb * 1024;
                        have[i] = true;
                        break;
                }
        }
        fclose(f);
        if (!have[0])
                return; /* no MemTotal: not a meminfo we understand */
        o = stats_object_new(&x->b);
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                if (have[i])
                        stats_add_u64(&x->b, o, fields[i].member, value[i]);
        stats_add(&x->b, x->root, "memory", o);
}

/* ---- /proc/pressure --------------------------------------------------- */

/* "some avg10=0.12 avg60=0.34 avg300=0.56 total=789" */
static int parse_pressure_line(const char *p, StatsBuild *b, json_object **ret) {
        static const char *const keys[] = { "avg10=", "avg60=", "avg300=", "total=" };
        static const char *const members[] = { "avg10_percent", "avg60_percent", "avg300_percent" };
        double avg[3];
        uint64_t total;
        json_object *o;

        for (unsigned i = 0; i < 4; i++) {
                while (*p == ' ')
                        p++;
                if (strncmp(p, keys[i], strlen(keys[i])) != 0)
                        return -EINVAL;
                p += strlen(keys[i]);
                if ((i < 3 ? stats_parse_double(&p, &avg[i]) : stats_parse_u64(&p, &total)) < 0)
                        return -EINVAL;
                if (i < 3 && avg[i] > 100.0)
                        return -EINVAL;
        }
        if (!stats_at_end(p))
                return -EINVAL;
        o = stats_object_new(b);
        for (unsigned i = 0; i < 3; i++)
                stats_add_number(b, o, members[i], avg[i], 2);
        stats_add_u64(b, o, "total_us", total);
        *ret = o;
        return 0;
}

static void collect_pressure_file(StatsCtx *x, json_object *pressure, const char *name) {
        char rel[64], line[STATS_LINE_MAX];
        json_object *o = NULL;
        FILE *f;

        snprintf(rel, sizeof(rel), "proc/pressure/%s", name);
        f = stats_fopen(x->c, rel);
        if (!f)
                return;
        for (unsigned n = 0; n < 16; n++) {
                const char *kind;
                json_object *e;
                int r;

                r = stats_read_line(f, line, sizeof(line));
                if (r == -ENOBUFS)
                        continue;
                if (r <= 0)
                        break;
                if (strncmp(line, "some ", 5) == 0)
                        kind = "some";
                else if (strncmp(line, "full ", 5) == 0)
                        kind = "full";
                else
                        continue;
                if (o && json_object_object_get_ex(o, kind, NULL))
                        continue;
                if (parse_pressure_line(line + 5, &x->b, &e) < 0)
                        continue;
                if (!o)
                        o = stats_object_new(&x->b);
                stats_add(&x->b, o, kind, e);
        }
        fclose(f);
        /* Without "some" (a psi=0 kernel answers EOPNOTSUPP) the resource is left out. */
        if (o && !json_object_object_get_ex(o, "some", NULL)) {
                json_object_put(o);
                return;
        }
        if (o)
                stats_add(&x->b, pressure, name, o);
}

void stats_collect_pressure(StatsCtx *x) {
        json_object *o = stats_object_new(&x->b);

        collect_pressure_file(x, o, "cpu");
        collect_pressure_file(x, o, "memory");
        collect_pressure_file(x, o, "io");
        if (o && json_object_object_length(o) == 0) {
                json_object_put(o);
                return;
        }
        stats_add(&x->b, x->root, "pressure", o);
}

/* ---- one sample ------------------------------------------------------- */

static void (*const section_collect[_GL_STATS_SECTION_MAX])(StatsCtx *x) = {
        [GL_STATS_CPU] = stats_collect_cpu,
        [GL_STATS_LOAD] = stats_collect_load,
        [GL_STATS_MEMORY] = stats_collect_memory,
        [GL_STATS_PROCESSES] = stats_collect_processes,
        [GL_STATS_PRESSURE] = stats_collect_pressure,
        [GL_STATS_FILESYSTEMS] = stats_collect_filesystems,
        [GL_STATS_DISKS] = stats_collect_disks,
        [GL_STATS_NETWORK] = stats_collect_network,
        [GL_STATS_POWER_SUPPLIES] = stats_collect_power_supplies,
        [GL_STATS_TOP_PROCESSES] = stats_collect_top_processes,
};

static int read_uptime(const GlStatsCollector *c, double *ret) {
        char buf[128];
        const char *p = buf;
        double up;
        int r;

        r = stats_read_small_file(c, "proc/uptime", buf, sizeof(buf));
        if (r < 0)
                return r;
        if (stats_parse_double(&p, &up) < 0 || (*p != ' ' && *p != '\0'))
                return -EINVAL;
        *ret = up;
        return 0;
}

int gl_stats_collect(GlStatsCollector *c, uint64_t now_unix_us, uint64_t now_monotonic_us, const GlStatsQuery *q,
                     json_object **ret) {
        StatsSample cur = { .monotonic_us = now_monotonic_us };
        StatsCtx x = { .c = c, .cur = &cur };

        if (!c || !q || !ret || q->top_processes > GL_STATS_MAX_TOP_PROCESSES)
                return -EINVAL;
        x.top_processes = q->top_processes;
        if (c->have_prev && now_monotonic_us > c->prev.monotonic_us) {
                x.prev = &c->prev;
                x.period_seconds = (double) (now_monotonic_us - c->prev.monotonic_us) / 1e6;
        }
        x.root = stats_object_new(&x.b);
        stats_add_u64(&x.b, x.root, "time_unix_us", now_unix_us);
        if (read_uptime(c, &cur.uptime_seconds) >= 0) {
                cur.have_uptime = true;
                stats_add_number(&x.b, x.root, "uptime_seconds", cur.uptime_seconds, 2);
        }
        if (x.prev)
                stats_add_number(&x.b, x.root, "period_seconds", x.period_seconds, 6);
        for (int s = 0; s < _GL_STATS_SECTION_MAX && x.b.r >= 0; s++)
                if (q->section[s])
                        section_collect[s](&x);
        if (x.truncated)
                stats_add_bool(&x.b, x.root, "truncated", true);
        if (x.b.r < 0) {
                json_object_put(x.root);
                sample_clear(&cur);
                return x.b.r;
        }
        sample_clear(&c->prev);
        c->prev = cur;
        c->have_prev = true;
        *ret = x.root;
        return 0;
}
