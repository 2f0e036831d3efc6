/*
 * chronicorn native watchpoint scan: a Unicorn memory hook (UC_HOOK_MEM_READ /
 * UC_HOOK_MEM_WRITE) that checks each access against the watch list and, on a
 * hit, records it and stops the engine the way the icount counter's own stops
 * do (stop_reason EXTERNAL, fast_limit 0, uc_emu_stop).
 *
 * machine/watch.py mirrors struct chron_watch with ctypes, registers this hook
 * ranged around the watched bytes, and runs the same check in Python when the
 * library is not built. As in icount.c, no Unicorn headers: uc_emu_stop and
 * uc_mem_read are handed in as function pointers, and the counter's two words
 * as pointers into its ctypes structure.
 */
#include <stdint.h>

typedef int (*emu_stop_fn)(void *uc);
typedef int (*mem_read_fn)(void *uc, uint64_t addr, void *buf, uint64_t size);

enum { UC_MEM_READ = 16, UC_MEM_WRITE = 17 };
enum { KIND_WRITE = 2, KIND_READ = 3, KIND_ACCESS = 4 };  /* machine.watch.WatchKind */
enum { STOP_NONE = 0, STOP_EXTERNAL = 4 };                /* machine.icount.StopReason */

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
};

uint64_t chron_watch_size(void) { return sizeof(struct chron_watch); }

void chron_watch_hook(void *uc, int type, uint64_t addr, int size, int64_t value, struct chron_watch *w)
{
    (void)value;
    if (w->suspended || *w->stop_reason != STOP_NONE)
        return;
    int is_write = type == UC_MEM_WRITE;
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
}
