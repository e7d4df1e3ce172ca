/* tag-results.h — the files of a tagging run (formats in agriclip.h,
 * "tagging runs"); what the rest of core/tagging shares beyond the public
 * calls. */
#pragma once

#include "agriclip.h"

#define AGC_TAG_RUN_FILE "run.json"
#define AGC_TAG_RESULTS_FILE "results.jsonl"

/* s as a JSON string literal, quotes included; bytes >= 0x80 as they are
 * (callers give UTF-8, or use the _base64 companion for paths). */
void agc_tag_append_json_string (GString *out, const char *s);
