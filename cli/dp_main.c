/* `wireseal-dp`: the live dataplane process (see cli/replay.c). */
#include "cmd.h"

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	return cmd_dp(argc, argv);
}
