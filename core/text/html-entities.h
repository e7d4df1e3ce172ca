/* html-entities.h — the HTML5 named character references (private to
 * text-clean.c), the same table as Python's html.entities.html5.
 *
 * html-entities.c is generated: for every (name, value) of
 * sorted(html.entities.html5.items()) it holds { "name", "value as UTF-8
 * \x escapes" }, sorted by name (the names are ASCII). */
#pragma once

#include <stddef.h>

/* The UTF-8 replacement of the entity called name[0..len), e.g. "amp;" or
 * the legacy "amp", or NULL when there is no such entity. */
const char *agc_html_entity_lookup (const char *name, size_t len);
