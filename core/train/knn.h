/* knn.h — weighted k-nearest-neighbour voting, as DINO's eval_knn.py
 * (facebookresearch/dino) measures features: the k bank rows most
 * cosine-similar to a query vote for their class with weight
 * exp(cos / temperature); the class with the most weight wins. */
#pragma once

#include <glib.h>

/* bank[n_bank, dim] and queries[n, dim] L2-normalised rows; bank_class
 * [n_bank] in 0 .. n_classes - 1 -> predicted[n].  k is clamped to n_bank
 * (n_bank >= 1).  Ties go to the lower class index. */
void agc_knn_classify (const float *bank, const int *bank_class, int n_bank, const float *queries,
                       int n, int dim, int k, double temperature, int n_classes, int *predicted);

/* Scales each row of rows[n, dim] to unit length (an all-zero row stays 0). */
void agc_knn_normalise (float *rows, int n, int dim);
