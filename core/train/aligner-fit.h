/* aligner-fit.h — closed-form ridge regression, the solver that fits
 * AgriCLIP's aligner (aligner-train.c): W[out, in] and b[out] minimising
 *
 *   Σ_i |W x_i + b - y_i|² + λ |W|²      (the bias is not penalised)
 *
 * Centring x and y on their means takes b out of the problem:
 *   (Xcᵀ Xc + λ I) Wᵀ = Xcᵀ Yc,   b = ȳ - W x̄.
 * The Gram matrix Xcᵀ Xc and Xcᵀ Yc are formed once (dsyrk, dgemm); each λ
 * costs one Cholesky factorisation (LAPACK dpotrf, which OpenBLAS carries)
 * and two triangular solves.  Everything is in double precision: at a small
 * λ the system is ill-conditioned (2048 correlated features, often fewer
 * images), and float32 would lose most digits there. */
#pragma once

#include "agriclip.h"

typedef struct AgcRidge AgcRidge;

/* The problem of x[n, in_dim] -> y[n, out_dim]; n >= 1. */
AgcRidge *agc_ridge_new (const float *x, const float *y, int n, int in_dim, int out_dim);
void agc_ridge_free (AgcRidge *ridge);

/* trace(Xcᵀ Xc): n times the summed variances of the inputs, the natural
 * unit of λ (λ = trace / in_dim is the mean eigenvalue). */
double agc_ridge_trace (const AgcRidge *ridge);

/* weight[out_dim, in_dim] (a torch Linear weight) and bias[out_dim] for
 * λ >= 0.  AGC_ERROR_INPUT when the system is singular (λ = 0 with fewer
 * images than inputs, or inputs that do not vary) or the result is not
 * finite. */
gboolean agc_ridge_solve (float *weight, float *bias, const AgcRidge *ridge, double lambda,
                          GError **error);
