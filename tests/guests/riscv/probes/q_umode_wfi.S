// q_umode with INSN = wfi (the reviewer's t3)
#define INSN wfi
#include "q_umode.inc"
