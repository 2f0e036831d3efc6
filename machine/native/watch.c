/*
 * chronicorn native watchpoint scan: a Unicorn memory hook (UC_HOOK_MEM_READ /
 * UC_HOOK_MEM_WRITE) that checks each access against the watch list and, on a
 * hit, records it and stops the engine the way the icount counter's own stops
 * do (stop_reason EXTERNAL, fast_limit 0, uc_emu_stop).
 *
 * machine/watch.py mirrors struct chron_watch with ctypes, registers this hook
 * ranged around the watched bytes, and runs the same check in Python when the
 * library is not built. As in icount.c, no Unicorn headers: uc_emu_stop,
 * uc_mem_read and the register readers are handed in as function pointers,
 * and the counter's words as pointers into its ctypes structure.
 *
 * Registers (AArch64, Armv7-M): when a watched load stops Unicorn, the load has
 * already written its destination (docs/unicorn-facts.md, "Watchpoints"), and
 * a load of several registers (LDM, POP, LDRD; LDP of SIMD&FP registers, LD1-LD4)
 * writes the first ones before its later accesses even reach the hook. So the
 * hook saves the registers a load can write at the first in-range read of each
 * instruction that makes several accesses, and at a hit (unless saved for that
 * very instruction already); the engine puts them back at the stop.
 */
#include <stdint.h>

typedef int (*emu_stop_fn)(void *uc);
typedef int (*mem_read_fn)(void *uc, uint64_t addr, void *buf, uint64_t size);
typedef int (*reg_read_fn)(void *uc, int regid, void *value);
typedef int (*reg_read_batch_fn)(void *uc, const int *regs, void **vals, int count);

enum { UC_MEM_READ = 16, UC_MEM_WRITE = 17 };
enum { KIND_WRITE = 2, KIND_READ = 3, KIND_ACCESS = 4 };  /* machine.watch.WatchKind */
enum { STOP_NONE = 0, STOP_EXTERNAL = 4 };                /* machine.icount.StopReason */
enum { SAVE_NONE = 0, SAVE_A64 = 1, SAVE_THUMB = 2 };      /* machine.watch.SaveIsa */

#define WATCH_OLD_MAX 64u

struct chron_watch_entry {
    uint64_t addr;
    uint64_t end;   /* addr + length (exclusive) */
    uint64_t kind;
};

struct chron_watch {
    uint64_t *stop_reason;   /* the counter's: a stop already requested wins */
    uint64_t *fast_limit;    /* the counter's: 0 sends every later block hook down its slow path */
    void *emu_stop;
    void *mem_read;
    const struct chron_watch_entry *entries;
    uint64_t n_entries;
    uint64_t suspended;      /* 1 while stepping off a hit (Engine.step_unwatched) */
    uint64_t hit;            /* 1: a hit was recorded and not yet taken */
    uint64_t hit_index;      /* into entries */
    uint64_t hit_addr;       /* first watched address the access touches */
    uint64_t access_addr;
    uint64_t access_size;
    uint64_t is_write;
    uint64_t old_status;     /* writes: 0 when old[] holds the bytes the write replaced */
    uint8_t old[WATCH_OLD_MAX];
    /* Saving registers at reads (save_isa SAVE_NONE: never, RISC-V). */
    uint64_t save_isa;
    uint64_t pc_reg;
    void *reg_read;
    void *reg_read_batch;
    const uint64_t *block_icount;  /* the counter's: with pc, names one execution of one instruction */
    const int *save_regs;
    void **save_values;            /* one buffer of 16 bytes per register */
    uint64_t n_save;
    uint64_t save_valid;           /* save_values hold the registers before instruction (save_pc, save_block) */
    uint64_t save_pc;
    uint64_t save_block;
    uint64_t hit_saved;            /* 1: the hit's registers are in save_values (save_status 0: read) */
    uint64_t save_status;
    uint64_t decoded_pc;           /* one-entry cache: the last instruction decoded, and whether it loads */
    uint64_t decoded_multi;        /* several registers in several accesses */
};

uint64_t chron_watch_size(void) { return sizeof(struct chron_watch); }

/* A load that writes registers between its accesses (Unicorn's translations; over-approximated: a load this
   says yes to wrongly costs only a save). A64: LDP/LDNP of SIMD&FP registers, LD1-LD4 (single and multiple
   structures). Thumb: LDM/LDMDB/POP (16 and 32 bits), LDRD (and LDREX, TBB/TBH: same pattern). */
int chron_watch_is_multi_load(uint64_t isa, uint32_t insn)
{
    if (isa == SAVE_A64)
        return (insn & 0x3E400000u) == 0x2C400000u || (insn & 0xBE400000u) == 0x0C400000u;
    if (isa == SAVE_THUMB) {
        uint32_t hw = insn & 0xFFFFu;
        if ((hw & 0xF800u) == 0xC800u || (hw & 0xFE00u) == 0xBC00u)
            return 1;
        return (hw & 0xFE10u) == 0xE810u;  /* 32-bit load multiple / dual, L = 1 */
    }
    return 0;
}

static void save_registers(void *uc, struct chron_watch *w, uint64_t pc)
{
    w->save_status = ((reg_read_batch_fn)w->reg_read_batch)(uc, w->save_regs, w->save_values, (int)w->n_save);
    w->save_valid = 1;
    w->save_pc = pc;
    w->save_block = *w->block_icount;
}

/* A read in the hook's range: remember the registers before an instruction that loads several. */
static void note_read(void *uc, struct chron_watch *w, uint64_t pc)
{
    if (w->save_valid && w->save_pc == pc && w->save_block == *w->block_icount)
        return;  /* saved at this instruction's first access already */
    if (pc != w->decoded_pc) {
        /* uc_mem_read, not uc_vmem_read: translating an address inside a memory hook made Unicorn skip the hooks
           of the rest of the block on Cortex-M (the pendsv guest's LDM). So pc is read as a physical address:
           right without an MMU; with one, a wrong answer costs a save or leaves a load of several SIMD registers
           partly written at its stop, as before registers were saved. */
        uint32_t insn = 0;  /* (little-endian: a Thumb instruction's first halfword in the low bits) */
        mem_read_fn read = (mem_read_fn)w->mem_read;
        if (read(uc, pc, &insn, 4) != 0 && (w->save_isa != SAVE_THUMB || read(uc, pc, &insn, 2) != 0))
            insn = 0;
        w->decoded_pc = pc;
        w->decoded_multi = (uint64_t)chron_watch_is_multi_load(w->save_isa, insn);
    }
    if (w->decoded_multi)
        save_registers(uc, w, pc);
}

void chron_watch_hook(void *uc, int type, uint64_t addr, int size, int64_t value, struct chron_watch *w)
{
    (void)value;
    if (w->suspended || *w->stop_reason != STOP_NONE)
        return;
    int is_write = type == UC_MEM_WRITE;
    uint64_t pc = 0;
    if (w->save_isa != SAVE_NONE && !is_write)
        ((reg_read_fn)w->reg_read)(uc, (int)w->pc_reg, &pc);  /* exact in a memory hook */
    uint64_t end = addr + (uint64_t)size;
    if (end < addr)
        end = UINT64_MAX;
    for (uint64_t i = 0; i < w->n_entries; i++) {
        const struct chron_watch_entry *e = &w->entries[i];
        if ((e->kind == KIND_WRITE && !is_write) || (e->kind == KIND_READ && is_write))
            continue;
        uint64_t lo = addr > e->addr ? addr : e->addr;
        uint64_t hi = end < e->end ? end : e->end;
        if (lo >= hi)
            continue;
        w->hit = 1;
        w->hit_index = i;
        w->hit_addr = lo;
        w->access_addr = addr;
        w->access_size = (uint64_t)size;
        w->is_write = (uint64_t)is_write;
        w->old_status = 0;
        w->hit_saved = 0;
        if (w->save_isa != SAVE_NONE && !is_write) {
            if (!(w->save_valid && w->save_pc == pc && w->save_block == *w->block_icount))
                save_registers(uc, w, pc);
            w->hit_saved = 1;
        }
        /* The hook runs after the write, yet memory still holds the old bytes
           (docs/unicorn-facts.md, "Watchpoints"): save them to undo it. */
        if (is_write) {
            if ((uint64_t)size > WATCH_OLD_MAX)
                w->old_status = 1;
            else
                w->old_status = ((mem_read_fn)w->mem_read)(uc, addr, w->old, (uint64_t)size) != 0 ? 2 : 0;
        }
        *w->stop_reason = STOP_EXTERNAL;
        *w->fast_limit = 0;
        ((emu_stop_fn)w->emu_stop)(uc);
        return;
    }
    if (w->save_isa != SAVE_NONE && !is_write)
        note_read(uc, w, pc);
}
