/* Dirty-page tracking for snapshots (machine/ram.py).
 *
 * A snapshot shares every 4 KiB page that did not change since the previous
 * one. Comparing all of RAM to find the changed pages costs ~16 ms per
 * 128 MiB, too much for a snapshot every few milliseconds of guest time. So
 * tracked RAM is kept read-only: the first write to a page after a snapshot
 * faults, this SIGSEGV handler marks the page dirty and makes it writable,
 * and the write is retried. A snapshot then costs the pages written since the
 * last one plus one mprotect call. Faults outside tracked RAM go to the
 * handler that was installed before (Python's faulthandler, or the default).
 *
 * Writes by the kernel (a read(2) into RAM) would fail with EFAULT instead of
 * faulting: chronicorn only writes RAM from user space (Unicorn, mmap slices).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_REGIONS 256

struct region {
    volatile uintptr_t base; /* 0: free slot */
    volatile uintptr_t size;
    volatile uint8_t *dirty; /* one byte per page */
    volatile uint32_t *list; /* the dirty pages' indices, in the order they were first written */
    volatile uint64_t nlist;
    volatile int overflow;   /* mprotect failed (too many mappings): the region is writable, untracked */
};

/* Up to this many dirty pages are made read-only again one by one; more, the whole region in one call
 * (the kernel walks every page of the range: ~10 us for 128 MiB, a few pages' worth one by one). */
#define REPROTECT_ONE_BY_ONE 32u

static struct region regions[MAX_REGIONS];
static struct sigaction previous;
static int installed;
static uintptr_t page_size;

static void on_segv(int sig, siginfo_t *info, void *context)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (int i = 0; i < MAX_REGIONS; i++) {
        struct region *r = &regions[i];
        uintptr_t base = r->base;
        if (base && addr - base < r->size) {
            uintptr_t page = (addr - base) / page_size;
            if (!r->dirty[page]) {
                r->dirty[page] = 1;
                r->list[r->nlist++] = (uint32_t)page;
            }
            if (mprotect((void *)(base + page * page_size), page_size, PROT_READ | PROT_WRITE) == 0)
                return; /* the write is retried and succeeds */
            /* Each unprotected page splits the mapping; past the kernel's limit on mappings
             * (vm.max_map_count) mprotect fails. Give up tracking this region: make all of it
             * writable again (that merges the mappings) and let Python compare contents instead. */
            r->overflow = 1;
            if (mprotect((void *)base, r->size, PROT_READ | PROT_WRITE) == 0)
                return;
            break;
        }
    }
    /* Not ours: hand over to whoever handled SIGSEGV before us. */
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        sigaction(SIGSEGV, &previous, NULL); /* returning re-runs the access: it dies as it would have */
    }
}

/* Start tracking [base, base+size) (page-aligned); dirty has size/page bytes, list as many uint32s.
 * Returns a slot or -1. */
int chron_track(void *base, uint64_t size, uint8_t *dirty, uint32_t *list)
{
    page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (!installed) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_segv;
        action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGSEGV, &action, &previous) != 0)
            return -1;
        installed = 1;
    }
    for (int i = 0; i < MAX_REGIONS; i++) {
        if (!regions[i].base) {
            regions[i].size = size;
            regions[i].dirty = dirty;
            regions[i].list = list;
            regions[i].nlist = 0;
            regions[i].overflow = 0;
            regions[i].base = (uintptr_t)base;
            if (mprotect(base, size, PROT_READ) != 0) {
                regions[i].base = 0;
                return -1;
            }
            return i;
        }
    }
    return -1;
}

/* Stop tracking a slot: RAM becomes writable again. */
void chron_untrack(int slot)
{
    if (slot < 0 || slot >= MAX_REGIONS || !regions[slot].base)
        return;
    mprotect((void *)regions[slot].base, regions[slot].size, PROT_READ | PROT_WRITE);
    regions[slot].base = 0;
}

/* Write the indices of the pages written since the last call into out, clear the marks and
 * make the region read-only again. Returns how many; -1 if mprotect failed, -2 if tracking
 * overflowed (then the region stays writable and the caller must compare contents). */
int64_t chron_take_dirty(int slot, uint32_t *out)
{
    struct region *r = &regions[slot];
    uint64_t n = r->nlist;
    if (r->overflow)
        return -2;
    if (n > REPROTECT_ONE_BY_ONE) {
        if (mprotect((void *)r->base, r->size, PROT_READ) != 0)
            return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t page = r->list[i];
        if (n <= REPROTECT_ONE_BY_ONE
            && mprotect((void *)(r->base + (uintptr_t)page * page_size), page_size, PROT_READ) != 0)
            return -1;
        r->dirty[page] = 0;
        out[i] = page;
    }
    r->nlist = 0;
    return (int64_t)n;
}
