/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The `filesystems` section: /proc/self/mountinfo plus statvfs().
 *
 * Which mounts are listed (PROTOCOL.md: "pseudo file systems and repeated
 * mounts of one device excluded"), in this order:
 *
 *  1. Lines that do not parse, and mount points of PATH_MAX bytes or more
 *     (decoded), are skipped.  At most STATS_MOUNTS_MAX mounts are looked at;
 *     beyond that the list is marked truncated.
 *  2. Hidden mounts are dropped: when several mounts share one mount point,
 *     only the last one in mountinfo order (the one on top, which statvfs()
 *     sees) counts — whatever its type.
 *  3. Types without storage of their own are dropped (pseudo_types below:
 *     proc, sysfs, cgroup, devtmpfs, devpts, autofs ...).  So are network
 *     and user-space file systems (network_types below, `fuse` and every
 *     `fuse.*`): statvfs() on them can block for minutes when the server
 *     or daemon is gone, and the agent must not hang.  `fuseblk` (ntfs-3g
 *     and other block-backed FUSE) stays.  tmpfs stays: it holds data and
 *     can fill up.
 *  4. One entry per file system, identified by the device number
 *     (major:minor) of mountinfo: bind mounts, btrfs subvolumes and repeated
 *     mounts of one device collapse.  The entry kept is the first mount, in
 *     mountinfo order, of the file system's root ("/" in the root column);
 *     when only subdirectories are mounted (bind mounts in a container), the
 *     first one of those.
 *  5. Mounts whose statvfs() fails (no permission, vanished) or reports no
 *     blocks at all (ramfs, unknown pseudo file systems) are dropped.
 *  6. The rest is listed in mountinfo order, at most
 *     GL_STATS_MAX_FILESYSTEMS; more set "truncated".
 *
 * `device` is the mount source when it names something (not empty, not
 * "none", not the type name as tmpfs and overlay have it).  Inode counts are
 * left out when the file system does not count inodes (f_files == 0: btrfs,
 * vfat).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "stats-linux-private.h"

#define STATS_MOUNTS_MAX 4096u

typedef struct Mount {
        unsigned major, minor;
        bool fs_root;  /* the root column is "/" */
        bool excluded; /* pseudo or network type */
        bool hidden;   /* another mount is on top of it */
        bool keep;     /* the entry chosen for its file system */
        size_t index;  /* mountinfo order */
        char *mount_point, *type, *source;
} Mount;

static const char *const pseudo_types[] = {
        "autofs",   "binfmt_misc", "bpf",        "cgroup",    "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
        "efivarfs", "fusectl",     "hugetlbfs",  "mqueue",    "nsfs",    "nfsd",     "pipefs",  "proc",   "pstore",
        "ramfs",    "rpc_pipefs",  "securityfs", "selinuxfs", "sockfs",  "sysfs",    "tracefs",
};

static const char *const network_types[] = {
        "afs", "ceph", "cifs", "fuse", "glusterfs", "lustre", "ncpfs", "nfs", "nfs4", "smb3", "smbfs",
};

static bool in_list(const char *s, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, list[i]) == 0)
                        return true;
        return false;
}

static bool type_excluded(const char *type) {
        return in_list(type, pseudo_types, sizeof(pseudo_types) / sizeof(pseudo_types[0])) ||
               in_list(type, network_types, sizeof(network_types) / sizeof(network_types[0])) ||
               strncmp(type, "fuse.", 5) == 0;
}

int stats_fs_usage_statvfs(const char *path, StatsFsUsage *ret, void *userdata) {
        struct statvfs sv;
        uint64_t unit;

        (void) userdata;
        if (statvfs(path, &sv) < 0)
                return -errno;
        unit = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
        if (unit == 0 || sv.f_blocks > UINT64_MAX / unit || sv.f_bfree > sv.f_blocks || sv.f_bavail > sv.f_blocks)
                return -EINVAL;
        *ret = (StatsFsUsage){
                .total_bytes = sv.f_blocks * unit,
                .free_bytes = sv.f_bfree * unit,
                .available_bytes = sv.f_bavail * unit,
                .total_inodes = sv.f_files,
                .free_inodes = sv.f_ffree,
                .available_inodes = sv.f_favail,
                .have_inodes = sv.f_files > 0,
        };
        return 0;
}

/* Decodes mountinfo's octal escapes ("\040" for a space) in place. */
static void unescape(char *s) {
        char *w = s;

        for (const char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        char v = (char) ((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));

                        if (v != '\0') {
                                *w++ = v;
                                r += 4;
                                continue;
                        }
                }
                *w++ = *r++;
        }
        *w = '\0';
}

/* Splits off the next space-separated field; NULL when there is none. */
static char *next_field(char **p) {
        char *s = *p, *e;

        while (*s == ' ')
                s++;
        if (*s == '\0')
                return NULL;
        e = strchr(s, ' ');
        if (e) {
                *e = '\0';
                *p = e + 1;
        } else
                *p = s + strlen(s);
        return s;
}

/* "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw" */
static int parse_mountinfo_line(char *line, Mount *ret) {
        char *p = line, *f[5], *sep, *type, *source, *end;
        unsigned long major, minor;

        for (unsigned i = 0; i < 5; i++) {
                f[i] = next_field(&p);
                if (!f[i])
                        return -EINVAL;
        }
        /* optional fields up to "-" */
        do {
                sep = next_field(&p);
                if (!sep)
                        return -EINVAL;
        } while (strcmp(sep, "-") != 0);
        type = next_field(&p);
        source = next_field(&p);
        if (!type || !source)
                return -EINVAL;
        errno = 0;
        major = strtoul(f[2], &end, 10);
        if (errno != 0 || end == f[2] || *end != ':' || major > UINT_MAX || f[2][0] == '-')
                return -EINVAL;
        minor = strtoul(end + 1, &end, 10);
        if (errno != 0 || *end != '\0' || minor > UINT_MAX || f[2][strlen(f[2]) - 1] == ':')
                return -EINVAL;
        unescape(f[4]);
        unescape(type);
        unescape(source);
        if (f[4][0] != '/' || strlen(f[4]) >= PATH_MAX)
                return -EINVAL;
        *ret = (Mount){
                .major = (unsigned) major,
                .minor = (unsigned) minor,
                .fs_root = strcmp(f[3], "/") == 0,
                .excluded = type_excluded(type),
                .mount_point = strdup(f[4]),
                .type = strdup(type),
                .source = strdup(source),
        };
        if (!ret->mount_point || !ret->type || !ret->source) {
                free(ret->mount_point);
                free(ret->type);
                free(ret->source);
                return -ENOMEM;
        }
        return 0;
}

static int cmp_mount_point(const void *a, const void *b) {
        const Mount *x = *(const Mount *const *) a, *y = *(const Mount *const *) b;
        int r = strcmp(x->mount_point, y->mount_point);

        if (r != 0)
                return r;
        return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_device(const void *a, const void *b) {
        const Mount *x = *(const Mount *const *) a, *y = *(const Mount *const *) b;

        if (x->major != y->major)
                return x->major < y->major ? -1 : 1;
        if (x->minor != y->minor)
                return x->minor < y->minor ? -1 : 1;
        if (x->fs_root != y->fs_root)
                return x->fs_root ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Sets hidden and keep (rules 2 to 4 above). */
static int choose_mounts(Mount *m, size_t n) {
        Mount **v;
        size_t k = 0;

        if (n == 0)
                return 0;
        v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                v[i] = &m[i];
        qsort(v, n, sizeof(*v), cmp_mount_point);
        for (size_t i = 0; i + 1 < n; i++)
                if (strcmp(v[i]->mount_point, v[i + 1]->mount_point) == 0)
                        v[i]->hidden = true;
        for (size_t i = 0; i < n; i++)
                if (!m[i].hidden && !m[i].excluded)
                        v[k++] = &m[i];
        qsort(v, k, sizeof(*v), cmp_device);
        for (size_t i = 0; i < k; i++)
                v[i]->keep = i == 0 || v[i]->major != v[i - 1]->major || v[i]->minor != v[i - 1]->minor;
        free(v);
        return 0;
}

static void add_filesystem(StatsCtx *x, json_object *list, const Mount *m, const StatsFsUsage *u) {
        json_object *e = stats_object_new(&x->b);

        stats_add_string(&x->b, e, "mount_point", m->mount_point);
        stats_add_string(&x->b, e, "type", m->type);
        if (m->source[0] && strcmp(m->source, "none") != 0 && strcmp(m->source, m->type) != 0)
                stats_add_string(&x->b, e, "device", m->source);
        stats_add_u64(&x->b, e, "total_bytes", u->total_bytes);
        stats_add_u64(&x->b, e, "free_bytes", u->free_bytes);
        stats_add_u64(&x->b, e, "available_bytes", u->available_bytes);
        if (u->have_inodes) {
                stats_add_u64(&x->b, e, "total_inodes", u->total_inodes);
                stats_add_u64(&x->b, e, "free_inodes", u->free_inodes);
                stats_add_u64(&x->b, e, "available_inodes", u->available_inodes);
        }
        stats_append(&x->b, list, e);
}

void stats_collect_filesystems(StatsCtx *x) {
        Mount *m = NULL;
        size_t n = 0, listed = 0;
        bool truncated = false;
        char *line = NULL;
        json_object *list = NULL;
        FILE *f = NULL;
        int r = 0;

        f = stats_fopen(x->c, "proc/self/mountinfo");
        if (!f)
                return;
        line = malloc(STATS_MOUNTINFO_LINE_MAX);
        m = calloc(STATS_MOUNTS_MAX, sizeof(*m));
        if (!line || !m) {
                r = -ENOMEM;
                goto finish;
        }
        for (unsigned i = 0; i < STATS_FILE_LINES_MAX; i++) {
                r = stats_read_line(f, line, STATS_MOUNTINFO_LINE_MAX);
                if (r == -ENOBUFS)
                        continue;
                if (r == -EIO)
                        goto finish; /* read error: no section rather than a partial one */
                if (r <= 0)
                        break;
                if (n == STATS_MOUNTS_MAX) {
                        truncated = true;
                        break;
                }
                r = parse_mountinfo_line(line, &m[n]);
                if (r == -ENOMEM)
                        goto finish;
                if (r < 0)
                        continue;
                m[n].index = n;
                n++;
        }
        r = choose_mounts(m, n);
        if (r < 0)
                goto finish;
        list = stats_array_new(&x->b);
        for (size_t i = 0; i < n && x->b.r >= 0; i++) {
                StatsFsUsage u;
                char *path;

                if (!m[i].keep)
                        continue;
                r = stats_path(x->c, m[i].mount_point, &path);
                if (r < 0)
                        goto finish;
                r = x->c->fs_usage(path, &u, x->c->fs_usage_userdata);
                free(path);
                if (r < 0 || u.total_bytes == 0)
                        continue;
                if (listed == GL_STATS_MAX_FILESYSTEMS) {
                        truncated = true;
                        break;
                }
                add_filesystem(x, list, &m[i], &u);
                listed++;
        }
        r = 0;
        stats_add(&x->b, x->root, "filesystems", list);
        list = NULL;
        if (truncated)
                x->truncated = true;
finish:
        if (r == -ENOMEM)
                x->b.r = r;
        json_object_put(list);
        for (size_t i = 0; m && i < n; i++) {
                free(m[i].mount_point);
                free(m[i].type);
                free(m[i].source);
        }
        free(m);
        free(line);
        fclose(f);
}
