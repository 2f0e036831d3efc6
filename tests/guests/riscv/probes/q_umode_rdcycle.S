// q_umode with INSN = rdcycle a0 (mcounteren = 0)
#define INSN rdcycle a0
#include "q_umode.inc"
