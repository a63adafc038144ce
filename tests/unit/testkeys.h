/* Test keys from ../shared/conformance, loaded as ws_privkey (cmocka tests:
 * include after <cmocka.h>, "sig.h" and "testutil.h"). */
#ifndef WS_TESTS_TESTKEYS_H
#define WS_TESTS_TESTKEYS_H

static inline struct ws_privkey *
load_pem_file(const char *rel)
{
	char path[1024];
	size_t len = 0;
	char *pem = tu_read_file(tu_shared(rel, path, sizeof(path)), &len);
	assert_non_null(pem);
	struct ws_privkey *k = NULL;
	const char *why = NULL;
	if (ws_privkey_load_pem(pem, len, &k, &why) != 0)
		fail_msg("%s: %s", rel, why);
	free(pem);
	return k;
}

#endif
