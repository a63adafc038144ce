/* cpconf: the directive table driving a libyaml document walk (see cpconf.h). */
#include "cpconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

enum cpconf_type { T_STR, T_UINT, T_BOOL, T_LIST, T_MAP };

struct directive {
	const char *name;
	enum cpconf_type type;
	size_t off;
	const char *def, *doc;
};

static const struct directive directives[] = {
#define CPCONF_DIR(name, type, field, def, doc) {name, T_##type, offsetof(struct cpconf, field), def, doc},
	CPCONF_FOREACH(CPCONF_DIR)
#undef CPCONF_DIR
};
#define NDIRECTIVES (sizeof(directives) / sizeof(directives[0]))

static const char *const type_names[] = {"string", "unsigned", "bool", "list", "map"};

static void
free_list(struct cpconf_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
free_map(struct cpconf_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->key[i]);
		free(m->value[i]);
	}
	free(m->key);
	free(m->value);
	memset(m, 0, sizeof(*m));
}

void
cpconf_free(struct cpconf *c)
{
	for (size_t i = 0; i < NDIRECTIVES; i++) {
		void *f = (char *)c + directives[i].off;
		switch (directives[i].type) {
		case T_STR:
			free(*(char **)f);
			*(char **)f = NULL;
			break;
		case T_LIST:
			free_list(f);
			break;
		case T_MAP:
			free_map(f);
			break;
		default:
			break;
		}
	}
}

static int
parse_uint(const char *s, unsigned *out)
{
	if (!*s || strlen(s) > 10)
		return -1;
	unsigned long long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

/* Sets a scalar directive from text. 0, or -1 (bad value). */
static int
set_scalar(struct cpconf *c, const struct directive *d, const char *v)
{
	void *f = (char *)c + d->off;
	switch (d->type) {
	case T_STR: {
		char *n = strdup(v);
		if (!n)
			return -1;
		free(*(char **)f);
		*(char **)f = n;
		return 0;
	}
	case T_UINT:
		return parse_uint(v, f);
	case T_BOOL:
		return parse_bool(v, f);
	default:
		return -1;
	}
}

int
cpconf_defaults(struct cpconf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NDIRECTIVES; i++) {
		if (directives[i].type <= T_BOOL && set_scalar(c, &directives[i], directives[i].def) != 0) {
			cpconf_free(c);
			return -1;
		}
	}
	return 0;
}

void
cpconf_describe(FILE *f)
{
	for (size_t i = 0; i < NDIRECTIVES; i++)
		fprintf(f, "%-28s %-8s default %-12s %s\n", directives[i].name,
			type_names[directives[i].type],
			directives[i].def[0] ? directives[i].def : "(empty)", directives[i].doc);
}

const char *
cpconf_map_get(const struct cpconf_map *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->key[i], key) == 0)
			return m->value[i];
	return NULL;
}

struct loader {
	struct cpconf *c;
	yaml_document_t *doc;
	bool seen[NDIRECTIVES];
	char *why;
	size_t whylen;
};

static int
fail_at(struct loader *L, const yaml_node_t *n, const char *what, const char *name)
{
	snprintf(L->why, L->whylen, "line %zu: %s%s%s", (size_t)n->start_mark.line + 1, what,
		 name ? ": " : "", name ? name : "");
	return -1;
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int
set_node(struct loader *L, const struct directive *d, const yaml_node_t *v)
{
	void *f = (char *)L->c + d->off;
	if (d->type <= T_BOOL) {
		const char *s = scalar(v);
		if (!s)
			return fail_at(L, v, "expected a single value for", d->name);
		if (strlen(s) > CPCONF_MAX_STR)
			return fail_at(L, v, "value too long for", d->name);
		/* YAML's "~"/empty is "unset" for strings: the empty string */
		if (d->type == T_STR && (strcmp(s, "~") == 0 || strcmp(s, "null") == 0))
			s = "";
		if (set_scalar(L->c, d, s) != 0) {
			char what[96];
			snprintf(what, sizeof(what), "expected a %s value for", type_names[d->type]);
			return fail_at(L, v, what, d->name);
		}
		return 0;
	}
	if (d->type == T_LIST) {
		struct cpconf_list *l = f;
		free_list(l);
		if (v->type == YAML_SCALAR_NODE && (!*scalar(v) || strcmp(scalar(v), "~") == 0))
			return 0;
		if (v->type != YAML_SEQUENCE_NODE)
			return fail_at(L, v, "expected a list for", d->name);
		size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (n > CPCONF_MAX_LIST)
			return fail_at(L, v, "too many entries in", d->name);
		l->v = calloc(n + 1, sizeof(char *));
		if (!l->v)
			return fail_at(L, v, "out of memory", NULL);
		for (size_t i = 0; i < n; i++) {
			const yaml_node_t *it = yaml_document_get_node(L->doc, v->data.sequence.items.start[i]);
			const char *s = scalar(it);
			if (!s || strlen(s) > CPCONF_MAX_STR)
				return fail_at(L, it, "expected a string entry in", d->name);
			if (!(l->v[l->n++] = strdup(s)))
				return fail_at(L, v, "out of memory", NULL);
		}
		return 0;
	}
	struct cpconf_map *m = f;
	free_map(m);
	if (v->type == YAML_SCALAR_NODE && (!*scalar(v) || strcmp(scalar(v), "~") == 0))
		return 0;
	if (v->type != YAML_MAPPING_NODE)
		return fail_at(L, v, "expected a mapping for", d->name);
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	if (n > CPCONF_MAX_LIST)
		return fail_at(L, v, "too many entries in", d->name);
	m->key = calloc(n + 1, sizeof(char *));
	m->value = calloc(n + 1, sizeof(char *));
	if (!m->key || !m->value)
		return fail_at(L, v, "out of memory", NULL);
	for (size_t i = 0; i < n; i++) {
		const yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		const yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
		const yaml_node_t *val = yaml_document_get_node(L->doc, p->value);
		if (!scalar(k) || !scalar(val))
			return fail_at(L, k, "expected key: value strings in", d->name);
		m->key[m->n] = strdup(scalar(k));
		m->value[m->n] = strdup(scalar(val));
		m->n++;
		if (!m->key[m->n - 1] || !m->value[m->n - 1])
			return fail_at(L, v, "out of memory", NULL);
	}
	return 0;
}

/* Walks a mapping; prefix is the dotted path so far. */
static int
walk_map(struct loader *L, const yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(L->doc, p->value);
		const char *ks = scalar(k);
		if (!ks)
			return fail_at(L, k, "a key must be a plain string", NULL);
		char name[256];
		if ((size_t)snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", ks) >=
		    sizeof(name))
			return fail_at(L, k, "key too long", NULL);
		size_t i;
		for (i = 0; i < NDIRECTIVES; i++)
			if (strcmp(directives[i].name, name) == 0)
				break;
		if (i < NDIRECTIVES) {
			if (L->seen[i])
				return fail_at(L, k, "duplicate directive", name);
			L->seen[i] = true;
			if (set_node(L, &directives[i], v) != 0)
				return -1;
			continue;
		}
		/* a section: some directive starts with "name." */
		size_t nl = strlen(name);
		bool section = false;
		for (i = 0; i < NDIRECTIVES && !section; i++)
			section = strncmp(directives[i].name, name, nl) == 0 && directives[i].name[nl] == '.';
		if (!section)
			return fail_at(L, k, "unknown directive", name);
		if (v->type != YAML_MAPPING_NODE)
			return fail_at(L, v, "expected a mapping for section", name);
		if (walk_map(L, v, name) != 0)
			return -1;
	}
	return 0;
}

/* Loads from an initialised parser; path names the source in messages. */
static int
load_parser(struct cpconf *c, yaml_parser_t *parser, const char *path, char *why, size_t whylen)
{
	yaml_document_t doc;
	int rc = -1;
	if (!yaml_parser_load(parser, &doc)) {
		snprintf(why, whylen, "%s: line %zu: %s", path, (size_t)parser->problem_mark.line + 1,
			 parser->problem ? parser->problem : "YAML syntax error");
		return -1;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) { /* an empty file: all defaults */
		rc = 0;
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		snprintf(why, whylen, "%s: the top level must be a mapping", path);
		goto out;
	}
	char inner[512];
	struct loader L = {.c = c, .doc = &doc, .why = inner, .whylen = sizeof(inner)};
	if (walk_map(&L, root, "") != 0) {
		snprintf(why, whylen, "%s: %s", path, inner);
		goto out;
	}
	rc = 0;
out:
	yaml_document_delete(&doc);
	return rc;
}

int
cpconf_load(struct cpconf *c, const char *path, char *why, size_t whylen)
{
	if (cpconf_defaults(c) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		cpconf_free(c);
		return -1;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc = load_parser(c, &parser, path, why, whylen);
	yaml_parser_delete(&parser);
	fclose(f);
	if (rc != 0)
		cpconf_free(c);
	return rc;
}

int
cpconf_load_mem(struct cpconf *c, const char *name, const void *p, size_t n, char *why,
		size_t whylen)
{
	if (cpconf_defaults(c) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, p, n);
	int rc = load_parser(c, &parser, name, why, whylen);
	yaml_parser_delete(&parser);
	if (rc != 0)
		cpconf_free(c);
	return rc;
}
