// q_umode with INSN = csrr a0, mcycle
#define INSN csrr a0, mcycle
#include "q_umode.inc"
