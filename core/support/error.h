/* error.h — setting the library's errors (the AGC_ERROR domain is in
 * agriclip.h). */
#pragma once

#include <gio/gio.h>
#include <stdarg.h>

/* Sets *error (AGC_ERROR, code) to "where: message", message formatted
 * from format, and returns FALSE, so that a check can end in
 * `return agc_fail_at (…)`.  where names what is wrong: a file's display
 * name, often with more ("model.pt: byte 12"). */
gboolean agc_fail_at (GError **error, int code, const char *where, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

/* agc_fail_at with the arguments of format in args. */
gboolean agc_fail_at_valist (GError **error, int code, const char *where, const char *format,
                             va_list args) G_GNUC_PRINTF (4, 0);

/* TRUE, with *error set to AGC_ERROR_CANCELLED and message, when
 * cancellable (NULL: never) has been cancelled: the check long work makes
 * between its steps. */
gboolean agc_cancelled (GCancellable *cancellable, GError **error, const char *message);
