/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stats collector on fixture /proc and /sys trees (data/stats/<case>/)
 * and on the running system.
 *
 * Each case is one collector fed one or more samples (a fixture root each);
 * every sample's output is compared with data/stats/<case>/expected-<n>.json
 * (GL_UPDATE_GOLDEN=1 rewrites those: review the diff!) and with a list of
 * hand-computed values that do not depend on the golden files.
 *
 * statvfs() cannot be faked by a tree: each fixture root has fs-usage.txt
 * ("<mount point, escaped as in mountinfo> total free available bytes
 * [total free available inodes]"), which the fake below answers from.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include "stats-linux-private.h"
#include "stats.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlStatsCollector, gl_stats_collector_free)

#define BIT(s) (1u << GL_STATS_##s)

/* A JSON path ("cpu.per_cpu.0.id") and the value's JSON text; NULL value:
 * the member must be absent. */
typedef struct Check {
        const char *path, *value;
} Check;

typedef struct Sample {
        const char *root; /* under data/stats/ */
        uint64_t unix_us, mono_us;
        unsigned sections;  /* 0 = all */
        unsigned top;       /* top_processes; 0 = the default 5 */
        const char *golden; /* under data/stats/, NULL = none */
        Check checks[48];
} Sample;

typedef struct Case {
        const char *name;
        Sample samples[3];
} Case;

static const Case cases[] = {
        {
                "basic",
                { { "basic",
                    1700000000000000,
                    5000000,
                    0,
                    0,
                    "basic/expected-1.json",
                    {
                            { "time_unix_us", "1700000000000000" },
                            { "uptime_seconds", "12345.67" },
                            { "period_seconds", NULL },
                            { "cpu.count", "2" },
                            { "cpu.usage_percent", NULL }, /* first sample: no percentages */
                            { "cpu.per_cpu", NULL },
                            { "load.avg1", "0.52" },
                            { "load.avg15", "1.5" },
                            { "memory.total_bytes", "2097152000" }, /* 2048000 kB */
                            { "memory.free_bytes", "524288000" },
                            { "memory.available_bytes", "1048576000" },
                            { "memory.cached_bytes", "262144000" }, /* Cached, not SwapCached */
                            { "memory.buffers_bytes", "65536000" },
                            { "memory.swap_total_bytes", "1073741824" },
                            { "memory.swap_free_bytes", "536870912" },
                            { "processes.total", "123" },
                            { "processes.running", "3" },
                            { "processes.blocked", "1" },
                            { "pressure.cpu.some.avg10_percent", "1.5" },
                            { "pressure.cpu.some.total_us", "123456" },
                            { "pressure.io.full.avg300_percent", "3.0" },
                            { "pressure.memory.full.total_us", "500" },
                            { "filesystems.0.mount_point", "\"\\/\"" },
                            { "filesystems.0.device", "\"\\/dev\\/vda1\"" },
                            { "filesystems.0.available_inodes", "490000" },
                            { "filesystems.1.mount_point", "\"\\/run\"" },
                            { "filesystems.1.device", NULL }, /* "tmpfs" names nothing */
                            { "filesystems.2.mount_point", "\"\\/boot\"" },
                            { "filesystems.2.total_bytes", "536870912" },
                            { "filesystems.3", NULL },
                            { "disks.0.name", "\"vda\"" },
                            { "disks.0.read_bytes", "10240000" }, /* 20000 sectors */
                            { "disks.0.write_bytes", "5120000" },
                            { "disks.0.reads", "1000" },
                            { "disks.0.read_bytes_per_second", NULL },
                            { "disks.1.name", "\"sr0\"" }, /* partitions, loop, ram left out */
                            { "disks.2.name", "\"dm-0\"" },
                            { "disks.3", NULL },
                            { "network.1.name", "\"eth0\"" },
                            { "network.1.rx_errors", "1" },
                            { "network.1.tx_dropped", "4" },
                            { "power_supplies.0.online", "true" },
                            { "power_supplies.1.capacity_percent", "87.0" },
                            { "power_supplies.1.status", "\"discharging\"" },
                            { "power_supplies.2", NULL }, /* the mouse battery */
                            { "top_processes.by_cpu", NULL },
                            { "top_processes.by_memory.0.name", "\"bad\xef\xbf\xbd"
                                                                "name\"" },
                            { "top_processes.by_memory.0.rss_bytes", "20480000" },
                    } } },
        },
        {
                "basic-sections",
                { { "basic",
                    1,
                    1,
                    BIT(MEMORY) | BIT(LOAD),
                    0,
                    NULL,
                    {
                            { "memory.total_bytes", "2097152000" },
                            { "load.avg5", "0.58" },
                            { "cpu", NULL },
                            { "filesystems", NULL },
                            { "top_processes", NULL },
                    } },
                  /* the base of cpu is missing: no percentages; the clock did not advance: no period */
                  { "basic",
                    2,
                    1,
                    BIT(CPU) | BIT(TOP_PROCESSES),
                    2,
                    NULL,
                    {
                            { "period_seconds", NULL },
                            { "cpu.count", "2" },
                            { "cpu.usage_percent", NULL },
                            { "top_processes.by_memory.1.pid", "1" },
                            { "top_processes.by_memory.2", NULL },
                            { "memory", NULL },
                    } } },
        },
        {
                "old-kernel",
                { { "old-kernel",
                    10,
                    10,
                    0,
                    0,
                    "old-kernel/expected-1.json",
                    {
                            { "cpu.count", "1" },
                            { "memory.total_bytes", "527360000" },
                            { "memory.available_bytes", NULL },
                            { "memory.swap_total_bytes", "0" },
                            { "pressure", NULL },
                            { "power_supplies", NULL },
                            { "disks.1.name", "\"sda1\"" }, /* no /sys: partitions cannot be told */
                            { "network.0.rx_bytes", "1234567890" },
                            { "network.0.tx_bytes", "1234567890" },
                            { "top_processes.by_memory", "[]" },
                    } } },
        },
        {
                "no-swap",
                { { "no-swap",
                    10,
                    10,
                    0,
                    0,
                    "no-swap/expected-1.json",
                    {
                            { "memory.swap_total_bytes", "0" },
                            { "memory.swap_free_bytes", "0" },
                            { "pressure.cpu.some.total_us", "5" },
                            { "pressure.cpu.full", NULL },
                            { "pressure.io.full.total_us", "0" },
                            { "cpu", NULL },
                            { "load", NULL },
                            { "filesystems", NULL },
                    } } },
        },
        {
                "64cpu",
                { { "64cpu/sample1",
                    1000000,
                    1000000,
                    0,
                    0,
                    NULL,
                    {
                            { "cpu.count", "64" },
                            { "cpu.per_cpu", NULL },
                    } },
                  { "64cpu/sample2",
                    2000000,
                    2000000,
                    0,
                    0,
                    "64cpu/expected-2.json",
                    {
                            { "period_seconds", "1.0" },
                            { "cpu.count", "64" },
                            { "cpu.per_cpu.0.id", "0" },
                            { "cpu.per_cpu.0.usage_percent", "0.0" },
                            { "cpu.per_cpu.5.id", "6" }, /* cpu5 is offline */
                            { "cpu.per_cpu.5.usage_percent", "6.0" },
                            { "cpu.per_cpu.63.id", "64" },
                            { "cpu.per_cpu.63.usage_percent", "64.0" },
                            { "cpu.per_cpu.64", NULL },
                            { "cpu.usage_percent", "32.42" }, /* 2075 / 6400 */
                            { "cpu.user_percent", "32.42" },
                            { "cpu.truncated", NULL },
                    } } },
        },
        {
                "rates",
                { { "rates/sample1",
                    1000000000,
                    1000000,
                    0,
                    5,
                    "rates/expected-1.json",
                    {
                            { "top_processes.by_memory.0.pid", "60" },
                            { "top_processes.by_memory.0.cpu_percent", NULL },
                    } },
                  { "rates/sample2",
                    1000002000,
                    3000000,
                    0,
                    6,
                    "rates/expected-2.json",
                    {
                            { "period_seconds", "2.0" },
                            { "cpu.count", "3" },
                            { "cpu.usage_percent", "19.0" },
                            { "cpu.user_percent", "13.0" },
                            { "cpu.system_percent", "4.0" },
                            { "cpu.iowait_percent", "1.0" },
                            { "cpu.steal_percent", "2.0" },
                            { "cpu.per_cpu.0.usage_percent", "29.0" },
                            { "cpu.per_cpu.1.usage_percent", "9.0" },
                            { "cpu.per_cpu.2", NULL }, /* came online */
                            { "disks.0.read_bytes_per_second", "1024000.0" },
                            { "disks.0.write_bytes_per_second", "512000.0" },
                            { "disks.0.reads_per_second", "50.0" },
                            { "disks.0.writes_per_second", "50.0" },
                            { "disks.1.name", "\"sdb\"" },
                            { "disks.1.reads_per_second", NULL }, /* counter went back */
                            { "disks.2.name", "\"sdc\"" },
                            { "disks.2.reads_per_second", NULL }, /* new */
                            { "network.0.rx_bytes_per_second", "150000.0" },
                            { "network.0.tx_bytes_per_second", "50000.0" },
                            { "network.0.rx_packets_per_second", "150.0" },
                            { "network.0.tx_packets_per_second", "100.0" },
                            { "network.0.rx_errors", "1" },
                            { "network.1.rx_bytes_per_second", NULL },
                            { "top_processes.by_cpu.0.pid", "10" },
                            { "top_processes.by_cpu.0.cpu_percent", "75.0" },
                            { "top_processes.by_cpu.1.pid", "1" },
                            { "top_processes.by_cpu.1.cpu_percent", "50.0" },
                            { "top_processes.by_cpu.2.pid", "30" },
                            { "top_processes.by_cpu.2.cpu_percent", "20.0" },
                            { "top_processes.by_cpu.3.pid", "20" },
                            { "top_processes.by_cpu.3.name", "\"reused\"" },
                            { "top_processes.by_cpu.3.cpu_percent", "10.0" },
                            { "top_processes.by_cpu.4.pid", "60" },
                            { "top_processes.by_cpu.4.cpu_percent", "0.0" },
                            { "top_processes.by_cpu.5", NULL }, /* pid 40 has no base */
                            { "top_processes.by_cpu.6", NULL },
                            { "top_processes.by_memory.0.pid", "60" },
                            { "top_processes.by_memory.0.rss_bytes", "28672000" },
                            { "top_processes.by_memory.1.pid", "1" },
                            { "top_processes.by_memory.2.pid", "20" },
                            { "top_processes.by_memory.3.pid", "10" },
                            { "top_processes.by_memory.4.pid", "30" },
                            { "top_processes.by_memory.4.cpu_percent", "20.0" },
                            { "top_processes.by_memory.5.pid", "40" },
                            { "top_processes.by_memory.5.cpu_percent", NULL },
                            { "top_processes.by_memory.6", NULL },
                    } } },
        },
        {
                "odd-mounts",
                { { "odd-mounts",
                    1,
                    1,
                    BIT(FILESYSTEMS),
                    0,
                    "odd-mounts/expected-1.json",
                    {
                            { "filesystems.0.mount_point", "\"\\/\"" },
                            { "filesystems.1.mount_point", "\"\\/run\"" },
                            { "filesystems.2.mount_point", "\"\\/home\\/my documents\"" },
                            { "filesystems.3.mount_point", "\"\\/mnt\\/data\"" }, /* the tmpfs on top */
                            { "filesystems.3.type", "\"tmpfs\"" },
                            { "filesystems.4.mount_point", "\"\\/mnt\\/again\"" },
                            { "filesystems.5.mount_point", "\"\\/media\\/usb\"" },
                            { "filesystems.6.mount_point", "\"\\/btrfs\\/home\"" },
                            { "filesystems.6.total_inodes", NULL },
                            { "filesystems.7.total_bytes", "10000" }, /* the long path */
                            { "filesystems.8.mount_point", "\"\\/mnt\\/noinodes\"" },
                            { "filesystems.8.free_inodes", NULL },
                            { "filesystems.9.mount_point", "\"\\/mnt\\/caf\xc3\xa9\xef\xbf\xbd\"" },
                            { "filesystems.9.device", NULL },
                            { "filesystems.10", NULL },
                            { "truncated", NULL },
                    } } },
        },
        {
                "malformed",
                { { "malformed",
                    7,
                    7,
                    0,
                    0,
                    "malformed/expected-1.json",
                    {
                            { "uptime_seconds", NULL },
                            { "cpu", NULL },
                            { "load", NULL },
                            { "processes.total", NULL },
                            { "processes.running", NULL },
                            { "processes.blocked", "2" },
                            { "memory.total_bytes", "102400" },
                            { "memory.free_bytes", NULL },
                            { "memory.cached_bytes", NULL },
                            { "memory.buffers_bytes", NULL },
                            { "memory.swap_total_bytes", "0" },
                            { "memory.swap_free_bytes", NULL },
                            { "memory.available_bytes", NULL },
                            { "pressure.cpu", NULL },
                            { "pressure.memory", NULL },
                            { "pressure.io.some.avg10_percent", "0.25" },
                            { "pressure.io.some.total_us", "9223372036854775807" },
                            { "pressure.io.full", NULL },
                            { "filesystems.0.total_bytes", "100" },
                            { "filesystems.0.total_inodes", NULL },
                            { "filesystems.1", NULL },
                            { "disks.0.name", "\"vdb\"" },
                            { "disks.1", NULL },
                            { "network.0.name", "\"ens3\"" },
                            { "network.0.rx_dropped", "4" },
                            { "network.1", NULL },
                            { "power_supplies.0.name", "\"BAT1\"" },
                            { "power_supplies.0.capacity_percent", NULL },
                            { "power_supplies.0.status", "\"unknown\"" },
                            { "power_supplies.1.type", "\"ups\"" },
                            { "power_supplies.1.online", NULL },
                            { "power_supplies.2.type", "\"usb\"" },
                            { "power_supplies.2.online", NULL },
                            { "power_supplies.3.type", "\"unknown\"" },
                            { "power_supplies.3.online", NULL },
                            { "top_processes.by_memory.0.name", "\"ok\"" },
                            { "top_processes.by_memory.1", NULL },
                    } } },
        },
        {
                "missing-root",
                { { "does-not-exist",
                    42,
                    42,
                    0,
                    0,
                    NULL,
                    {
                            { "time_unix_us", "42" },
                            { "uptime_seconds", NULL },
                            { "cpu", NULL },
                            { "memory", NULL },
                            { "filesystems", NULL },
                            { "top_processes", NULL },
                    } } },
        },
};

/* sections: BIT()s, 0 = all; top: 0 = the default 5 */
static GlStatsQuery query(unsigned sections, unsigned top) {
        GlStatsQuery q = { .top_processes = top ? top : 5 };

        for (int s = 0; s < _GL_STATS_SECTION_MAX; s++)
                q.section[s] = sections == 0 || (sections & (1u << s));
        return q;
}

static char *data_path(const char *rel) {
        const char *dir = g_getenv("GL_TEST_DATA");

        g_assert_nonnull(dir);
        return g_build_filename(dir, "stats", rel, NULL);
}

/* ---- the statvfs() fake -------------------------------------------------- */

typedef struct FakeFs {
        char *root;
        GHashTable *usage; /* mount point -> StatsFsUsage */
        unsigned calls;
} FakeFs;

static void fake_fs_load(FakeFs *f, const char *root) {
        g_autofree char *file = g_build_filename(root, "fs-usage.txt", NULL);
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;

        g_free(f->root);
        f->root = g_strdup(root);
        if (f->usage)
                g_hash_table_remove_all(f->usage);
        else
                f->usage = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (!g_file_get_contents(file, &text, NULL, NULL))
                return;
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) w = NULL;
                StatsFsUsage *u;

                if (!**l || **l == '#')
                        continue;
                w = g_strsplit(*l, " ", -1);
                g_assert_true(g_strv_length(w) == 4 || g_strv_length(w) == 7);
                u = g_new0(StatsFsUsage, 1);
                u->total_bytes = g_ascii_strtoull(w[1], NULL, 10);
                u->free_bytes = g_ascii_strtoull(w[2], NULL, 10);
                u->available_bytes = g_ascii_strtoull(w[3], NULL, 10);
                if (g_strv_length(w) == 7) {
                        u->total_inodes = g_ascii_strtoull(w[4], NULL, 10);
                        u->free_inodes = g_ascii_strtoull(w[5], NULL, 10);
                        u->available_inodes = g_ascii_strtoull(w[6], NULL, 10);
                        u->have_inodes = u->total_inodes > 0;
                }
                g_hash_table_insert(f->usage, g_strcompress(w[0]), u);
        }
}

static int fake_fs_usage(const char *path, StatsFsUsage *ret, void *userdata) {
        FakeFs *f = userdata;
        const StatsFsUsage *u;
        size_t n = strlen(f->root);

        f->calls++;
        g_assert_true(strncmp(path, f->root, n) == 0);
        u = g_hash_table_lookup(f->usage, path + n);
        if (!u)
                return -ENOENT;
        *ret = *u;
        return 0;
}

/* ---- JSON paths ---------------------------------------------------------- */

static json_object *json_path(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);

        for (char **p = parts; *p && o; p++) {
                if (json_object_is_type(o, json_type_array)) {
                        guint64 i;

                        g_assert_true(g_ascii_string_to_unsigned(*p, 10, 0, G_MAXUINT, &i, NULL));
                        o = i < json_object_array_length(o) ? json_object_array_get_idx(o, i) : NULL;
                } else if (!json_object_object_get_ex(o, *p, &o))
                        o = NULL;
        }
        return o;
}

static void check_golden(json_object *got, const char *golden) {
        g_autofree char *path = data_path(golden);
        g_autoptr(json_object) want = NULL;
        const int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;

        if (g_getenv("GL_UPDATE_GOLDEN"))
                g_assert_cmpint(json_object_to_file_ext(path, got, flags), ==, 0);
        want = json_object_from_file(path);
        g_assert_nonnull(want);
        if (!json_object_equal(got, want)) {
                g_test_message("got:\n%s", json_object_to_json_string_ext(got, flags));
                g_test_message("want (%s):\n%s", golden, json_object_to_json_string_ext(want, flags));
                g_test_fail();
        }
}

static void run_case(gconstpointer data) {
        const Case *t = data;
        g_autoptr(GlStatsCollector) c = NULL;
        FakeFs fake = { 0 };

        for (unsigned s = 0; s < G_N_ELEMENTS(t->samples) && t->samples[s].root; s++) {
                const Sample *sm = &t->samples[s];
                g_autofree char *root = data_path(sm->root);
                GlStatsQuery q = query(sm->sections, sm->top);
                g_autoptr(json_object) got = NULL;

                if (!c) {
                        c = gl_stats_collector_new(root);
                        g_assert_nonnull(c);
                        stats_collector_set_sysconf(c, 4096, 100);
                        stats_collector_set_fs_usage(c, fake_fs_usage, &fake);
                } else
                        g_assert_cmpint(stats_collector_set_root(c, root), ==, 0);
                fake_fs_load(&fake, root);
                g_assert_cmpint(gl_stats_collect(c, sm->unix_us, sm->mono_us, &q, &got), ==, 0);
                g_assert_nonnull(got);
                g_test_message("%s sample %u: %s", t->name, s + 1,
                               json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
                if (sm->golden)
                        check_golden(got, sm->golden);
                for (const Check *k = sm->checks; k < sm->checks + G_N_ELEMENTS(sm->checks) && k->path; k++) {
                        json_object *v = json_path(got, k->path);

                        if (!k->value) {
                                if (v)
                                        g_test_message("%s: %s should be absent", t->name, k->path);
                                g_assert_null(v);
                                continue;
                        }
                        if (!v)
                                g_test_message("%s: %s missing", t->name, k->path);
                        g_assert_nonnull(v);
                        g_assert_cmpstr(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), ==, k->value);
                }
        }
        g_free(fake.root);
        if (fake.usage)
                g_hash_table_destroy(fake.usage);
}

/* ---- bounds: lists longer than PROTOCOL.md allows ------------------------ */

static void write_file(const char *dir, const char *rel, const char *text) {
        g_autofree char *path = g_build_filename(dir, rel, NULL);
        g_autofree char *parent = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void remove_tree(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(path, name, NULL);

                if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(p);
                else
                        g_assert_cmpint(g_unlink(p), ==, 0);
        }
        g_assert_cmpint(g_rmdir(path), ==, 0);
}

static void write_bounds_tree(const char *dir, unsigned sample) {
        g_autoptr(GString) stat = g_string_new("cpu  0 0 0 0\n");
        g_autoptr(GString) disks = g_string_new(NULL);
        g_autoptr(GString) net = g_string_new("Inter-|\n face |\n");
        g_autoptr(GString) mounts = g_string_new(NULL);
        g_autoptr(GString) usage = g_string_new(NULL);

        g_string_printf(stat, "cpu  %u 0 0 %u\n", 1100 * sample, 1100 * sample);
        for (unsigned i = 0; i < 1100; i++)
                g_string_append_printf(stat, "cpu%u %u 0 0 %u\n", i, sample, sample);
        for (unsigned i = 0; i < 300; i++) {
                g_string_append_printf(disks, "8 %u vd%u 1 0 2 0 3 0 4 0 0 0 0\n", i, i);
                g_string_append_printf(net, "if%u: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", i);
                g_string_append_printf(mounts, "%u 1 1:%u / /m/%u rw - ext4 /dev/vd%u rw\n", i + 10, i, i, i);
                g_string_append_printf(usage, "/m/%u 1000 500 400\n", i);
        }
        for (unsigned i = 0; i < 40; i++) {
                g_autofree char *rel = g_strdup_printf("sys/class/power_supply/BAT%02u/type", i);

                write_file(dir, rel, "Battery\n");
        }
        write_file(dir, "proc/stat", stat->str);
        write_file(dir, "proc/diskstats", disks->str);
        write_file(dir, "proc/net/dev", net->str);
        write_file(dir, "proc/self/mountinfo", mounts->str);
        write_file(dir, "fs-usage.txt", usage->str);
}

static void test_bounds(void) {
        g_autofree char *dir = g_dir_make_tmp("gl-stats-XXXXXX", NULL);
        g_autoptr(GlStatsCollector) c = NULL;
        g_autoptr(json_object) first = NULL, second = NULL;
        GlStatsQuery o = query(0, 0);
        FakeFs fake = { 0 };

        g_assert_nonnull(dir);
        write_bounds_tree(dir, 1);
        c = gl_stats_collector_new(dir);
        g_assert_nonnull(c);
        fake_fs_load(&fake, dir);
        stats_collector_set_fs_usage(c, fake_fs_usage, &fake);
        g_assert_cmpint(gl_stats_collect(c, 1, 1000000, &o, &first), ==, 0);
        write_bounds_tree(dir, 2);
        g_assert_cmpint(gl_stats_collect(c, 2, 2000000, &o, &second), ==, 0);

        g_assert_cmpint(json_object_get_int(json_path(second, "cpu.count")), ==, 1100);
        g_assert_cmpuint(json_object_array_length(json_path(second, "cpu.per_cpu")), ==, GL_STATS_MAX_CPUS);
        g_assert_true(json_object_get_boolean(json_path(second, "cpu.truncated")));
        g_assert_cmpstr(json_object_get_string(json_path(second, "cpu.per_cpu.1023.usage_percent")), ==, "50.0");
        g_assert_cmpuint(json_object_array_length(json_path(second, "disks")), ==, GL_STATS_MAX_DISKS);
        g_assert_cmpuint(json_object_array_length(json_path(second, "network")), ==, GL_STATS_MAX_INTERFACES);
        g_assert_cmpuint(json_object_array_length(json_path(second, "filesystems")), ==, GL_STATS_MAX_FILESYSTEMS);
        g_assert_cmpstr(json_object_get_string(json_path(second, "filesystems.255.mount_point")), ==, "/m/255");
        g_assert_cmpuint(json_object_array_length(json_path(second, "power_supplies")), ==,
                         GL_STATS_MAX_POWER_SUPPLIES);
        g_assert_cmpstr(json_object_get_string(json_path(second, "power_supplies.31.name")), ==, "BAT31");
        g_assert_true(json_object_get_boolean(json_path(second, "truncated")));
        /* the first sample has no per_cpu list, hence no cpu.truncated, but the other lists are cut */
        g_assert_null(json_path(first, "cpu.truncated"));
        g_assert_true(json_object_get_boolean(json_path(first, "truncated")));

        remove_tree(dir);
        g_free(fake.root);
        g_hash_table_destroy(fake.usage);
}

/* ---- smaller pieces ------------------------------------------------------ */

static void test_numbers(void) {
        static const struct {
                double v;
                unsigned decimals;
                const char *text;
        } t[] = {
                { 0, 2, "0.0" },           { 50, 2, "50.0" },
                { 100.0 / 3, 2, "33.33" }, { 200.0 / 3, 2, "66.67" },
                { 0.005, 2, "0.01" },      { 0.004, 2, "0.0" },
                { 1.5, 0, "2.0" },         { 12345.67, 2, "12345.67" },
                { 2.6e-6, 6, "0.000003" }, { 1e300, 2, "1.0000000000000001e+300" },
                { -1.25, 2, "-1.25" },     { -0.001, 2, "0.0" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
                g_autoptr(json_object) o = json_object_new_object();
                StatsBuild b = { 0 };

                stats_add_number(&b, o, "v", t[i].v, t[i].decimals);
                g_assert_cmpint(b.r, ==, 0);
                g_assert_cmpstr(json_object_to_json_string_ext(json_object_object_get(o, "v"), 0), ==, t[i].text);
        }
        {
                g_autoptr(json_object) o = json_object_new_object();
                StatsBuild b = { 0 };

                stats_add_number(&b, o, "nan", 0.0 / 0.0, 2);
                stats_add_number(&b, o, "inf", 1.0 / 0.0, 2);
                g_assert_cmpint(b.r, ==, 0);
                g_assert_cmpint(json_object_object_length(o), ==, 0);
        }
}

static void test_utf8(void) {
        static const struct {
                const char *in, *out;
        } t[] = {
                { "", "" },
                { "plain", "plain" },
                { "caf\xc3\xa9", "caf\xc3\xa9" },
                { "\xff", "\xef\xbf\xbd" },
                { "a\xc0\xaf", "a\xef\xbf\xbd\xef\xbf\xbd" },                               /* overlong '/' */
                { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },                 /* surrogate */
                { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* > U+10FFFF */
                { "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
                { "x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd" }, /* truncated */
        };

        for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
                g_autofree char *s = stats_utf8_sanitize(t[i].in, strlen(t[i].in));

                g_assert_cmpstr(s, ==, t[i].out);
                g_assert_true(g_utf8_validate(s, -1, NULL));
        }
}

static void test_parsers(void) {
        static const struct {
                const char *in;
                int r;
                double v;
                const char *rest;
        } d[] = {
                { "0.52 x", 0, 0.52, " x" }, { "  12345.67", 0, 12345.67, "" },
                { "7", 0, 7, "" },           { "1.", -EINVAL, 0, NULL },
                { ".5", -EINVAL, 0, NULL },  { "-1", -EINVAL, 0, NULL },
                { "", -EINVAL, 0, NULL },    { "0.1234567891234", 0, 0.123456789, "" },
        };
        static const struct {
                const char *in;
                int r;
                uint64_t v;
        } u[] = {
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { "\t 42kB", 0, 42 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(d); i++) {
                const char *p = d[i].in;
                double v = -1;

                g_assert_cmpint(stats_parse_double(&p, &v), ==, d[i].r);
                if (d[i].r == 0) {
                        g_assert_cmpfloat(v, ==, d[i].v);
                        g_assert_cmpstr(p, ==, d[i].rest);
                } else
                        g_assert_true(p == d[i].in);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(u); i++) {
                const char *p = u[i].in;
                uint64_t v = 0;

                g_assert_cmpint(stats_parse_u64(&p, &v), ==, u[i].r);
                if (u[i].r == 0)
                        g_assert_cmpuint(v, ==, u[i].v);
        }
}

static void test_read_line(void) {
        g_autofree char *dir = g_dir_make_tmp("gl-stats-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "f", NULL);
        g_autoptr(GString) text = g_string_new("short\n");
        char buf[16];
        FILE *f;

        g_string_append(text, "0123456789abcdefXYZ\nafter\nno-newline");
        g_assert_true(g_file_set_contents(path, text->str, -1, NULL));
        f = fopen(path, "re");
        g_assert_nonnull(f);
        g_assert_cmpint(stats_read_line(f, buf, sizeof(buf)), ==, 1);
        g_assert_cmpstr(buf, ==, "short");
        g_assert_cmpint(stats_read_line(f, buf, sizeof(buf)), ==, -ENOBUFS);
        g_assert_cmpint(stats_read_line(f, buf, sizeof(buf)), ==, 1);
        g_assert_cmpstr(buf, ==, "after");
        g_assert_cmpint(stats_read_line(f, buf, sizeof(buf)), ==, 1);
        g_assert_cmpstr(buf, ==, "no-newline");
        g_assert_cmpint(stats_read_line(f, buf, sizeof(buf)), ==, 0);
        fclose(f);
        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_invalid(void) {
        g_autofree char *root = data_path("basic");
        g_autoptr(GlStatsCollector) c = gl_stats_collector_new(root);
        GlStatsQuery o = query(0, 0);
        json_object *j = NULL;

        g_assert_null(gl_stats_collector_new(NULL));
        g_assert_null(gl_stats_collector_new("relative/path"));
        g_assert_null(gl_stats_collector_free(NULL));
        g_assert_nonnull(c);
        g_assert_cmpint(gl_stats_collect(NULL, 0, 0, &o, &j), ==, -EINVAL);
        g_assert_cmpint(gl_stats_collect(c, 0, 0, NULL, &j), ==, -EINVAL);
        g_assert_cmpint(gl_stats_collect(c, 0, 0, &o, NULL), ==, -EINVAL);
        o.top_processes = GL_STATS_MAX_TOP_PROCESSES + 1;
        g_assert_cmpint(gl_stats_collect(c, 0, 0, &o, &j), ==, -EINVAL);
        g_assert_null(j);
        g_assert_cmpint(stats_collector_set_root(c, "relative"), ==, -EINVAL);
}

/* ---- the running system -------------------------------------------------- */

/* Every number in the tree is >= 0; every *_percent is <= 100 (except the
 * per-process one, which is percent of one CPU). */
static void check_sane(json_object *o, const char *key) {
        if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, k, v) check_sane(v, k);
        } else if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        check_sane(json_object_array_get_idx(o, i), key);
        } else if (json_object_is_type(o, json_type_int)) {
                g_assert_cmpint(json_object_get_int64(o), >=, 0);
        } else if (json_object_is_type(o, json_type_double)) {
                g_assert_cmpfloat(json_object_get_double(o), >=, 0.0);
                if (g_str_has_suffix(key, "_percent") && strcmp(key, "cpu_percent") != 0)
                        g_assert_cmpfloat(json_object_get_double(o), <=, 100.0);
        } else if (json_object_is_type(o, json_type_string)) {
                g_assert_true(g_utf8_validate(json_object_get_string(o), -1, NULL));
        }
}

static uint64_t meminfo_total_bytes(void) {
        g_autofree char *text = NULL;
        const char *p;

        g_assert_true(g_file_get_contents("/proc/meminfo", &text, NULL, NULL));
        p = strstr(text, "MemTotal:");
        g_assert_nonnull(p);
        return g_ascii_strtoull(p + strlen("MemTotal:"), NULL, 10) * 1024;
}

static void test_real_system(void) {
        g_autoptr(GlStatsCollector) c = gl_stats_collector_new("/");
        g_autoptr(json_object) first = NULL, second = NULL, reparsed = NULL;
        GlStatsQuery o = query(0, 0);
        json_object *fs;
        long online = sysconf(_SC_NPROCESSORS_ONLN);

        g_assert_nonnull(c);
        g_assert_cmpint(
                gl_stats_collect(c, (uint64_t) g_get_real_time(), (uint64_t) g_get_monotonic_time(), &o, &first), ==,
                0);
        g_usleep(200 * 1000);
        g_assert_cmpint(
                gl_stats_collect(c, (uint64_t) g_get_real_time(), (uint64_t) g_get_monotonic_time(), &o, &second), ==,
                0);
        g_test_message("%s", json_object_to_json_string_ext(second, JSON_C_TO_STRING_PRETTY));
        check_sane(first, "");
        check_sane(second, "");
        g_assert_cmpuint((uint64_t) json_object_get_int64(json_path(second, "memory.total_bytes")), ==,
                         meminfo_total_bytes());
        g_assert_cmpint(json_object_get_int(json_path(second, "cpu.count")), ==, online);
        g_assert_nonnull(json_path(second, "cpu.usage_percent"));
        g_assert_cmpfloat(json_object_get_double(json_path(second, "period_seconds")), >=, 0.2);
        g_assert_cmpuint(json_object_array_length(json_path(second, "cpu.per_cpu")), <=, (size_t) online);
        g_assert_cmpfloat(json_object_get_double(json_path(second, "uptime_seconds")), >, 0.0);
        g_assert_nonnull(json_path(second, "load.avg1"));
        g_assert_cmpint(json_object_get_int(json_path(second, "processes.total")), >, 0);
        /* this test process is one of the processes seen */
        g_assert_nonnull(json_path(second, "top_processes.by_memory.0.rss_bytes"));
        fs = json_path(second, "filesystems");
        g_assert_nonnull(fs);
        for (size_t i = 0; i < json_object_array_length(fs); i++) {
                json_object *e = json_object_array_get_idx(fs, i);

                g_assert_cmpint(json_object_get_int64(json_path(e, "available_bytes")), <=,
                                json_object_get_int64(json_path(e, "total_bytes")));
                g_assert_cmpint(json_object_get_int64(json_path(e, "free_bytes")), <=,
                                json_object_get_int64(json_path(e, "total_bytes")));
        }
        /* what goes on the wire parses back to the same object */
        reparsed = json_tokener_parse(json_object_to_json_string_ext(second, JSON_C_TO_STRING_PLAIN));
        g_assert_nonnull(reparsed);
        g_assert_true(json_object_equal(second, reparsed));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *name = g_strdup_printf("/stats/fixture/%s", cases[i].name);

                g_test_add_data_func(name, &cases[i], run_case);
        }
        g_test_add_func("/stats/bounds", test_bounds);
        g_test_add_func("/stats/numbers", test_numbers);
        g_test_add_func("/stats/utf8", test_utf8);
        g_test_add_func("/stats/parsers", test_parsers);
        g_test_add_func("/stats/read-line", test_read_line);
        g_test_add_func("/stats/invalid", test_invalid);
        g_test_add_func("/stats/real-system", test_real_system);
        return g_test_run();
}
