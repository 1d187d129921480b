// /init of the initramfs that scripts/avx512-emulated.sh boots under Bochs.
// Runs /r1serve-test with the arguments listed in /r1serve-args and the
// environment variables in /r1serve-env (one per line each), its output on
// the serial console, then prints
//   R1SERVE-EMULATED-EXIT <status>
// (the exit code, or 128 + signal number as a shell reports it) and powers
// the machine off. The script on the host waits for that line.
//
// Built with `gcc -static -O2`; it is the only userspace in the guest: no
// shell, no libraries, no modules.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

enum { kMaxArgs = 256 };

static void attach_console(void) {
  // The kernel opens /dev/console for us only if the node is in the
  // initramfs; mount devtmpfs and reopen it so either case works.
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  if (fd > 2) close(fd);
}

// Waits until the serial port has sent everything written so far: without
// this, power-off cuts off the end of the program's output.
static void drain_console(void) {
  fflush(stdout);
  fflush(stderr);
  tcdrain(STDOUT_FILENO);
}

static void finish(int status) {
  drain_console();
  printf("\nR1SERVE-EMULATED-EXIT %d\n", status);
  drain_console();
  sync();
  reboot(RB_POWER_OFF);
  // Without ACPI power-off the host script kills Bochs at the marker.
  for (;;) pause();
}

// Reads one string per line of `path` into out[0..max), no escaping (the
// host script refuses values containing a newline). The strings live in
// `buf`, which must outlive them.
static int read_lines(const char* path, char* buf, size_t size, char** out, int max) {
  int n = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t len = read(fd, buf, size - 1);
  close(fd);
  if (len <= 0) return 0;
  buf[len] = '\0';
  char* p = buf;
  while (*p && n < max) {
    char* nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    out[n++] = p;
    if (!nl) break;
    p = nl + 1;
  }
  return n;
}

int main(void) {
  attach_console();
  mkdir("/proc", 0555);
  mount("proc", "/proc", "proc", 0, NULL);
  mkdir("/sys", 0555);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  mkdir("/tmp", 01777);
  mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
  printf("R1SERVE-EMULATED-INIT\n");
  fflush(stdout);

  static char args_buf[64 * 1024], env_buf[64 * 1024];
  char* argv[kMaxArgs + 2];
  argv[0] = "/r1serve-test";
  int n_args = read_lines("/r1serve-args", args_buf, sizeof args_buf, argv + 1, kMaxArgs);
  argv[n_args + 1] = NULL;
  // The kernel hands /init TERM=linux; plain output suits a log better.
  char* envp[kMaxArgs + 4] = {"PATH=/", "HOME=/tmp", "TERM=dumb"};
  int n_env = read_lines("/r1serve-env", env_buf, sizeof env_buf, envp + 3, kMaxArgs);
  envp[n_env + 3] = NULL;

  pid_t pid = fork();
  if (pid < 0) {
    perror("avx512-emulated-init: fork");
    finish(125);
  }
  if (pid == 0) {
    chdir("/tmp");
    execve(argv[0], argv, envp);
    perror("avx512-emulated-init: exec /r1serve-test");
    _exit(127);
  }
  int wstatus = 0;
  // As PID 1 we also reap orphans; stop when our child is done.
  for (;;) {
    pid_t got = wait(&wstatus);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) {
      perror("avx512-emulated-init: wait");
      finish(125);
    }
  }
  fflush(stdout);
  if (WIFEXITED(wstatus)) finish(WEXITSTATUS(wstatus));
  finish(128 + WTERMSIG(wstatus));
}
