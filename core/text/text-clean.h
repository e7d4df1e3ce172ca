/* text-clean.h — the text normalisation CLIP applies before tokenising:
 * a subset of ftfy's fix_text (NFC, curly quotes, ligatures), HTML entities
 * unescaped twice, whitespace collapsed and stripped, Unicode lower case. */
#pragma once

#include <glib.h>

/* Returns a newly allocated clean UTF-8 string, or NULL with an
 * AGC_ERROR_INPUT error when text is not valid UTF-8. */
char *agc_text_clean (const char *text, GError **error);

/* \s of Python's regex module: the Unicode White_Space property.  The
 * pre-tokeniser drops these characters between tokens. */
gboolean agc_unichar_is_white_space (gunichar c);
