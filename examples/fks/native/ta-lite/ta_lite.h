/* ta-lite: a tiny technical-analysis C library standing in for TA-Lib in the fks example.
 * Every function reads `n` prices from `in` and writes one value per input index to `out`;
 * the first (period - 1) outputs (period for RSI) are NaN because there is not enough history.
 * They return the number of defined outputs, or -1 on a bad argument. */
#ifndef TA_LITE_H
#define TA_LITE_H

#define TA_LITE_VERSION "0.4.0"

const char *ta_version(void);
int ta_sma(const double *in, int n, int period, double *out);
int ta_ema(const double *in, int n, int period, double *out);
int ta_rsi(const double *in, int n, int period, double *out);

#endif
