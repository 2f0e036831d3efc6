// q_umode with INSN = mret
#define INSN mret
#include "q_umode.inc"
