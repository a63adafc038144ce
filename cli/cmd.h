/*
 * Sub-commands of the `wireseal` executable. Each takes the arguments after
 * its own name (argv[0] is the sub-command name) and returns the process
 * exit status; none of them calls exit().
 */
#ifndef WS_CLI_CMD_H
#define WS_CLI_CMD_H

int cmd_version(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_arc_seal(int argc, char **argv);
int cmd_replay(int argc, char **argv);
/* wireseal-dp's main: the same pipeline live (EAL arguments after "--"). */
int cmd_dp(int argc, char **argv);

/* Shared by sign and arc-seal. */
#include "canon.h"
#include <stdio.h>
int parse_canon_pair(const char *s, enum canon_alg *h, enum canon_alg *b);
void write_lines(FILE *out, const char *s, size_t n, int lf_only);
int message_is_lf(const char *msg, size_t len);

#endif
