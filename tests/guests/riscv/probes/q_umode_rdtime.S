// q_umode with INSN = rdtime a0 (mcounteren = 0)
#define INSN rdtime a0
#include "q_umode.inc"
