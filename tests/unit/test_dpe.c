/* dpe: the RSS redirection table helpers (dpe_reta_fill / dpe_reta_read)
 * at DPE_RETA_MAX and one past it. No port here has RSS, so the table is
 * checked through the functions rss_reta runs on a real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_ethdev.h>

#include "dpe.h"

#define GROUPS (DPE_RETA_MAX / RTE_ETH_RETA_GROUP_SIZE + 1) /* one group past the limit */

static struct rte_eth_rss_reta_entry64 r[GROUPS];
static uint16_t out[DPE_RETA_MAX + RTE_ETH_RETA_GROUP_SIZE];

/* the table of size entries asked for: entry i on queue i % nq, exactly
 * the first size mask bits set */
static void
check_filled(unsigned size, unsigned nq)
{
	for (unsigned g = 0; g < (size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE; g++)
		for (unsigned k = 0; k < RTE_ETH_RETA_GROUP_SIZE; k++) {
			unsigned i = g * RTE_ETH_RETA_GROUP_SIZE + k;
			bool on = (r[g].mask >> k) & 1;
			assert_int_equal(on, i < size);
			if (i < size)
				assert_int_equal(r[g].reta[k], i % nq);
		}
}

static void
test_fill_read(void **state)
{
	(void)state;
	static const unsigned sizes[] = {64, 128, 256, DPE_RETA_MAX};
	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (unsigned nq = 1; nq <= DPE_MAX_WORKERS; nq++) {
			unsigned size = sizes[s];
			memset(r, 0xab, sizeof(r));
			assert_int_equal(dpe_reta_fill(r, size, nq), 0);
			check_filled(size, nq);
			/* not read back: the round robin asked for */
			memset(out, 0xff, sizeof(out));
			assert_int_equal(dpe_reta_read(r, size, nq, false, out), 0);
			for (unsigned i = 0; i < size; i++)
				assert_int_equal(out[i], i % nq);
			assert_int_equal(out[size], 0xffff); /* nothing past size */
			/* read back: what the port returned, entry for entry */
			r[0].reta[0] = 7;
			r[(size - 1) / RTE_ETH_RETA_GROUP_SIZE].reta[(size - 1) % RTE_ETH_RETA_GROUP_SIZE] = 3;
			assert_int_equal(dpe_reta_read(r, size, nq, true, out), 0);
			assert_int_equal(out[0], 7);
			assert_int_equal(out[size - 1], 3);
			for (unsigned i = 1; i + 1 < size; i++)
				assert_int_equal(out[i], i % nq);
		}
}

/* DPE_RETA_MAX goes (above); one entry more, none, or no queue is refused
 * and nothing is written */
static void
test_limits(void **state)
{
	(void)state;
	static const unsigned bad[][2] = {
	        {DPE_RETA_MAX + 1, 4}, {DPE_RETA_MAX + RTE_ETH_RETA_GROUP_SIZE, 4}, {0, 4}, {64, 0}};
	for (unsigned b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		memset(r, 0xab, sizeof(r));
		memset(out, 0xff, sizeof(out));
		assert_int_equal(dpe_reta_fill(r, bad[b][0], bad[b][1]), -1);
		assert_int_equal(dpe_reta_read(r, bad[b][0], bad[b][1], false, out), -1);
		const uint8_t *p = (const uint8_t *)r;
		for (size_t i = 0; i < sizeof(r); i++)
			assert_int_equal(p[i], 0xab);
		for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
			assert_int_equal(out[i], 0xffff);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fill_read),
	        cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
