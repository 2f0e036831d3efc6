// q_mmio with INSN = csrr a0, mip
#define INSN csrr a0, mip
#include "q_mmio.inc"
