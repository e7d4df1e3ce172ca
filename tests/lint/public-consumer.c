/* public-consumer.c — a program written against the installed library only:
 * <agriclip.h> from pkg-config's include path, -lagriclip from its libs.
 * check-install.sh builds and runs it against a staged `meson install`. */
#include <agriclip.h>

#include <stdio.h>

int
main (void)
{
  const char *names[] = { "rust", "blight", "healthy leaf" };
  GError *error = NULL;
  AgcLabelSet *set = agc_label_set_new_from_names (names, 3, NULL, 0, &error);
  if (!set)
    {
      fprintf (stderr, "public-consumer: %s\n", error->message);
      return 1;
    }
  printf ("%d classes, first %s\n", agc_label_set_n_classes (set),
          agc_label_set_class_name (set, 0));
  agc_label_set_free (set);
  return 0;
}
