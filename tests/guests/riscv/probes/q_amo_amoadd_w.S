// q_amo with INSN = amoadd.w a0, a1, (t0) (the reviewer's t2)
#define INSN amoadd.w a0, a1, (t0)
#include "q_amo.inc"
