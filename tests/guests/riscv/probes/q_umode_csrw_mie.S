// q_umode with INSN = csrw mie, a0
#define INSN csrw mie, a0
#include "q_umode.inc"
