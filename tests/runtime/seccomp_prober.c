/* A syscall prober for the seccomp tests (tests/runtime/test_seccomp_profile.py).
 *
 * Each probe calls one syscall with arguments chosen so that the kernel fails it before any
 * side effect (a bad flag, a NULL pointer, a closed fd, a pid that does not exist), or, where
 * the call itself is the point (a namespace, a personality), in a child process that exits
 * at once. Built static with gcc, so it runs in a busybox container as it is.
 *
 * Output, one line per probe:
 *
 *     <probe> <syscall> <arg0,arg1,...> <needs> <result>
 *
 * result is "ok" or the errno's name (EPERM, ENOSYS, EINVAL...). args are the values the
 * seccomp filter sees (decimal; "-" when no rule looks at them). needs names the capability
 * (or capabilities, ","-separated: any one will do) without which the kernel itself answers
 * EPERM for these arguments, whatever seccomp allows ("-" when none): the test uses it to
 * tell the filter's EPERM from the kernel's. The first line is "capbnd <hex>", the bounding
 * set the filter was evaluated against.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static const char *result(long rc, int err) {
    return rc >= 0 ? "ok" : strerrorname_np(err);
}

static void line(const char *probe, const char *sys, const char *args, const char *needs,
                 const char *res) {
    printf("%s %s %s %s %s\n", probe, sys, args, needs, res);
    fflush(stdout);
}

#define PROBE(probe, sys, needs, call)                                                 \
    do {                                                                               \
        errno = 0;                                                                     \
        long rc_ = (long)(call);                                                       \
        line(probe, sys, "-", needs, result(rc_, errno));                              \
    } while (0)

/* A call whose effect must not outlive it: made in a forked child, whose exit status
 * carries the errno (0 = success). */
static const char *in_child(long (*fn)(unsigned long), unsigned long arg) {
    pid_t pid = fork();
    if (pid < 0) return "fork-failed";
    if (pid == 0) {
        errno = 0;
        long rc = fn(arg);
        _exit(rc < 0 ? (errno ? errno : 255) : 0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) return "wait-failed";
    if (WIFSIGNALED(status)) return "killed";
    int code = WEXITSTATUS(status);
    return code == 0 ? "ok" : strerrorname_np(code);
}

static long do_unshare(unsigned long flags) { return unshare((int)flags); }

static long do_personality(unsigned long persona) {
    return personality(persona) == -1 ? -1 : 0;
}

/* clone(2) as fork(2) with extra flags: the child exits at once. */
static long do_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) syscall(SYS_exit, 0);
    if (pid < 0) return -1;
    int status;
    waitpid((pid_t)pid, &status, 0);
    return 0;
}

struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static long do_clone3(unsigned long flags) {
    struct clone_args_v0 ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags;
    ca.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) syscall(SYS_exit, 0);
    if (pid < 0) return -1;
    int status;
    waitpid((pid_t)pid, &status, 0);
    return 0;
}

/* What `unshare -U -r` followed by a tmpfs mount does: a user namespace where we are root,
 * a mount namespace owned by it, a tmpfs mounted in it. */
static long userns_mount(unsigned long unused) {
    (void)unused;
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return -1;
    if (syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL) < 0) return -1;
    return 0;
}

static void child_probe(const char *probe, const char *sys, unsigned long arg, int show_arg,
                        const char *needs, long (*fn)(unsigned long)) {
    char args[32] = "-";
    if (show_arg) snprintf(args, sizeof args, "%lu", arg);
    line(probe, sys, args, needs, in_child(fn, arg));
}

static void capbnd(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char buf[256];
    while (f && fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "CapBnd:", 7) == 0) {
            printf("capbnd %s", buf + 8);
            break;
        }
    }
    if (f) fclose(f);
}

int main(void) {
    static const struct { const char *name; unsigned long flag; const char *needs; } ns[] = {
        {"user", CLONE_NEWUSER, "-"},
        {"mnt", CLONE_NEWNS, "CAP_SYS_ADMIN"},
        {"uts", CLONE_NEWUTS, "CAP_SYS_ADMIN"},
        {"ipc", CLONE_NEWIPC, "CAP_SYS_ADMIN"},
        {"net", CLONE_NEWNET, "CAP_SYS_ADMIN"},
        {"pid", CLONE_NEWPID, "CAP_SYS_ADMIN"},
        {"cgroup", CLONE_NEWCGROUP, "CAP_SYS_ADMIN"},
        {"time", CLONE_NEWTIME, "CAP_SYS_ADMIN"},
    };
    char probe[64];
    unsigned i;

    capbnd();

    /* controls: allowed by every profile under test */
    PROBE("getpid", "getpid", "-", syscall(SYS_getpid));
    PROBE("uname", "uname", "-", syscall(SYS_uname, NULL)); /* EFAULT */
    child_probe("clone-plain", "clone", SIGCHLD, 1, "-", do_clone);

    for (i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        snprintf(probe, sizeof probe, "unshare-%s", ns[i].name);
        child_probe(probe, "unshare", ns[i].flag, 1, ns[i].needs, do_unshare);
    }
    /* clone's low byte is the exit signal: CLONE_NEWTIME exists only for unshare/clone3. */
    for (i = 0; i < sizeof ns / sizeof ns[0] - 1; i++) {
        snprintf(probe, sizeof probe, "clone-%s", ns[i].name);
        child_probe(probe, "clone", ns[i].flag | SIGCHLD, 1, ns[i].needs, do_clone);
    }
    child_probe("clone3-user", "clone3", CLONE_NEWUSER, 0, "-", do_clone3);
    PROBE("clone3-badsize", "clone3", "-", syscall(SYS_clone3, NULL, 0)); /* EINVAL */
    child_probe("userns-mount-tmpfs", "unshare+mount", CLONE_NEWUSER | CLONE_NEWNS, 1, "-",
                userns_mount);
    PROBE("setns", "setns", "-", syscall(SYS_setns, -1, 0)); /* EBADF */

    /* keyrings are not namespaced */
    PROBE("keyctl", "keyctl", "-", syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0)); /* EOPNOTSUPP */
    PROBE("add_key", "add_key", "-", syscall(SYS_add_key, NULL, NULL, NULL, 0, 0)); /* EFAULT */
    PROBE("request_key", "request_key", "-", syscall(SYS_request_key, NULL, NULL, NULL, 0));

    /* another process's memory (flags must be 0: EINVAL) */
    PROBE("process_vm_readv", "process_vm_readv", "-",
          syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 1));
    PROBE("process_vm_writev", "process_vm_writev", "-",
          syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 1));
    PROBE("kcmp", "kcmp", "-", syscall(SYS_kcmp, getpid(), getpid(), 99, 0, 0)); /* EINVAL */
    PROBE("pidfd_getfd", "pidfd_getfd", "-", syscall(SYS_pidfd_getfd, -1, 0, 0)); /* EBADF */
    PROBE("process_madvise", "process_madvise", "-",
          syscall(SYS_process_madvise, -1, NULL, 0, 0, 0)); /* EBADF */
    PROBE("ptrace", "ptrace", "-",
          syscall(SYS_ptrace, 2 /* PEEKDATA */, 0x3ffffff0, 0, 0)); /* ESRCH */

    /* NUMA policy (mode 99 does not exist: EINVAL) */
    PROBE("mbind", "mbind", "-", syscall(SYS_mbind, NULL, 0, 99, NULL, 0, 0));
    PROBE("set_mempolicy", "set_mempolicy", "-", syscall(SYS_set_mempolicy, 99, NULL, 0));
    PROBE("get_mempolicy", "get_mempolicy", "-",
          syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0xff00));

    /* file handles */
    PROBE("name_to_handle_at", "name_to_handle_at", "-",
          syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0xffff)); /* EINVAL */
    PROBE("open_by_handle_at", "open_by_handle_at", "CAP_DAC_READ_SEARCH",
          syscall(SYS_open_by_handle_at, -1, NULL, 0));

    /* the mount API, old and new */
    PROBE("mount", "mount", "-", syscall(SYS_mount, NULL, NULL, NULL, 0, NULL)); /* EFAULT */
    PROBE("umount2", "umount2", "-", syscall(SYS_umount2, NULL, 0x100)); /* EINVAL */
    PROBE("pivot_root", "pivot_root", "CAP_SYS_ADMIN", syscall(SYS_pivot_root, NULL, NULL));
    PROBE("fsopen", "fsopen", "CAP_SYS_ADMIN", syscall(SYS_fsopen, NULL, 0));
    PROBE("fsmount", "fsmount", "CAP_SYS_ADMIN", syscall(SYS_fsmount, -1, 0, 0));
    PROBE("fspick", "fspick", "CAP_SYS_ADMIN", syscall(SYS_fspick, -1, NULL, 0xffff));
    PROBE("fsconfig", "fsconfig", "-", syscall(SYS_fsconfig, -1, 99, NULL, NULL, 0));
    PROBE("move_mount", "move_mount", "CAP_SYS_ADMIN",
          syscall(SYS_move_mount, -1, NULL, -1, NULL, 0xffff)); /* EINVAL */
    PROBE("open_tree", "open_tree", "-", syscall(SYS_open_tree, -1, NULL, 0xffff));
    PROBE("mount_setattr", "mount_setattr", "-",
          syscall(SYS_mount_setattr, -1, NULL, 0, NULL, 0)); /* EINVAL */
    PROBE("chroot", "chroot", "-", syscall(SYS_chroot, "")); /* ENOENT */

    /* personality: Docker allows 0, 8 (PER_LINUX32), 0x20000 (UNAME26), 0x20008, and the
     * query 0xffffffff; ADDR_NO_RANDOMIZE is refused */
    child_probe("personality-query", "personality", 0xffffffffUL, 1, "-", do_personality);
    child_probe("personality-linux", "personality", 0, 1, "-", do_personality);
    child_probe("personality-linux32", "personality", 8, 1, "-", do_personality);
    child_probe("personality-uname26", "personality", 0x20000, 1, "-", do_personality);
    child_probe("personality-linux32-uname26", "personality", 0x20008, 1, "-", do_personality);
    child_probe("personality-addr-no-randomize", "personality", ADDR_NO_RANDOMIZE, 1, "-",
                do_personality);

    /* tracing, bpf, userfaultfd */
    PROBE("bpf", "bpf", "-", syscall(SYS_bpf, 9999, NULL, 0)); /* EINVAL */
    PROBE("perf_event_open", "perf_event_open", "-",
          syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)); /* EFAULT */
    /* UFFD_USER_MODE_ONLY (needs no privilege) plus a bit that does not exist: EINVAL */
    PROBE("userfaultfd", "userfaultfd", "-", syscall(SYS_userfaultfd, 1 | 0x100));
    PROBE("fanotify_init", "fanotify_init", "CAP_SYS_ADMIN",
          syscall(SYS_fanotify_init, 0xffffffff, 0));
    PROBE("io_uring_setup", "io_uring_setup", "-", syscall(SYS_io_uring_setup, 0, NULL));

    /* the machine: modules, kexec, reboot, swap, clock, log, accounting, quotas, ports */
    PROBE("kexec_load", "kexec_load", "CAP_SYS_BOOT",
          syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL));
    PROBE("init_module", "init_module", "CAP_SYS_MODULE", syscall(SYS_init_module, NULL, 0, ""));
    PROBE("finit_module", "finit_module", "CAP_SYS_MODULE",
          syscall(SYS_finit_module, -1, "", 0));
    PROBE("delete_module", "delete_module", "CAP_SYS_MODULE",
          syscall(SYS_delete_module, NULL, 0));
    /* bad magic numbers: EINVAL, after the capability check */
    PROBE("reboot", "reboot", "CAP_SYS_BOOT", syscall(SYS_reboot, 0, 0, 0, NULL));
    PROBE("swapon", "swapon", "CAP_SYS_ADMIN", syscall(SYS_swapon, NULL, 0));
    PROBE("swapoff", "swapoff", "CAP_SYS_ADMIN", syscall(SYS_swapoff, NULL));
    /* SYSLOG_ACTION_CONSOLE_LEVEL with level 0: EINVAL once permitted (CAP_SYS_ADMIN no
     * longer stands in for CAP_SYSLOG) */
    PROBE("syslog", "syslog", "CAP_SYSLOG", syscall(SYS_syslog, 8, NULL, 0));
    PROBE("acct", "acct", "CAP_SYS_PACCT", syscall(SYS_acct, (char *)1)); /* EFAULT */
    {
        struct timeval tv = {0, 2000000}; /* tv_usec out of range: EINVAL */
        PROBE("settimeofday", "settimeofday", "-", syscall(SYS_settimeofday, &tv, NULL));
    }
    {
        struct timespec ts = {0, 0};
        PROBE("clock_settime", "clock_settime", "-", syscall(SYS_clock_settime, 99, &ts));
    }
    PROBE("quotactl", "quotactl", "-", syscall(SYS_quotactl, 0, NULL, 0, NULL));
    PROBE("quotactl_fd", "quotactl_fd", "-", syscall(SYS_quotactl_fd, -1, 0, 0, NULL));
    PROBE("iopl", "iopl", "-", syscall(SYS_iopl, 4)); /* EINVAL */
    PROBE("ioperm", "ioperm", "-", syscall(SYS_ioperm, 0, 0, 0)); /* EINVAL */
    PROBE("sethostname", "sethostname", "CAP_SYS_ADMIN", syscall(SYS_sethostname, NULL, -1));
    PROBE("setdomainname", "setdomainname", "CAP_SYS_ADMIN",
          syscall(SYS_setdomainname, NULL, -1));
    return 0;
}
