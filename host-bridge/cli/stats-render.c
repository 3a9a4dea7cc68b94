/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "stats-render.h"

#include <stdlib.h>

#include "output.h"

#define LABEL_WIDTH 13

static void line(FILE *f, const char *label, const char *text) {
        fprintf(f, "%-*s%s\n", LABEL_WIDTH, label, text);
}

static char *opt_percent(json_object *o, const char *path) {
        double v;

        return output_get_double(o, path, &v) ? output_percent(v) : NULL;
}

static void print_header(FILE *f, json_object *s) {
        g_autoptr(GString) t = g_string_new(NULL);
        int64_t when;
        double v;

        if (output_get_int(s, "time_unix_us", &when)) {
                g_autofree char *w = output_time(when);
                g_string_append(t, w);
        }
        if (output_get_double(s, "uptime_seconds", &v)) {
                g_autofree char *u = output_duration(v);
                g_string_append_printf(t, "%suptime %s", t->len ? ", " : "", u);
        }
        if (output_get_double(s, "period_seconds", &v))
                g_string_append_printf(t, "%speriod %.1fs", t->len ? ", " : "", v);
        line(f, "Sample:", t->str);
}

static int cmp_cpu(const void *a, const void *b) {
        double x, y;

        if (!output_get_double(*(json_object *const *) a, "usage_percent", &x))
                x = -1;
        if (!output_get_double(*(json_object *const *) b, "usage_percent", &y))
                y = -1;
        return x < y ? 1 : x > y ? -1 : 0;
}

static void print_cpu(FILE *f, json_object *s) {
        static const char *const parts[][2] = {
                { "user", "cpu.user_percent" },
                { "system", "cpu.system_percent" },
                { "iowait", "cpu.iowait_percent" },
                { "steal", "cpu.steal_percent" },
        };
        g_autoptr(GString) t = g_string_new(NULL);
        json_object *per_cpu = output_get_array(s, "cpu.per_cpu");
        g_autofree char *total = opt_percent(s, "cpu.usage_percent");
        bool any = false;
        int64_t count;

        if (!output_get(s, "cpu"))
                return;
        if (output_get_int(s, "cpu.count", &count))
                g_string_append_printf(t, "%" G_GINT64_FORMAT " CPU%s, ", count, count == 1 ? "" : "s");
        g_string_append(t, total ? total : "-");
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
                g_autofree char *p = opt_percent(s, parts[i][1]);

                if (!p)
                        continue;
                g_string_append_printf(t, "%s%s %s", any ? ", " : " (", parts[i][0], p);
                any = true;
        }
        if (any)
                g_string_append_c(t, ')');
        line(f, "CPU:", t->str);
        if (per_cpu && json_object_array_length(per_cpu) > 1) {
                size_t n = json_object_array_length(per_cpu);
                g_autofree json_object **v = g_new(json_object *, n);
                g_autoptr(GString) top = g_string_new(NULL);

                for (size_t i = 0; i < n; i++)
                        v[i] = json_object_array_get_idx(per_cpu, i);
                qsort(v, n, sizeof(*v), cmp_cpu);
                for (size_t i = 0; i < MIN(n, (size_t) STATS_TOP_CPUS); i++) {
                        int64_t id;
                        double u;

                        if (!output_get_int(v[i], "id", &id) || !output_get_double(v[i], "usage_percent", &u))
                                continue;
                        g_string_append_printf(top, "%scpu%" G_GINT64_FORMAT " %.1f%%", top->len ? ", " : "", id, u);
                }
                line(f, "", top->str);
        }
}

static void print_memory(FILE *f, json_object *s) {
        int64_t total, avail, free_b, cached, buffers, swap_total, swap_free;

        if (output_get_int(s, "memory.total_bytes", &total) && output_get_int(s, "memory.available_bytes", &avail)) {
                g_autofree char *used_t = output_bytes((uint64_t) MAX(total - avail, 0));
                g_autofree char *total_t = output_bytes((uint64_t) total);
                g_autofree char *avail_t = output_bytes((uint64_t) avail);
                g_autofree char *pct = output_percent(total > 0 ? 100.0 * (double) (total - avail) / (double) total
                                                                : 0);
                g_autoptr(GString) t = g_string_new(NULL);

                g_string_printf(t, "%s used of %s (%s), %s available", used_t, total_t, pct, avail_t);
                if (output_get_int(s, "memory.free_bytes", &free_b)) {
                        g_autofree char *x = output_bytes((uint64_t) free_b);
                        g_string_append_printf(t, ", %s free", x);
                }
                if (output_get_int(s, "memory.cached_bytes", &cached)) {
                        g_autofree char *x = output_bytes((uint64_t) cached);
                        g_string_append_printf(t, ", %s cached", x);
                }
                if (output_get_int(s, "memory.buffers_bytes", &buffers)) {
                        g_autofree char *x = output_bytes((uint64_t) buffers);
                        g_string_append_printf(t, ", %s buffers", x);
                }
                line(f, "Memory:", t->str);
        }
        if (output_get_int(s, "memory.swap_total_bytes", &swap_total) &&
            output_get_int(s, "memory.swap_free_bytes", &swap_free)) {
                g_autofree char *used_t = output_bytes((uint64_t) MAX(swap_total - swap_free, 0));
                g_autofree char *total_t = output_bytes((uint64_t) swap_total);
                g_autofree char *pct = output_percent(
                        swap_total > 0 ? 100.0 * (double) (swap_total - swap_free) / (double) swap_total : 0);
                g_autofree char *t = swap_total > 0 ? g_strdup_printf("%s used of %s (%s)", used_t, total_t, pct)
                                                    : g_strdup("none");

                line(f, "Swap:", t);
        }
}

static void print_load_processes(FILE *f, json_object *s) {
        double a1, a5, a15;
        int64_t total, running, blocked;

        if (output_get_double(s, "load.avg1", &a1) && output_get_double(s, "load.avg5", &a5) &&
            output_get_double(s, "load.avg15", &a15)) {
                g_autofree char *t = g_strdup_printf("%.2f %.2f %.2f", a1, a5, a15);
                line(f, "Load:", t);
        }
        if (output_get_int(s, "processes.total", &total)) {
                g_autoptr(GString) t = g_string_new(NULL);

                g_string_printf(t, "%" G_GINT64_FORMAT " total", total);
                if (output_get_int(s, "processes.running", &running))
                        g_string_append_printf(t, ", %" G_GINT64_FORMAT " running", running);
                if (output_get_int(s, "processes.blocked", &blocked))
                        g_string_append_printf(t, ", %" G_GINT64_FORMAT " blocked", blocked);
                line(f, "Processes:", t->str);
        }
}

static void print_pressure(FILE *f, json_object *s) {
        static const char *const resources[] = { "cpu", "memory", "io" };
        g_autoptr(GString) t = g_string_new(NULL);

        for (size_t i = 0; i < G_N_ELEMENTS(resources); i++) {
                static const char *const kinds[] = { "some", "full" };

                for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
                        g_autofree char *path = g_strdup_printf("pressure.%s.%s", resources[i], kinds[k]);
                        json_object *p = output_get(s, path);
                        double a10, a60, a300;

                        if (!p || !output_get_double(p, "avg10_percent", &a10) ||
                            !output_get_double(p, "avg60_percent", &a60) ||
                            !output_get_double(p, "avg300_percent", &a300))
                                continue;
                        g_string_append_printf(t, "%s%s %s %.1f%% %.1f%% %.1f%%", t->len ? "; " : "", resources[i],
                                               kinds[k], a10, a60, a300);
                }
        }
        if (t->len)
                line(f, "Pressure:", t->str);
}

static void add_bytes(OutputTable *t, json_object *o, const char *member) {
        int64_t v;

        output_table_take(t, output_get_int(o, member, &v) ? output_bytes((uint64_t) MAX(v, 0)) : NULL);
}

static void add_rate(OutputTable *t, json_object *o, const char *member) {
        double v;

        output_table_take(t, output_get_double(o, member, &v) ? output_rate(v) : NULL);
}

static void print_filesystems(FILE *f, json_object *s) {
        json_object *a = output_get_array(s, "filesystems");
        g_autoptr(OutputTable)
                t = output_table_new("MOUNT", "TYPE", "DEVICE", ">SIZE", ">USED", ">AVAIL", ">USE%", NULL);

        if (!a || json_object_array_length(a) == 0)
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *fs = json_object_array_get_idx(a, i);
                int64_t total = 0, free_b = 0;

                output_table_add(t, output_get_string(fs, "mount_point"));
                output_table_add(t, output_get_string(fs, "type"));
                output_table_add(t, output_get_string(fs, "device"));
                add_bytes(t, fs, "total_bytes");
                if (output_get_int(fs, "total_bytes", &total) && output_get_int(fs, "free_bytes", &free_b)) {
                        output_table_take(t, output_bytes((uint64_t) MAX(total - free_b, 0)));
                        add_bytes(t, fs, "available_bytes");
                        output_table_take(
                                t, output_percent(total > 0 ? 100.0 * (double) (total - free_b) / (double) total : 0));
                } else {
                        output_table_add(t, NULL);
                        add_bytes(t, fs, "available_bytes");
                        output_table_add(t, NULL);
                }
        }
        fprintf(f, "\nFilesystems:\n");
        output_table_print(t, f, 2);
}

static void print_disks(FILE *f, json_object *s) {
        json_object *a = output_get_array(s, "disks");
        g_autoptr(OutputTable) t = output_table_new("NAME", ">READ", ">WRITTEN", ">READ/S", ">WRITE/S", NULL);

        if (!a || json_object_array_length(a) == 0)
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *d = json_object_array_get_idx(a, i);

                output_table_add(t, output_get_string(d, "name"));
                add_bytes(t, d, "read_bytes");
                add_bytes(t, d, "write_bytes");
                add_rate(t, d, "read_bytes_per_second");
                add_rate(t, d, "write_bytes_per_second");
        }
        fprintf(f, "\nDisks:\n");
        output_table_print(t, f, 2);
}

static void print_network(FILE *f, json_object *s) {
        json_object *a = output_get_array(s, "network");
        g_autoptr(OutputTable)
                t = output_table_new("NAME", ">RX", ">TX", ">RX/S", ">TX/S", ">ERRORS", ">DROPPED", NULL);

        if (!a || json_object_array_length(a) == 0)
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *n = json_object_array_get_idx(a, i);
                int64_t rx = 0, tx = 0, rd = 0, td = 0;

                output_table_add(t, output_get_string(n, "name"));
                add_bytes(t, n, "rx_bytes");
                add_bytes(t, n, "tx_bytes");
                add_rate(t, n, "rx_bytes_per_second");
                add_rate(t, n, "tx_bytes_per_second");
                (void) output_get_int(n, "rx_errors", &rx);
                (void) output_get_int(n, "tx_errors", &tx);
                (void) output_get_int(n, "rx_dropped", &rd);
                (void) output_get_int(n, "tx_dropped", &td);
                output_table_addf(t, "%" G_GINT64_FORMAT, rx + tx);
                output_table_addf(t, "%" G_GINT64_FORMAT, rd + td);
        }
        fprintf(f, "\nNetwork:\n");
        output_table_print(t, f, 2);
}

static void print_power_supplies(FILE *f, json_object *s) {
        json_object *a = output_get_array(s, "power_supplies");
        g_autoptr(OutputTable) t = output_table_new("NAME", "TYPE", "STATUS", ">CAPACITY", "ONLINE", NULL);

        if (!a || json_object_array_length(a) == 0)
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *p = json_object_array_get_idx(a, i);
                bool online;

                output_table_add(t, output_get_string(p, "name"));
                output_table_add(t, output_get_string(p, "type"));
                output_table_add(t, output_get_string(p, "status"));
                output_table_take(t, opt_percent(p, "capacity_percent"));
                output_table_add(t, output_get_bool(p, "online", &online) ? (online ? "yes" : "no") : NULL);
        }
        fprintf(f, "\nPower supplies:\n");
        output_table_print(t, f, 2);
}

static void print_top(FILE *f, json_object *s, const char *path, const char *title) {
        json_object *a = output_get_array(s, path);
        g_autoptr(OutputTable) t = output_table_new(">PID", "NAME", ">CPU%", ">RSS", NULL);

        if (!a || json_object_array_length(a) == 0)
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *p = json_object_array_get_idx(a, i);
                int64_t pid;

                if (output_get_int(p, "pid", &pid))
                        output_table_addf(t, "%" G_GINT64_FORMAT, pid);
                else
                        output_table_add(t, NULL);
                output_table_add(t, output_get_string(p, "name"));
                output_table_take(t, opt_percent(p, "cpu_percent"));
                add_bytes(t, p, "rss_bytes");
        }
        fprintf(f, "\n%s:\n", title);
        output_table_print(t, f, 2);
}

void stats_print(FILE *f, json_object *s) {
        print_header(f, s);
        print_cpu(f, s);
        print_load_processes(f, s);
        print_memory(f, s);
        print_pressure(f, s);
        print_filesystems(f, s);
        print_disks(f, s);
        print_network(f, s);
        print_power_supplies(f, s);
        print_top(f, s, "top_processes.by_cpu", "Top processes by CPU");
        print_top(f, s, "top_processes.by_memory", "Top processes by memory");
}

/* Sum of a rate member over an array (disks, network); NULL if none has it. */
static char *sum_rate(json_object *s, const char *array, const char *member) {
        json_object *a = output_get_array(s, array);
        double sum = 0, v;
        bool any = false;

        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                if (output_get_double(json_object_array_get_idx(a, i), member, &v)) {
                        sum += v;
                        any = true;
                }
        }
        return any ? output_rate(sum) : NULL;
}

void stats_print_history(FILE *f, json_object *samples) {
        g_autoptr(OutputTable) t = output_table_new("TIME", ">CPU", ">MEM USED", ">LOAD1", ">DISK R/S", ">DISK W/S",
                                                    ">NET RX/S", ">NET TX/S", NULL);
        size_t n = samples ? json_object_array_length(samples) : 0;

        if (n == 0) {
                fprintf(f, "No samples.\n");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(samples, i);
                int64_t when, total, avail;
                double load;

                output_table_take(t, output_get_int(s, "time_unix_us", &when) ? output_time(when) : NULL);
                output_table_take(t, opt_percent(s, "cpu.usage_percent"));
                output_table_take(t, output_get_int(s, "memory.total_bytes", &total) &&
                                                     output_get_int(s, "memory.available_bytes", &avail)
                                             ? output_bytes((uint64_t) MAX(total - avail, 0))
                                             : NULL);
                output_table_take(t, output_get_double(s, "load.avg1", &load) ? g_strdup_printf("%.2f", load) : NULL);
                output_table_take(t, sum_rate(s, "disks", "read_bytes_per_second"));
                output_table_take(t, sum_rate(s, "disks", "write_bytes_per_second"));
                output_table_take(t, sum_rate(s, "network", "rx_bytes_per_second"));
                output_table_take(t, sum_rate(s, "network", "tx_bytes_per_second"));
        }
        output_table_print(t, f, 0);
}
