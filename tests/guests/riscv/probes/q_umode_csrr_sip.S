// q_umode with INSN = csrr a0, sip
#define INSN csrr a0, sip
#include "q_umode.inc"
