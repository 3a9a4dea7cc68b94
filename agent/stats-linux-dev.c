/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices: the `disks` (/proc/diskstats), `network` (/proc/net/dev) and
 * `power_supplies` (/sys/class/power_supply) sections.
 *
 * Disks: whole block devices only.  A line of /proc/diskstats is left out
 * when /sys/class/block/<name>/partition exists (a partition: its I/O is
 * already counted in its disk), or when the name is loop<N>, ram<N> or
 * fd<N> (loop devices are I/O on files of other disks, ram disks are
 * memory, floppies are noise).  Stacked devices (dm-*, md*) are whole
 * devices and are listed beside the disks under them, so summing all
 * entries counts their I/O twice.  Bytes are sectors * 512 (diskstats
 * counts 512-byte units whatever the device's block size).
 *
 * Network: every interface of /proc/net/dev (of the agent's network
 * namespace), loopback included, in the kernel's order.
 *
 * Power supplies: every entry of /sys/class/power_supply except those
 * whose `scope` is "Device" (the battery of a wireless mouse), sorted by
 * name.  `online` is given for mains and usb supplies, `capacity_percent`
 * and `status` for batteries, as PROTOCOL.md lists them.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats-linux-private.h"

static const StatsDevCounters *dev_find(const StatsDevCounters *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0)
                        return &v[i];
        return NULL;
}

static int dev_push(StatsDevCounters **v, size_t *n, size_t *alloc, const StatsDevCounters *e) {
        if (*n == *alloc) {
                size_t na = *alloc ? *alloc * 2 : 16;
                StatsDevCounters *a = reallocarray(*v, na, sizeof(*a));

                if (!a)
                        return -ENOMEM;
                *v = a;
                *alloc = na;
        }
        (*v)[(*n)++] = *e;
        return 0;
}

/* Copies the word at *p (up to a blank or `stop`) into name; false when it
 * is empty or too long. */
static bool take_name(const char **p, char stop, char name[static STATS_NAME_MAX]) {
        const char *s = *p, *e;

        while (*s == ' ' || *s == '\t')
                s++;
        for (e = s; *e && *e != ' ' && *e != '\t' && *e != stop; e++)
                ;
        if (e == s || (size_t) (e - s) >= STATS_NAME_MAX)
                return false;
        memcpy(name, s, (size_t) (e - s));
        name[e - s] = '\0';
        *p = e;
        return true;
}

static bool name_is(const char *name, const char *prefix) {
        size_t n = strlen(prefix);
        const char *p = name + n;

        if (strncmp(name, prefix, n) != 0 || !*p)
                return false;
        for (; *p; p++)
                if (*p < '0' || *p > '9')
                        return false;
        return true;
}

static bool disk_is_partition(const GlStatsCollector *c, const char *name) {
        char rel[STATS_NAME_MAX + 64], *path;
        bool r;

        /* sysfs spells the '/' of names like "cciss/c0d0" as '!' */
        snprintf(rel, sizeof(rel), "sys/class/block/%s/partition", name);
        for (char *s = rel + strlen("sys/class/block/"); *s && s < rel + strlen("sys/class/block/") + strlen(name); s++)
                if (*s == '/')
                        *s = '!';
        if (stats_path(c, rel, &path) < 0)
                return false;
        r = access(path, F_OK) == 0;
        free(path);
        return r;
}

/* Adds the four rates of e against base (when there is one). */
static void add_rates(StatsCtx *x, json_object *o, const StatsDevCounters *base, const StatsDevCounters *e,
                      const char *const members[4]) {
        for (unsigned i = 0; base && i < 4; i++) {
                double rate;

                if (stats_rate(x, base->v[i], e->v[i], &rate))
                        stats_add_number(&x->b, o, members[i], rate, 2);
        }
}

static const StatsSample *section_base(const StatsCtx *x, GlStatsSection s) {
        return x->prev && (x->prev->sections & STATS_BIT(s)) ? x->prev : NULL;
}

/* ---- disks ------------------------------------------------------------ */

void stats_collect_disks(StatsCtx *x) {
        static const char *const rates[4] = { "read_bytes_per_second", "write_bytes_per_second", "reads_per_second",
                                              "writes_per_second" };
        const StatsSample *base = section_base(x, GL_STATS_DISKS);
        StatsDevCounters *v = NULL;
        size_t n = 0, alloc = 0;
        char line[STATS_LINE_MAX];
        json_object *list;
        bool truncated = false;
        FILE *f;
        int r = 0;

        f = stats_fopen(x->c, "proc/diskstats");
        if (!f)
                return;
        for (unsigned i = 0; i < STATS_FILE_LINES_MAX; i++) {
                StatsDevCounters e = { 0 };
                uint64_t field[7];
                const char *p = line;

                r = stats_read_line(f, line, sizeof(line));
                if (r == -ENOBUFS)
                        continue;
                if (r <= 0)
                        break;
                /* major minor name reads merged sectors_read ms writes merged sectors_written ... */
                if (stats_parse_u64(&p, &field[0]) < 0 || stats_parse_u64(&p, &field[0]) < 0 ||
                    !take_name(&p, '\0', e.name))
                        continue;
                for (unsigned k = 0; k < 7; k++)
                        if (stats_parse_u64(&p, &field[k]) < 0)
                                goto next;
                if (name_is(e.name, "loop") || name_is(e.name, "ram") || name_is(e.name, "fd") ||
                    disk_is_partition(x->c, e.name))
                        continue;
                if (field[2] > UINT64_MAX / 512 || field[6] > UINT64_MAX / 512)
                        continue;
                if (n == GL_STATS_MAX_DISKS) {
                        truncated = true;
                        continue;
                }
                e.v[0] = field[2] * 512;
                e.v[1] = field[6] * 512;
                e.v[2] = field[0];
                e.v[3] = field[4];
                r = dev_push(&v, &n, &alloc, &e);
                if (r < 0)
                        break;
next:;
        }
        fclose(f);
        if (r == -ENOMEM || r == -EIO) {
                if (r == -ENOMEM)
                        x->b.r = r;
                free(v);
                return;
        }
        list = stats_array_new(&x->b);
        for (size_t i = 0; i < n; i++) {
                json_object *o = stats_object_new(&x->b);

                stats_add_string(&x->b, o, "name", v[i].name);
                stats_add_u64(&x->b, o, "read_bytes", v[i].v[0]);
                stats_add_u64(&x->b, o, "write_bytes", v[i].v[1]);
                stats_add_u64(&x->b, o, "reads", v[i].v[2]);
                stats_add_u64(&x->b, o, "writes", v[i].v[3]);
                if (base)
                        add_rates(x, o, dev_find(base->disks, base->n_disks, v[i].name), &v[i], rates);
                stats_append(&x->b, list, o);
        }
        stats_add(&x->b, x->root, "disks", list);
        if (truncated)
                x->truncated = true;
        x->cur->disks = v;
        x->cur->n_disks = n;
        x->cur->sections |= STATS_BIT(GL_STATS_DISKS);
}

/* ---- network ---------------------------------------------------------- */

void stats_collect_network(StatsCtx *x) {
        static const char *const rates[4] = { "rx_bytes_per_second", "tx_bytes_per_second", "rx_packets_per_second",
                                              "tx_packets_per_second" };
        const StatsSample *base = section_base(x, GL_STATS_NETWORK);
        StatsDevCounters *v = NULL;
        uint64_t(*field)[16] = NULL;
        size_t n = 0, alloc = 0;
        char line[STATS_LINE_MAX];
        json_object *list;
        bool truncated = false;
        FILE *f;
        int r = 0;

        f = stats_fopen(x->c, "proc/net/dev");
        if (!f)
                return;
        field = calloc(GL_STATS_MAX_INTERFACES, sizeof(*field));
        if (!field) {
                fclose(f);
                x->b.r = -ENOMEM;
                return;
        }
        for (unsigned i = 0; i < STATS_FILE_LINES_MAX; i++) {
                StatsDevCounters e = { 0 };
                uint64_t num[16];
                const char *p = line;

                r = stats_read_line(f, line, sizeof(line));
                if (r == -ENOBUFS)
                        continue;
                if (r <= 0)
                        break;
                /* "  eth0: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes tx_packets errs
                 * drop fifo colls carrier compressed"; the two header lines have no ':' after a name. */
                if (!take_name(&p, ':', e.name) || *p != ':')
                        continue;
                p++;
                for (unsigned k = 0; k < 16; k++)
                        if (stats_parse_u64(&p, &num[k]) < 0)
                                goto next;
                if (!stats_at_end(p))
                        continue;
                if (n == GL_STATS_MAX_INTERFACES) {
                        truncated = true;
                        continue;
                }
                e.v[0] = num[0];
                e.v[1] = num[8];
                e.v[2] = num[1];
                e.v[3] = num[9];
                memcpy(field[n], num, sizeof(num));
                r = dev_push(&v, &n, &alloc, &e);
                if (r < 0)
                        break;
next:;
        }
        fclose(f);
        if (r == -ENOMEM || r == -EIO) {
                if (r == -ENOMEM)
                        x->b.r = r;
                free(v);
                free(field);
                return;
        }
        list = stats_array_new(&x->b);
        for (size_t i = 0; i < n; i++) {
                json_object *o = stats_object_new(&x->b);

                stats_add_string(&x->b, o, "name", v[i].name);
                stats_add_u64(&x->b, o, "rx_bytes", field[i][0]);
                stats_add_u64(&x->b, o, "tx_bytes", field[i][8]);
                stats_add_u64(&x->b, o, "rx_packets", field[i][1]);
                stats_add_u64(&x->b, o, "tx_packets", field[i][9]);
                stats_add_u64(&x->b, o, "rx_errors", field[i][2]);
                stats_add_u64(&x->b, o, "tx_errors", field[i][10]);
                stats_add_u64(&x->b, o, "rx_dropped", field[i][3]);
                stats_add_u64(&x->b, o, "tx_dropped", field[i][11]);
                if (base)
                        add_rates(x, o, dev_find(base->interfaces, base->n_interfaces, v[i].name), &v[i], rates);
                stats_append(&x->b, list, o);
        }
        free(field);
        stats_add(&x->b, x->root, "network", list);
        if (truncated)
                x->truncated = true;
        x->cur->interfaces = v;
        x->cur->n_interfaces = n;
        x->cur->sections |= STATS_BIT(GL_STATS_NETWORK);
}

/* ---- power supplies --------------------------------------------------- */

/* Entries of /sys/class/power_supply read at most (the list keeps 32). */
#define STATS_POWER_SUPPLY_ENTRIES_MAX 1024u

static int read_attr(const GlStatsCollector *c, const char *supply, const char *attr, char *buf, size_t size) {
        char rel[STATS_NAME_MAX + 64];

        snprintf(rel, sizeof(rel), "sys/class/power_supply/%s/%s", supply, attr);
        return stats_read_small_file(c, rel, buf, size);
}

static const char *map_value(const char *v, const char *const (*table)[2], size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v, table[i][0]) == 0)
                        return table[i][1];
        return "unknown";
}

static void add_power_supply(StatsCtx *x, json_object *list, const char *name) {
        static const char *const types[][2] = {
                { "Mains", "mains" }, { "Battery", "battery" }, { "UPS", "ups" }, { "USB", "usb" }
        };
        static const char *const statuses[][2] = { { "Charging", "charging" },
                                                   { "Discharging", "discharging" },
                                                   { "Not charging", "not-charging" },
                                                   { "Full", "full" } };
        char buf[64];
        const char *type = "unknown", *p;
        uint64_t v;
        json_object *o;

        if (read_attr(x->c, name, "type", buf, sizeof(buf)) >= 0)
                type = map_value(buf, types, sizeof(types) / sizeof(types[0]));
        o = stats_object_new(&x->b);
        stats_add_string(&x->b, o, "name", name);
        stats_add_string(&x->b, o, "type", type);
        if ((strcmp(type, "mains") == 0 || strcmp(type, "usb") == 0) &&
            read_attr(x->c, name, "online", buf, sizeof(buf)) >= 0) {
                p = buf;
                if (stats_parse_u64(&p, &v) >= 0 && stats_at_end(p))
                        stats_add_bool(&x->b, o, "online", v != 0);
        }
        if (strcmp(type, "battery") == 0) {
                if (read_attr(x->c, name, "capacity", buf, sizeof(buf)) >= 0) {
                        p = buf;
                        if (stats_parse_u64(&p, &v) >= 0 && stats_at_end(p) && v <= 100)
                                stats_add_number(&x->b, o, "capacity_percent", (double) v, 0);
                }
                if (read_attr(x->c, name, "status", buf, sizeof(buf)) >= 0)
                        stats_add_string(&x->b, o, "status",
                                         map_value(buf, statuses, sizeof(statuses) / sizeof(statuses[0])));
        }
        stats_append(&x->b, list, o);
}

/* Supplies of peripherals (scope "Device") are not the guest's own. */
static bool power_supply_listed(const GlStatsCollector *c, const char *name) {
        char buf[64];

        return read_attr(c, name, "scope", buf, sizeof(buf)) < 0 || strcmp(buf, "Device") != 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

void stats_collect_power_supplies(StatsCtx *x) {
        char **names = NULL, *path;
        size_t n = 0;
        json_object *list;
        struct dirent *de;
        DIR *d;
        int r;

        r = stats_path(x->c, "sys/class/power_supply", &path);
        if (r < 0) {
                x->b.r = r;
                return;
        }
        d = opendir(path);
        free(path);
        if (!d)
                return; /* no power supply class: nothing to say */
        names = calloc(STATS_POWER_SUPPLY_ENTRIES_MAX, sizeof(*names));
        if (!names) {
                closedir(d);
                x->b.r = -ENOMEM;
                return;
        }
        while (n < STATS_POWER_SUPPLY_ENTRIES_MAX && (de = readdir(d))) {
                if (de->d_name[0] == '.' || strlen(de->d_name) >= STATS_NAME_MAX)
                        continue;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        x->b.r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp_str);
        list = stats_array_new(&x->b);
        for (size_t i = 0; i < n && x->b.r >= 0; i++) {
                if (!power_supply_listed(x->c, names[i]))
                        continue;
                if (json_object_array_length(list) == GL_STATS_MAX_POWER_SUPPLIES) {
                        x->truncated = true;
                        break;
                }
                add_power_supply(x, list, names[i]);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        stats_add(&x->b, x->root, "power_supplies", list);
}
