// q_mmio with INSN = wfi (the reviewer's t1)
#define INSN wfi
#include "q_mmio.inc"
