/* fuzz-json.c — libFuzzer harness for the checked JSON parse (support/
 * json-file.c) and, on the same input, every reader of a JSON file: each
 * input is written as config.json, preprocessor_config.json,
 * open_clip_config.json, agriclip.json, a label set, a catalogue and a
 * shard index, and each reader loads it.  Differential check: text the strict
 * scan accepts must parse in json-glib.  Built and run by tests/fuzz/run.sh. */
#include "fuzz-common.h"

#include "formats/weights.h"
#include "models/agriclip-manifest.h"
#include "models/clip-config.h"
#include "models/open-clip-config.h"
#include "support/json-file.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  JsonParser *parser = json_parser_new ();
  gboolean checked = agc_json_check_text ((const char *) data, size, "fuzz", NULL);
  if (agc_json_parse_data (parser, (const char *) data, size, "fuzz", &error))
    {
      if (!checked && !(size >= 3 && memcmp (data, "\xEF\xBB\xBF", 3) == 0))
        __builtin_trap (); // parsed although the scan refused it
    }
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_object_unref (parser);

  char *path = fuzz_write ("config.json", data, size);
  AgcClipConfig config;
  if (!agc_clip_config_load (path, &config, &error))
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);

  AgcPreprocess pre;
  path = fuzz_write ("preprocessor_config.json", data, size);
  if (!agc_preprocess_config_load (path, 224, &pre, &error))
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);

  path = fuzz_write ("open_clip_config.json", data, size);
  if (!agc_open_clip_config_load (path, &config, &pre, &error))
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);

  path = fuzz_write (AGC_AGRICLIP_MANIFEST, data, size);
  AgcAgriclipManifest manifest;
  if (agc_agriclip_manifest_load (&manifest, fuzz_dir (), &error))
    agc_agriclip_manifest_clear (&manifest);
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_unlink (path);
  g_free (path);

  path = fuzz_write ("labels.json", data, size);
  AgcLabelSet *labels = agc_label_set_load (path, &error);
  if (labels != NULL)
    agc_label_set_free (labels);
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);

  path = fuzz_write ("catalogue.json", data, size);
  AgcCatalogue *catalogue = agc_catalogue_load (path, &error);
  if (catalogue != NULL)
    agc_catalogue_free (catalogue);
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);

  path = fuzz_write ("model.safetensors.index.json", data, size);
  AgcWeights *weights = agc_weights_open (path, &error);
  if (weights != NULL)
    agc_weights_free (weights);
  else
    fuzz_check_failure (g_steal_pointer (&error));
  g_free (path);
  return 0;
}
