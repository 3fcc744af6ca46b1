/*
 * cpu_rnn.c — the CPU device's recurrent layers (LSTM, GRU, RNN).
 */
#include "device/cpu/cpu.h"

si_result cpu_lower_rnn(cpu_pb *b, int n) {
    (void)b;
    (void)n;
    return SI_ERR_UNSUPPORTED;
}
