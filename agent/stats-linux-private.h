/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internals shared by stats-linux*.c, and the seams the unit tests use. */
#include <stdio.h>

#include "stats-private.h"
#include "stats.h"

/* Bit of a section in StatsSample.sections. */
#define STATS_BIT(s) (1u << (unsigned) (s))

/* Longest line kept from a /proc or /sys file; longer lines are skipped
 * whole (the `intr` line of /proc/stat on a big machine, for instance). */
#define STATS_LINE_MAX 4096u
/* mountinfo lines carry two escaped paths (up to 4 bytes per byte each). */
#define STATS_MOUNTINFO_LINE_MAX 32768u
/* Lines read from one file at most: mount tables, diskstats, net/dev. */
#define STATS_FILE_LINES_MAX 65536u
/* Processes looked at per sample; more set "truncated" in top_processes. */
#define STATS_PROCESSES_MAX 65536u
/* Device, interface and power supply names kept (longer ones are skipped). */
#define STATS_NAME_MAX 64u
/* Process names: TASK_COMM_LEN is 16, workqueue workers show up to 64. */
#define STATS_COMM_MAX 64u

/* What statvfs() says about one mount, in bytes and inodes. */
typedef struct StatsFsUsage {
        uint64_t total_bytes, free_bytes, available_bytes;
        uint64_t total_inodes, free_inodes, available_inodes;
        bool have_inodes; /* false when the file system does not count inodes (f_files == 0) */
} StatsFsUsage;

/* Asks for the usage of the file system mounted at path (root already
 * prepended).  0 on success, negative errno otherwise (the mount is then
 * left out). */
typedef int (*StatsFsUsageFunc)(const char *path, StatsFsUsage *ret, void *userdata);

typedef struct StatsCpuTimes {
        uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
} StatsCpuTimes;

typedef struct StatsCpu {
        unsigned id;
        StatsCpuTimes t;
} StatsCpu;

/* Cumulative counters of a disk or interface, for the next sample's rates. */
typedef struct StatsDevCounters {
        char name[STATS_NAME_MAX];
        uint64_t v[4]; /* disks: read bytes, write bytes, reads, writes; network: rx/tx bytes, rx/tx packets */
} StatsDevCounters;

typedef struct StatsProcTicks {
        int pid;
        uint64_t start_ticks; /* telling a new process from a reused pid */
        uint64_t ticks;       /* utime + stime */
} StatsProcTicks;

/* The part of a sample the next one needs. */
typedef struct StatsSample {
        unsigned sections; /* sections whose data below is valid */
        uint64_t monotonic_us;
        double uptime_seconds;
        bool have_uptime;

        StatsCpuTimes cpu_total;
        StatsCpu *cpus;
        size_t n_cpus;

        StatsDevCounters *disks;
        size_t n_disks;
        StatsDevCounters *interfaces;
        size_t n_interfaces;

        StatsProcTicks *procs; /* sorted by pid */
        size_t n_procs;
} StatsSample;

struct GlStatsCollector {
        char *root; /* without trailing '/': "" for "/" */
        uint64_t page_size;
        uint64_t clk_tck;
        StatsFsUsageFunc fs_usage;
        void *fs_usage_userdata;
        StatsSample prev;
        bool have_prev;
};

/* State of one gl_stats_collect() call. */
typedef struct StatsCtx {
        GlStatsCollector *c;
        const StatsSample *prev; /* NULL when there is no base for rates */
        StatsSample *cur;
        double period_seconds; /* > 0 when prev is set */
        unsigned top_processes;
        json_object *root;
        bool truncated; /* a top-level list was cut at its bound */
        StatsBuild b;
} StatsCtx;

/* Test seams.  set_root replaces the directory files are read under (a
 * second fixture tree for the second sample); set_sysconf replaces the page
 * size and clock ticks taken from sysconf(); set_fs_usage replaces
 * statvfs(), which a fixture tree cannot fake. */
int stats_collector_set_root(GlStatsCollector *c, const char *root);
void stats_collector_set_sysconf(GlStatsCollector *c, uint64_t page_size, uint64_t clk_tck);
void stats_collector_set_fs_usage(GlStatsCollector *c, StatsFsUsageFunc f, void *userdata);
int stats_fs_usage_statvfs(const char *path, StatsFsUsage *ret, void *userdata);

/* File access under the collector's root. */
int stats_path(const GlStatsCollector *c, const char *rel, char **ret);
FILE *stats_fopen(const GlStatsCollector *c, const char *rel);
/* Reads one line into buf (newline removed): 1 = a line, 0 = end of file,
 * -ENOBUFS = the line did not fit and was skipped, -EIO = read error. */
int stats_read_line(FILE *f, char *buf, size_t size);
/* Reads a small file whole (trailing newline removed): -EFBIG when it does
 * not fit into buf, -errno when it cannot be read. */
int stats_read_small_file(const GlStatsCollector *c, const char *rel, char *buf, size_t size);

/* Number parsing: skip blanks, then digits; *p moves past the number.
 * -EINVAL when there is no number, -ERANGE on overflow. */
int stats_parse_u64(const char **p, uint64_t *ret);
/* Non-negative decimal fraction ("12.34"), locale-independent. */
int stats_parse_double(const char **p, double *ret);
/* True when the rest of the string is blank. */
bool stats_at_end(const char *p);

/* Sections; each leaves its object in x->root, its base in x->cur and any
 * allocation failure in x->b.r.  A missing or malformed source leaves the
 * section out. */
void stats_collect_cpu(StatsCtx *x);
void stats_collect_load(StatsCtx *x);
void stats_collect_memory(StatsCtx *x);
void stats_collect_processes(StatsCtx *x);
void stats_collect_pressure(StatsCtx *x);
void stats_collect_filesystems(StatsCtx *x);
void stats_collect_disks(StatsCtx *x);
void stats_collect_network(StatsCtx *x);
void stats_collect_power_supplies(StatsCtx *x);
void stats_collect_top_processes(StatsCtx *x);

/* Rate of a counter between prev and cur; false when it went backwards
 * (counter reset) or there is no base. */
bool stats_rate(const StatsCtx *x, uint64_t prev, uint64_t cur, double *ret);
