/* error.c — the AGC_ERROR domain, and setting its errors. */
#include "support/error.h"

#include "agriclip.h"

GQuark
agc_error_quark (void)
{
  return g_quark_from_static_string ("agc-error-quark");
}

gboolean
agc_fail_at_valist (GError **error, int code, const char *where, const char *format, va_list args)
{
  g_autofree char *message = g_strdup_vprintf (format, args);
  g_set_error (error, AGC_ERROR, code, "%s: %s", where, message);
  return FALSE;
}

gboolean
agc_fail_at (GError **error, int code, const char *where, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  agc_fail_at_valist (error, code, where, format, args);
  va_end (args);
  return FALSE;
}

gboolean
agc_cancelled (GCancellable *cancellable, GError **error, const char *message)
{
  if (!g_cancellable_is_cancelled (cancellable))
    return FALSE;
  g_set_error_literal (error, AGC_ERROR, AGC_ERROR_CANCELLED, message);
  return TRUE;
}
