/*
 * plugind: the entrypoint of plugctl's fixture plugins.
 *
 * A static, dependency-free responder for Docker's plugin protocol (HTTP/1.1 + JSON over a unix
 * socket). It implements Plugin.Activate and a toy in-memory VolumeDriver, which is enough for
 * dockerd to enable the plugin, and for `docker volume create -d <plugin>` to put the plugin "in
 * use" (so disable-without-force refusals can be tested).
 *
 *   plugind [SOCKET] [ARGS...]     SOCKET defaults to /run/docker/plugins/plugind.sock
 *
 * Volume names are kept in /var/lib/plugind/volumes inside the plugin's rootfs, which dockerd keeps
 * across disable/enable, so volumes survive a restart of the plugin as they would with a real driver
 * (dockerd asks the driver about a volume before it lets anyone remove it).
 *
 * It prints its argv and environment to stderr at start (dockerd copies plugin output into its log),
 * so a test can see which settings reached the process. With FAIL_AT_START=1 it exits 1 at once:
 * a fixture that never comes up, for enable-failure and rollback tests.
 *
 * While the file /var/lib/plugind/hang exists (inside the plugin's rootfs), every request is read and
 * never answered: the connection is held open until the client gives up, as a wedged plugin would.
 * The file is checked per request, and removed at start, so a restart of the plugin cures it (what a
 * health check's restart is meant to do). Up to MAX_HELD connections are held; the oldest is closed.
 *
 * As PID 1 of the plugin container it must handle SIGTERM itself (the kernel ignores signals without
 * a handler for PID 1); otherwise `docker plugin disable` waits 10 s before SIGKILL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define MAX_VOLUMES 64
#define NAME_LEN 128

static char volumes[MAX_VOLUMES][NAME_LEN];
static const char *sock_path = "/run/docker/plugins/plugind.sock";
static const char *state_path = "/var/lib/plugind/volumes";
static const char *hang_path = "/var/lib/plugind/hang";

#define MAX_HELD 32
static int held[MAX_HELD];
static int held_next;

/* Best effort: without a writable state file the driver still works, it only forgets on restart. */
static void vol_save(void) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", state_path);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  for (int i = 0; i < MAX_VOLUMES; i++)
    if (volumes[i][0]) fprintf(f, "%s\n", volumes[i]);
  if (fclose(f) == 0) rename(tmp, state_path);
}

static void vol_load(void) {
  FILE *f = fopen(state_path, "r");
  if (!f) return;
  char line[NAME_LEN];
  for (int i = 0; i < MAX_VOLUMES && fgets(line, sizeof line, f);) {
    line[strcspn(line, "\n")] = 0;
    if (line[0]) snprintf(volumes[i++], NAME_LEN, "%s", line);
  }
  fclose(f);
}

static void on_term(int sig) {
  (void)sig;
  unlink(sock_path);
  _exit(0);
}

/* Copies the JSON string value of "Name" from body into out; returns 0 when absent. Volume names
 * are plain identifiers in tests, so escapes are not decoded. */
static int json_name(const char *body, char *out, size_t len) {
  const char *p = body ? strstr(body, "\"Name\"") : NULL;
  if (!p) return 0;
  p = strchr(p + 6, ':');
  if (!p) return 0;
  p = strchr(p, '"');
  if (!p) return 0;
  p++;
  size_t i = 0;
  while (*p && *p != '"' && i + 1 < len) out[i++] = *p++;
  out[i] = 0;
  return i > 0;
}

static int vol_find(const char *name) {
  for (int i = 0; i < MAX_VOLUMES; i++)
    if (volumes[i][0] && strcmp(volumes[i], name) == 0) return i;
  return -1;
}

static int vol_add(const char *name) {
  if (vol_find(name) >= 0) return 1;
  for (int i = 0; i < MAX_VOLUMES; i++)
    if (!volumes[i][0]) {
      snprintf(volumes[i], NAME_LEN, "%s", name);
      vol_save();
      return 1;
    }
  return 0;
}

/* Writes the JSON reply for one call into out. */
static void reply(const char *path, const char *body, char *out, size_t len) {
  char name[NAME_LEN] = "";
  int has_name = json_name(body, name, sizeof name);
  if (strstr(path, "/Plugin.Activate")) {
    snprintf(out, len, "{\"Implements\":[\"VolumeDriver\"]}");
  } else if (strstr(path, "/VolumeDriver.Capabilities")) {
    snprintf(out, len, "{\"Capabilities\":{\"Scope\":\"local\"}}");
  } else if (strstr(path, "/VolumeDriver.Create")) {
    if (!has_name) snprintf(out, len, "{\"Err\":\"missing volume name\"}");
    else if (!vol_add(name)) snprintf(out, len, "{\"Err\":\"too many volumes\"}");
    else snprintf(out, len, "{\"Err\":\"\"}");
  } else if (strstr(path, "/VolumeDriver.Remove")) {
    int i = has_name ? vol_find(name) : -1;
    if (i >= 0) {
      volumes[i][0] = 0;
      vol_save();
    }
    snprintf(out, len, "{\"Err\":\"\"}");
  } else if (strstr(path, "/VolumeDriver.Get")) {
    if (has_name && vol_find(name) >= 0)
      snprintf(out, len, "{\"Volume\":{\"Name\":\"%s\",\"Mountpoint\":\"/mnt/%s\"},\"Err\":\"\"}", name, name);
    else snprintf(out, len, "{\"Err\":\"no such volume\"}");
  } else if (strstr(path, "/VolumeDriver.List")) {
    size_t n = (size_t)snprintf(out, len, "{\"Volumes\":[");
    int first = 1;
    for (int i = 0; i < MAX_VOLUMES && n + NAME_LEN * 2 + 64 < len; i++) {
      if (!volumes[i][0]) continue;
      n += (size_t)snprintf(out + n, len - n, "%s{\"Name\":\"%s\",\"Mountpoint\":\"/mnt/%s\"}", first ? "" : ",",
                            volumes[i], volumes[i]);
      first = 0;
    }
    snprintf(out + n, len - n, "],\"Err\":\"\"}");
  } else if (strstr(path, "/VolumeDriver.Path") || strstr(path, "/VolumeDriver.Mount")) {
    snprintf(out, len, "{\"Mountpoint\":\"/mnt/%s\",\"Err\":\"\"}", name);
  } else if (strstr(path, "/VolumeDriver.Unmount")) {
    snprintf(out, len, "{\"Err\":\"\"}");
  } else {
    snprintf(out, len, "{\"Err\":\"plugind: %s is not implemented\"}", path);
  }
}

/* Reads one request (headers, then Content-Length bytes of body) and answers it; returns 0 when the
 * connection is held unanswered (hang mode) and must not be closed by the caller. */
static int serve(int c) {
  static char buf[65536];
  size_t n = 0;
  char *hend = NULL;
  while (n < sizeof buf - 1) {
    ssize_t k = read(c, buf + n, sizeof buf - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
    buf[n] = 0;
    if (!hend) hend = strstr(buf, "\r\n\r\n");
    if (hend) {
      char *cl = strcasestr(buf, "\r\nContent-Length:");
      size_t want = cl && cl < hend ? (size_t)atol(cl + 17) : 0;
      if (n - (size_t)(hend + 4 - buf) >= want) break;
    }
  }
  if (!hend) return 1;
  if (access(hang_path, F_OK) == 0) {
    if (held[held_next] > 0) close(held[held_next]);
    held[held_next] = c;
    held_next = (held_next + 1) % MAX_HELD;
    return 0;
  }
  char method[16] = "", path[512] = "";
  if (sscanf(buf, "%15s %511s", method, path) != 2) return 1;
  static char body[16384];
  reply(path, hend + 4, body, sizeof body);
  static char out[17000];
  int len = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
  size_t off = 0;
  while (len > 0 && off < (size_t)len) {
    ssize_t w = write(c, out + off, (size_t)len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1) sock_path = argv[1];
  setvbuf(stderr, NULL, _IONBF, 0);
  fprintf(stderr, "plugind: argv:");
  for (int i = 0; i < argc; i++) fprintf(stderr, " %s", argv[i]);
  fprintf(stderr, "\n");
  for (char **e = environ; *e; e++) fprintf(stderr, "plugind: env %s\n", *e);

  const char *fail = getenv("FAIL_AT_START");
  if (fail && strcmp(fail, "1") == 0) {
    fprintf(stderr, "plugind: FAIL_AT_START=1, exiting 1\n");
    return 1;
  }

  unlink(hang_path);
  vol_load();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("plugind: socket");
    return 1;
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(sock_path) >= sizeof a.sun_path) {
    fprintf(stderr, "plugind: socket path too long: %s\n", sock_path);
    return 1;
  }
  strcpy(a.sun_path, sock_path);
  unlink(sock_path);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
    perror("plugind: listen");
    return 1;
  }
  fprintf(stderr, "plugind: listening on %s GREETING=%s\n", sock_path, getenv("GREETING") ? getenv("GREETING") : "");
  for (;;) {
    int c = accept(fd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      continue;
    }
    if (serve(c)) close(c);
  }
}
