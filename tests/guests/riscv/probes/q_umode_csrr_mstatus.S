// q_umode with INSN = csrr a0, mstatus
#define INSN csrr a0, mstatus
#include "q_umode.inc"
