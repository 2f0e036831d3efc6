// q_mmio with INSN = rdtime a0
#define INSN rdtime a0
#include "q_mmio.inc"
