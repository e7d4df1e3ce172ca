/* error.c — the AGC_ERROR domain. */
#include "agriclip.h"

GQuark
agc_error_quark (void)
{
  return g_quark_from_static_string ("agc-error-quark");
}
