/*
 * Sub-commands of the `wireseal` executable. Each takes the arguments after
 * its own name (argv[0] is the sub-command name) and returns the process
 * exit status; none of them calls exit().
 */
#ifndef WS_CLI_CMD_H
#define WS_CLI_CMD_H

int cmd_version(int argc, char **argv);

#endif
