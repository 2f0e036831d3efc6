// q_mmio with INSN = csrr a0, mcycle
#define INSN csrr a0, mcycle
#include "q_mmio.inc"
