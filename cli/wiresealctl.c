/*
 * wiresealctl: talks to wireseal-cp over its control socket.
 *
 *   wiresealctl [-s SOCKET] status | stats | cache show | cache flush | tlsrpt flush | reload
 *
 * Protocol: one command line per connection; the daemon answers "ok" or
 * "error: REASON" on the first line, then the body, and closes. Access
 * control is the socket file's mode (0660: owner and group).
 * Exit status: 0 ok, 1 the daemon refused, 2 usage, 3 cannot connect.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_DEFAULT_SOCKET "/run/wireseal/ctl.sock"
#define CTL_CMD_MAX 200

static void
usage(FILE *f)
{
	fprintf(f, "usage: wiresealctl [-s SOCKET] status | stats | cache show | cache flush | tlsrpt flush | reload\n"
		   "  -s SOCKET  control socket (default " CTL_DEFAULT_SOCKET ")\n");
}

int
main(int argc, char **argv)
{
	const char *path = CTL_DEFAULT_SOCKET;
	int i = 1;
	if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (i + 1 < argc && strcmp(argv[i], "-s") == 0) {
		path = argv[i + 1];
		i += 2;
	}
	char cmd[CTL_CMD_MAX + 2] = "";
	size_t len = 0;
	for (; i < argc; i++) {
		int n = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", len ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(cmd) - len - 1) {
			fprintf(stderr, "wiresealctl: command too long\n");
			return 2;
		}
		len += (size_t)n;
	}
	if (len == 0) {
		usage(stderr);
		return 2;
	}
	cmd[len++] = '\n';
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "wiresealctl: %s: path too long\n", path);
		return 2;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "wiresealctl: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 3;
	}
	if (write(fd, cmd, len) != (ssize_t)len) {
		fprintf(stderr, "wiresealctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return 3;
	}
	/* first line: ok / error: ...; the rest is printed as it comes */
	char buf[8192];
	char first[512];
	size_t flen = 0;
	bool have_first = false;
	int rc = 1;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t off = 0;
		while (!have_first && off < (size_t)n) {
			char ch = buf[off++];
			if (ch == '\n' || flen == sizeof(first) - 1) {
				first[flen] = '\0';
				have_first = true;
				if (strcmp(first, "ok") == 0)
					rc = 0;
				else
					fprintf(stderr, "wiresealctl: %s\n", first);
			} else {
				first[flen++] = ch;
			}
		}
		if (off < (size_t)n)
			fwrite(buf + off, 1, (size_t)n - off, stdout);
	}
	close(fd);
	if (!have_first) {
		fprintf(stderr, "wiresealctl: no answer from %s\n", path);
		return 3;
	}
	return rc;
}
