/* ta-lite: simple moving average, exponential moving average and Wilder's RSI. */
#include <math.h>
#include "ta_lite.h"

const char *ta_version(void) { return TA_LITE_VERSION; }

static int bad(const double *in, int n, int period, const double *out) {
    return in == 0 || out == 0 || n <= 0 || period <= 0 || period > n;
}

int ta_sma(const double *in, int n, int period, double *out) {
    if (bad(in, n, period, out)) return -1;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        sum += in[i];
        if (i >= period) sum -= in[i - period];
        out[i] = i >= period - 1 ? sum / period : NAN;
    }
    return n - period + 1;
}

int ta_ema(const double *in, int n, int period, double *out) {
    if (bad(in, n, period, out)) return -1;
    const double k = 2.0 / (period + 1);
    double sum = 0.0, ema = 0.0;
    for (int i = 0; i < n; i++) {
        if (i < period - 1) { sum += in[i]; out[i] = NAN; continue; }
        if (i == period - 1) { sum += in[i]; ema = sum / period; }  /* seeded with the SMA, like TA-Lib */
        else ema = (in[i] - ema) * k + ema;
        out[i] = ema;
    }
    return n - period + 1;
}

int ta_rsi(const double *in, int n, int period, double *out) {
    if (bad(in, n, period, out) || period >= n) return -1;
    double gain = 0.0, loss = 0.0;
    out[0] = NAN;
    for (int i = 1; i < n; i++) {
        double d = in[i] - in[i - 1];
        double g = d > 0 ? d : 0.0, l = d < 0 ? -d : 0.0;
        if (i <= period) {
            gain += g; loss += l;
            if (i < period) { out[i] = NAN; continue; }
            gain /= period; loss /= period;
        } else {  /* Wilder's smoothing */
            gain = (gain * (period - 1) + g) / period;
            loss = (loss * (period - 1) + l) / period;
        }
        out[i] = loss == 0.0 ? 100.0 : 100.0 - 100.0 / (1.0 + gain / loss);
    }
    return n - period;
}
