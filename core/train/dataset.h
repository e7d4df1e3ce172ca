/* dataset.h — a folder of tagged photos (DATA/TAG/…), its classes, and
 * the seeded stratified split into training and validation images.  The
 * folder layout and labels.json are described in agriclip.h ("training"). */
#pragma once

#include "agriclip.h"

typedef struct
{
  char *dir;           /* as given */
  AgcLabelSet *labels; /* one class per tag folder; export name = tag */
  int n_files;
  char **files;   /* [n_files + 1] paths, class by class, sorted by path within a class; NULL */
  int *class_of;  /* [n_files] class index of each file */
} AgcDataset;

/* Lists the tag folders and their files (not decoded yet).  Files directly
 * in dir (other than labels.json) belong to no class: they go to report
 * and are left out.  AGC_ERROR_IO when dir cannot be read, AGC_ERROR_FORMAT
 * when labels.json is broken or does not match the folders, AGC_ERROR_INPUT
 * with fewer than two tag folders or an empty one. */
AgcDataset *agc_dataset_open (const char *dir, AgcTrainReportFunc report, gpointer user_data,
                              GError **error);
void agc_dataset_free (AgcDataset *dataset);

/* The next number of a splitmix64 sequence of *state: the same on every
 * machine, unlike rand() and GRand. */
guint64 agc_splitmix64 (guint64 *state);

/* Shuffles items[n] in place, the same way for the same (seed, stream)
 * on every machine (splitmix64 and Fisher-Yates, not rand()). */
void agc_shuffle (int *items, int n, guint64 seed, guint64 stream);

/* is_val[n]: which of n images (of classes class_of[n]) are held out.  Per
 * class: round(n_c · val_fraction) images, at most n_c - 1, drawn by a
 * shuffle of the class's images (in list order) seeded with seed. */
void agc_dataset_split (gboolean *is_val, const int *class_of, int n, int n_classes,
                        double val_fraction, guint64 seed);
