/* `wireseal`: the offline front end. One table of sub-commands. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct subcommand subcommands[] = {
	{"verify", cmd_verify,
	 "verify [--zone FILE] [--json] [--authserv-id ID] [--now EPOCH] [--dns-server IP[@PORT]] "
	 "[--streams N] FILE..."},
	{"sign", cmd_sign,
	 "sign --key PEM --domain D --selector S [--algorithm A] [--canon H/B] [--headers h1:h2] "
	 "[--length] [--timestamp T] [--expire S] FILE"},
	{"arc-seal", cmd_arc_seal,
	 "arc-seal --key PEM --domain D --selector S --authserv-id ID [--timestamp T] "
	 "[--headers h1:h2] [--canon H/B] [--zone FILE] [--dns-server IP[@PORT]] FILE"},
	{"replay", cmd_replay,
	 "replay [--zone FILE] [--json] [--workers N] [--no-verify] [--authserv-id ID] [--now EPOCH] "
	 "CAPTURE..."},
	{"version", cmd_version, "version [--features]"},
};

static void
usage(FILE *to)
{
	fprintf(to, "usage: wireseal <command> [options]\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(to, "  wireseal %s\n", subcommands[i].usage);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "wireseal: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
