/* tag-results.h — the files of a tagging run (formats in agriclip.h,
 * "tagging runs"); what the rest of core/tagging shares beyond the public
 * calls. */
#pragma once

#include "agriclip.h"

#define AGC_TAG_RUN_FILE "run.json"
#define AGC_TAG_RESULTS_FILE "results.jsonl"

