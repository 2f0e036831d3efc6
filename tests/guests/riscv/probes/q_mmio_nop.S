// q_mmio with INSN = nop
#define INSN nop
#include "q_mmio.inc"
