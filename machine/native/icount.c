/*
 * chronicorn native icount helper: a Unicorn block hook that counts retired
 * instructions and stops *before* a block that would cross a limit, plus a
 * code hook used only while landing inside such a block.
 *
 * Kept deliberately tiny: all policy lives in machine/icount.py, which mirrors
 * struct chron_counter with ctypes and runs the same algorithm in Python when
 * this library is not built. No Unicorn headers are needed: the two engine
 * entry points we call are handed in as function pointers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*emu_stop_fn)(void *uc);
/* uc_vmem_read: code is read through the guest MMU, as the CPU fetched it. */
typedef int (*vmem_read_fn)(void *uc, uint64_t addr, int prot, void *buf, uint64_t size);
#define UC_PROT_EXEC 4

#define CACHE_SLOTS 8192u
#define CACHE_WAYS 4u   /* 4 x 16-byte slots: one cache line per set */
#define MAX_TRAPPED_CSRS 32u
#define MAX_TRAPPED_WORDS 8u
#define MAX_NEW_SPECIALS 64u
#define MAX_EXEC 16384u /* distinct blocks noted per index window; more marks the window unknown */

enum { ISA_FIXED4 = 0, ISA_RISCV_C = 1, ISA_A64 = 2, ISA_THUMB = 3 };
enum { STOP_NONE = 0, STOP_LIMIT = 1, STOP_SOFT = 2, STOP_SPECIAL = 3, STOP_EXTERNAL = 4, STOP_UNREADABLE = 5 };

/* epoch: the index window in which the block was last noted as executed (0: never). */
struct cache_slot { uint64_t addr; uint16_t size; uint16_t insns; uint32_t epoch; };
struct exec_block { uint64_t addr; uint64_t end; };

struct chron_counter {
    uint64_t fast_limit;    /* min(limit, soft_limit); 0 forces the slow path (stops, landing) */
    uint64_t icount;        /* retired instructions (exact whenever stopped) */
    uint64_t limit;         /* hard limit: never run past it */
    uint64_t soft_limit;    /* stop at the first block boundary at/after it */
    uint64_t block_icount;  /* icount at the start of the current block */
    uint64_t block_addr;
    uint64_t block_size;
    uint64_t block_insns;
    uint64_t in_block;      /* instructions started in the block (landing) */
    uint64_t stop_reason;
    uint64_t landing;       /* 1 while a landing code hook is armed */
    uint64_t isa;
    uint64_t cache_misses;
    uint64_t n_trapped_csrs;
    uint64_t trapped_csrs[MAX_TRAPPED_CSRS];
    uint64_t n_trapped_words;
    uint64_t trapped_masks[MAX_TRAPPED_WORDS];   /* insn & mask == value */
    uint64_t trapped_words[MAX_TRAPPED_WORDS];
    uint64_t miss_addr;     /* block whose scan found new specials */
    uint64_t miss_size;
    uint64_t miss_insns;
    uint64_t n_new_specials;
    uint64_t new_specials[MAX_NEW_SPECIALS];
    void *emu_stop;
    void *vmem_read;
    struct cache_slot cache[CACHE_SLOTS];
    /* Execution index (which code ran in a window): each block is noted once per window (epoch);
     * exec_epoch 0 means not indexing. */
    uint64_t exec_epoch;
    uint64_t n_exec;
    uint64_t exec_overflow;
    struct exec_block exec[MAX_EXEC];
    /* Thumb, while landing: the end of the IT block whose IT instruction was last hooked (code hooks of the
     * instructions it makes conditional are not counted: Unicorn executes an IT block as one instruction). */
    uint64_t it_end;
};

/* Bytes of the instructions an IT instruction (halfword `hw`) makes conditional, at buf[off..]; 0 if not IT. */
static uint64_t it_block_bytes(uint32_t hw, const uint8_t *buf, uint64_t off, uint64_t len)
{
    if ((hw & 0xff00u) != 0xbf00u || (hw & 0xfu) == 0)
        return 0;
    int k = (hw & 1u) ? 4 : (hw & 2u) ? 3 : (hw & 4u) ? 2 : 1;
    uint64_t start = off;
    while (k-- > 0 && off + 2 <= len) {
        uint32_t h = (uint32_t)buf[off] | ((uint32_t)buf[off + 1] << 8);
        off += (h & 0xf800u) >= 0xe800u ? 4 : 2;
    }
    return off - start;
}

uint64_t chron_counter_size(void) { return sizeof(struct chron_counter); }

/* First slot of the set for a block (multiplicative hash; sets are 4-way). */
static uint32_t set_of(uint64_t addr, uint32_t size)
{
    uint64_t h = (addr ^ ((uint64_t)size << 48)) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 53) * CACHE_WAYS;   /* 2048 sets */
}

static struct cache_slot *lookup(struct chron_counter *c, uint64_t addr, uint32_t size)
{
    struct cache_slot *set = &c->cache[set_of(addr, size)];
    for (uint32_t i = 0; i < CACHE_WAYS; i++)
        if (set[i].addr == addr && set[i].size == size && set[i].insns != 0)
            return &set[i];
    return 0;
}

/* Insert at the front of the set, pushing the least recently inserted out. */
static void insert(struct chron_counter *c, uint64_t addr, uint32_t size, uint32_t insns)
{
    struct cache_slot *set = &c->cache[set_of(addr, size)];
    memmove(&set[1], &set[0], (CACHE_WAYS - 1) * sizeof(*set));
    set[0].addr = addr;
    set[0].size = (uint16_t)size;
    set[0].insns = (uint16_t)insns;
    set[0].epoch = 0;   /* noted when it is entered, not when it is decoded */
    if (size > 0xffffu || insns > 0xffffu)
        set[0].addr = ~0ull;   /* cannot be cached (never happens: a block lies within one page) */
}

/* Note a block as executed in the current index window. */
static void note_exec(struct chron_counter *c, uint64_t addr, uint32_t size)
{
    if (c->n_exec < MAX_EXEC) {
        c->exec[c->n_exec].addr = addr;
        c->exec[c->n_exec].end = addr + (size ? size : 1);
        c->n_exec++;
    } else {
        c->exec_overflow = 1;
    }
}

/* A 32-bit instruction the board handles: a pattern (wfi, mret, fence.i...) or a CSR access. */
static int is_trapped(const struct chron_counter *c, uint32_t insn)
{
    uint32_t funct3 = (insn >> 12) & 7u;
    for (uint64_t i = 0; i < c->n_trapped_words; i++)
        if ((insn & c->trapped_masks[i]) == c->trapped_words[i])
            return 1;
    if ((insn & 0x7fu) != 0x73u || funct3 == 0u || funct3 == 4u)
        return 0;
    for (uint64_t i = 0; i < c->n_trapped_csrs; i++)
        if (c->trapped_csrs[i] == (insn >> 20))
            return 1;
    return 0;
}

/* Count the instructions in [addr, end) and note trapped instructions; 0 if unreadable. */
static uint64_t decode(struct chron_counter *c, void *uc, uint64_t addr,
                       uint64_t end, int note_specials)
{
    uint8_t buf[4096];
    uint64_t len = end - addr;
    if (c->isa == ISA_FIXED4 || (c->isa == ISA_A64 && !note_specials))
        return len >> 2;
    if (len > sizeof(buf) - 4)
        len = sizeof(buf) - 4;
    memset(buf, 0, sizeof(buf));
    if (((vmem_read_fn)c->vmem_read)(uc, addr, UC_PROT_EXEC, buf, len) != 0)
        return 0;
    if (c->isa == ISA_A64) {   /* fixed 4-byte words, some of them trapped */
        if (note_specials)
            for (uint64_t off = 0; off + 4 <= len; off += 4) {
                uint32_t insn = (uint32_t)buf[off] | ((uint32_t)buf[off + 1] << 8) |
                                ((uint32_t)buf[off + 2] << 16) | ((uint32_t)buf[off + 3] << 24);
                if (is_trapped(c, insn) && c->n_new_specials < MAX_NEW_SPECIALS)
                    c->new_specials[c->n_new_specials++] = addr + off;
            }
        return len >> 2;
    }
    uint64_t n = 0, off = 0;
    if (c->isa == ISA_THUMB) {   /* 16-bit halfwords; 0b11101/0b11110/0b11111 in the top bits start a 32-bit one */
        while (off < len) {
            uint32_t hw = (uint32_t)buf[off] | ((uint32_t)buf[off + 1] << 8);
            uint32_t insn = hw;
            int wide = (hw & 0xf800u) >= 0xe800u;
            if (wide)
                insn = (hw << 16) | (uint32_t)buf[off + 2] | ((uint32_t)buf[off + 3] << 8);
            int trapped = is_trapped(c, insn);
            uint64_t at = off;
            off += wide ? 4 : 2;
            if (!wide) {   /* an IT block retires as one instruction (as Unicorn executes it) */
                uint64_t it = it_block_bytes(hw, buf, off, len);
                /* a trapped member (a conditional MSR, CPS) traps the block: its IT instruction is noted */
                for (uint64_t m = off; m < off + it && !trapped; ) {
                    uint32_t h = (uint32_t)buf[m] | ((uint32_t)buf[m + 1] << 8);
                    int w = (h & 0xf800u) >= 0xe800u;
                    uint32_t member = w ? (h << 16) | (uint32_t)buf[m + 2] | ((uint32_t)buf[m + 3] << 8) : h;
                    trapped = is_trapped(c, member);
                    m += w ? 4 : 2;
                }
                off += it;
            }
            if (note_specials && trapped && c->n_new_specials < MAX_NEW_SPECIALS)
                c->new_specials[c->n_new_specials++] = addr + at;
            n++;
        }
        return n;
    }
    while (off < len) {
        uint32_t lo = (uint32_t)buf[off] | ((uint32_t)buf[off + 1] << 8);
        if ((lo & 3u) == 3u) {
            uint32_t insn = lo | ((uint32_t)buf[off + 2] << 16) | ((uint32_t)buf[off + 3] << 24);
            if (note_specials && is_trapped(c, insn) && c->n_new_specials < MAX_NEW_SPECIALS)
                c->new_specials[c->n_new_specials++] = addr + off;
            off += 4;
        } else {
            off += 2;
        }
        n++;
    }
    return n;
}

static uint64_t block_insns(struct chron_counter *c, void *uc, uint64_t addr, uint32_t size)
{
    struct cache_slot *hit = lookup(c, addr, size);
    if (hit)
        return hit->insns;
    c->cache_misses++;
    uint64_t before = c->n_new_specials;
    uint64_t n = decode(c, uc, addr, addr + size, 1);
    if (c->n_new_specials == before) {   /* blocks with new specials are re-scanned */
        insert(c, addr, size, (uint32_t)n);
    } else {
        c->miss_addr = addr;
        c->miss_size = size;
        c->miss_insns = n;
    }
    return n;
}

static void stop(struct chron_counter *c, void *uc, uint64_t reason)
{
    c->stop_reason = reason;
    c->fast_limit = 0;
    ((emu_stop_fn)c->emu_stop)(uc);
}

static void enter_block(struct chron_counter *c, uint64_t addr, uint32_t size, uint64_t n)
{
    c->block_icount = c->icount;
    c->block_addr = addr;
    c->block_size = size;
    c->icount += n;
}

/* The block hook's slow path: a block not seen before, a limit, a stop (out of line: the fast path then saves no
 * registers). */
__attribute__((noinline)) static void block_slow(void *uc, uint64_t addr, uint32_t size, struct chron_counter *c)
{
    uint64_t n;
    if (c->stop_reason != STOP_NONE)
        return;
    n = block_insns(c, uc, addr, size);
    if (n == 0 && size != 0) {   /* code we cannot read: never guess a count */
        c->miss_addr = addr;
        stop(c, uc, STOP_UNREADABLE);
        return;
    }
    if (c->n_new_specials) {
        stop(c, uc, STOP_SPECIAL);
        return;
    }
    if (c->icount + n > c->limit && (!c->landing || c->icount >= c->limit)) {
        stop(c, uc, STOP_LIMIT);
        return;
    }
    if (c->icount >= c->soft_limit) {
        stop(c, uc, STOP_SOFT);
        return;
    }
    c->in_block = 0;
    c->it_end = 0;
    if (c->exec_epoch) {
        struct cache_slot *slot = lookup(c, addr, size);
        if (slot)
            slot->epoch = (uint32_t)c->exec_epoch;
        note_exec(c, addr, size);
    }
    enter_block(c, addr, size, n);
}

__attribute__((noinline)) static void block_noted(struct chron_counter *c, struct cache_slot *s, uint64_t addr,
                                                  uint32_t size)
{
    s->epoch = (uint32_t)c->exec_epoch;
    note_exec(c, addr, size);
}

void chron_block_hook(void *uc, uint64_t addr, uint32_t size, struct chron_counter *c)
{
    struct cache_slot *s = lookup(c, addr, size);

    /* Fast path: a known block that ends at or before both limits. */
    if (__builtin_expect(s != 0, 1)) {
        uint64_t n = s->insns;
        if (__builtin_expect(c->icount + n <= c->fast_limit, 1)) {
            if (__builtin_expect(s->epoch != (uint32_t)c->exec_epoch, 0))
                block_noted(c, s, addr, size);
            enter_block(c, addr, size, n);
            return;
        }
    }
    block_slow(uc, addr, size, c);
}

void chron_code_hook(void *uc, uint64_t addr, uint32_t size, struct chron_counter *c)
{
    (void)addr;
    (void)size;
    if (c->stop_reason != STOP_NONE)
        return;
    if (c->isa == ISA_THUMB) {
        if (addr < c->it_end && addr >= c->block_addr)
            return;   /* inside an IT block: counted with its IT instruction */
        uint8_t buf[20];
        if (((vmem_read_fn)c->vmem_read)(uc, addr, UC_PROT_EXEC, buf, sizeof(buf)) == 0) {
            uint32_t hw = (uint32_t)buf[0] | ((uint32_t)buf[1] << 8);
            uint64_t it = it_block_bytes(hw, buf, 2, sizeof(buf));
            c->it_end = it ? addr + 2 + it : 0;
        }
    }
    if (c->block_icount + c->in_block >= c->limit) {
        c->icount = c->block_icount + c->in_block;
        stop(c, uc, STOP_LIMIT);
        return;
    }
    c->in_block++;
}

/* Instructions of the current block that lie before pc (for mid-block stops). */
uint64_t chron_insns_before(struct chron_counter *c, void *uc, uint64_t pc)
{
    if (pc <= c->block_addr)
        return 0;
    return decode(c, uc, c->block_addr, pc, 0);
}

/* Enter a block's count in the cache (after its specials have been hooked). */
void chron_cache_put(struct chron_counter *c, uint64_t addr, uint32_t size, uint32_t insns)
{
    insert(c, addr, size, insns);
}

static int by_addr(const void *a, const void *b)
{
    uint64_t x = ((const struct exec_block *)a)->addr, y = ((const struct exec_block *)b)->addr;
    return x < y ? -1 : x > y;
}

/* The code executed since the window began, as sorted disjoint [start, end) ranges (ranges closer than
 * `gap` bytes are merged) written over c->exec; returns how many, or -1 if the window overflowed. With
 * `next_window`, a new window begins (epoch moves on, nothing noted). */
int64_t chron_take_exec(struct chron_counter *c, uint64_t gap, int next_window)
{
    int64_t result = -1;
    uint64_t n = c->n_exec, out = 0;
    if (!c->exec_overflow) {
        qsort(c->exec, n, sizeof(c->exec[0]), by_addr);
        for (uint64_t i = 0; i < n; i++) {
            if (out && c->exec[i].addr <= c->exec[out - 1].end + gap) {
                if (c->exec[i].end > c->exec[out - 1].end)
                    c->exec[out - 1].end = c->exec[i].end;
            } else {
                c->exec[out++] = c->exec[i];
            }
        }
        c->n_exec = out;   /* merged in place: still a valid record of the window so far */
        result = (int64_t)out;
    }
    if (next_window) {
        c->n_exec = 0;
        c->exec_overflow = 0;
        c->exec_epoch = (uint32_t)(c->exec_epoch + 1) ? c->exec_epoch + 1 : 1;
    }
    return result;
}

/* ---------------------------------------------------------------------------------------------------------
 * AArch64 generic timer reads without leaving emu_start (a UC_HOOK_INSN hook on MRS).
 *
 * The counter is the virtual clock at 62.5 MHz: ((icount << shift) + bias_ns) / 16, where the icount is the
 * MRS's own (the block's start count plus the instructions before it: fixed 4-byte words). The timers' control
 * and compare registers are mirrored here by the board after every change (their writes stay trapped). Any
 * other system register is left to Unicorn (return 0).
 */
typedef int (*reg_rw_fn)(void *uc, int regid, void *value);

struct cp_reg { uint32_t crn, crm, op0, op1, op2; uint64_t val; };

struct a64_timer {
    struct chron_counter *counter;
    void *reg_read;
    void *reg_write;
    uint64_t pc_reg;
    uint64_t shift;
    uint64_t bias_ns;
    uint64_t ctl[2];    /* physical (CRm 2), virtual (CRm 3) */
    uint64_t cval[2];
    uint64_t reads;     /* statistics: reads answered here */
};

uint32_t chron_a64_mrs_hook(void *uc, int reg, const struct cp_reg *cp, struct a64_timer *t)
{
    if (cp->op0 != 3 || cp->op1 != 3 || cp->crn != 14)
        return 0;
    struct chron_counter *c = t->counter;
    uint64_t pc = 0;
    if (((reg_rw_fn)t->reg_read)(uc, (int)t->pc_reg, &pc) != 0)
        return 0;
    uint64_t icount = c->icount;
    if (pc >= c->block_addr && pc < c->block_addr + c->block_size)
        icount = c->block_icount + ((pc - c->block_addr) >> 2);
    uint64_t count = ((icount << t->shift) + t->bias_ns) / 16;
    uint64_t value;
    if (cp->crm == 0 && cp->op2 == 0)
        value = 62500000;
    else if (cp->crm == 0 && (cp->op2 == 1 || cp->op2 == 2))
        value = count;
    else if ((cp->crm == 2 || cp->crm == 3) && cp->op2 <= 2) {
        int i = cp->crm - 2;
        if (cp->op2 == 0)
            value = (t->cval[i] - count) & 0xffffffffull;
        else if (cp->op2 == 1)
            value = t->ctl[i] | (((t->ctl[i] & 1) && count >= t->cval[i]) ? 4 : 0);
        else
            value = t->cval[i];
    } else
        return 0;
    if (reg != 0)   /* (xzr: nothing to write) */
        ((reg_rw_fn)t->reg_write)(uc, reg, &value);
    t->reads++;
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * RISC-V timer reads without leaving emu_start: a code hook on each site (an instruction address) that reads
 * a counter CSR (time, cycle, instret and their rv32 high halves: trapped specials) or loads the CLINT's mtime
 * (a load seen reading it once). The hook computes the value from the instruction's own icount exactly as the
 * board's Python path does, writes rd, retires the instruction and moves pc past it: Unicorn leaves the
 * translation block and goes on at the next instruction inside the same emu_start, where the block hook counts
 * on. Whatever the hook cannot answer (a write, a privilege or counter-enable failure, paging, an address other
 * than mtime, a landing, a pending stop, a breakpoint on the site) goes the usual way: to `fallback` (the
 * engine's Python special hook) for a CSR site, to the device (deferred MMIO) for a load site.
 *
 * The clock is the board's: ticks = ((icount << shift) + bias_ns) / 100 (10 MHz), mtime = ticks + offset,
 * cycle = icount + mcycle_offset, instret = icount + minstret_offset (all modulo 2^64). The board mirrors those
 * before every run.
 */
typedef void (*code_hook_fn)(void *uc, uint64_t addr, uint32_t size, void *data);

struct rv_timer {
    struct chron_counter *counter;
    void *reg_read;
    void *reg_write;
    uint64_t xlen;
    uint64_t x0_reg, pc_reg, priv_reg, mstatus_reg;
    uint64_t ram_host, ram_base, ram_size;   /* RAM as the host maps it: code read without the MMU's help */
    uint64_t mcounteren, scounteren;   /* (Unicorn's CSR reads fail below M-mode; writes to them are trapped) */
    uint64_t shift;
    uint64_t bias_ns;
    uint64_t mtime_offset;
    uint64_t mcycle_offset;
    uint64_t minstret_offset;
    uint64_t mtime_addr;    /* physical address of mtime (8 bytes) */
    uint64_t disabled;      /* 1: answer nothing here (watchpoints, tracing) */
    uint64_t csr_reads;     /* statistics: reads answered here */
    uint64_t mtime_reads;
    uint64_t satp_bare;     /* satp's MODE is Bare (a write to satp is trapped: a run ends after it) */
};

enum { SITE_CSR = 0, SITE_MTIME_LOAD = 1 };

struct rv_site {
    struct rv_timer *timer;
    void *fallback;         /* CSR sites: the engine's special hook, called when not answered here */
    uint64_t armed;         /* 0 while a breakpoint sits on the site */
    uint64_t kind;
};

static int rv_reg(void *uc, struct rv_timer *t, uint64_t reg, uint64_t *value)
{
    *value = 0;
    return ((reg_rw_fn)t->reg_read)(uc, (int)reg, value);
}

static uint64_t rv_mask(const struct rv_timer *t, uint64_t value)
{
    return t->xlen == 32 ? value & 0xffffffffull : value;
}

static uint64_t rv_mtime(const struct rv_timer *t, uint64_t icount)
{
    if (t->shift < 62 && icount >> (62 - t->shift) == 0 && t->bias_ns >> 62 == 0)   /* no 64-bit overflow */
        return ((icount << t->shift) + t->bias_ns) / 100u + t->mtime_offset;        /* (a multiply, not a call) */
    unsigned __int128 ns = ((unsigned __int128)icount << t->shift) + t->bias_ns;
    return (uint64_t)(ns / 100u) + t->mtime_offset;
}

/* Code bytes at addr: straight from RAM when fetches are physical (M-mode), else through the MMU. */
static int rv_code(void *uc, const struct rv_timer *t, int physical, uint64_t addr, uint8_t *buf, uint64_t len)
{
    if (physical && addr >= t->ram_base && addr - t->ram_base + len <= t->ram_size) {
        memcpy(buf, (const uint8_t *)(uintptr_t)t->ram_host + (addr - t->ram_base), len);
        return 0;
    }
    return ((vmem_read_fn)t->counter->vmem_read)(uc, addr, UC_PROT_EXEC, buf, len);
}

/* The icount of the instruction at addr (len bytes, inside the block the counter last entered); ~0 if the
 * block's code cannot be read. */
static uint64_t rv_icount_at(void *uc, const struct rv_timer *t, int physical, uint64_t addr, uint64_t len)
{
    const struct chron_counter *c = t->counter;
    if (addr + len == c->block_addr + c->block_size)
        return c->icount - 1;   /* the block's last instruction (a CSR access always ends a block) */
    uint8_t buf[4096];
    uint64_t span = addr - c->block_addr, n = 0;
    if (span > sizeof(buf) || rv_code(uc, t, physical, c->block_addr, buf, span) != 0)
        return ~0ull;
    for (uint64_t off = 0; off < span; n++)
        off += (buf[off] & 3u) == 3u ? 4 : 2;
    return c->block_icount + n;
}

/* Write rd, retire the instruction and go on after it. Writing pc from a code hook returns: the instruction is
 * not executed, Unicorn leaves the block and the next block hook fires at the new pc, but code hooks added after
 * this one on the same address still run. None may act on it: a breakpoint there disarms the site (`armed`), a
 * parked breakpoint hook returns at once, landing and tracing make the site stand aside, and a second site on the
 * address decodes the instruction again and declines. */
static void rv_retire(void *uc, struct rv_timer *t, uint64_t icount, uint64_t rd, uint64_t value, uint64_t next)
{
    value = rv_mask(t, value);
    if (rd != 0)
        ((reg_rw_fn)t->reg_write)(uc, (int)(t->x0_reg + rd), &value);
    t->counter->icount = icount + 1;
    ((reg_rw_fn)t->reg_write)(uc, (int)t->pc_reg, &next);
}

/* csr is time, cycle or instret (rv32: or a high half) and the counter enables let privilege priv read it
 * (mcounteren, and scounteren in U-mode). */
static int rv_counter_readable(const struct rv_timer *t, uint32_t csr, uint64_t priv)
{
    uint32_t low = csr & ~0x80u;
    if ((low != 0xC00u && low != 0xC01u && low != 0xC02u) || ((csr & 0x80u) && t->xlen != 32))
        return 0;
    uint64_t bit = 1ull << (csr & 0x1fu);
    return !((priv < 3 && !(t->mcounteren & bit)) || (priv == 0 && !(t->scounteren & bit)));
}

/* Counter CSR csr (time, cycle, instret or, rv32, a high half) as it reads at icount. */
static uint64_t rv_counter_value(const struct rv_timer *t, uint32_t csr, uint64_t icount)
{
    uint32_t low = csr & ~0x80u;
    uint64_t value;
    if (low == 0xC01u)
        value = rv_mtime(t, icount);
    else if (low == 0xC00u)
        value = icount + t->mcycle_offset;
    else
        value = icount + t->minstret_offset;
    return (csr & 0x80u) ? value >> 32 : value;
}

/* csrr rd, time/cycle/instret (rv32: and their high halves): 1 if answered. */
static int rv_counter_read(void *uc, struct rv_timer *t, uint64_t priv, int physical, uint64_t addr, uint32_t insn)
{
    uint32_t funct3 = (insn >> 12) & 7u, rs1 = (insn >> 15) & 31u, csr = insn >> 20;
    if ((insn & 0x7fu) != 0x73u || (funct3 & 3u) < 2u || rs1 != 0)
        return 0;   /* not csrrs/csrrc/csrrsi/csrrci with nothing to set or clear: a write */
    if (!rv_counter_readable(t, csr, priv))
        return 0;
    uint64_t icount = rv_icount_at(uc, t, physical, addr, 4);
    if (icount == ~0ull)
        return 0;
    uint64_t value = rv_counter_value(t, csr, icount);
    t->csr_reads++;
    rv_retire(uc, t, icount, (insn >> 7) & 31u, value, addr + 4);
    return 1;
}

/* Unicorn with chronicorn's riscv-counter-read patch (third_party/unicorn) calls this as a read of time, cycle
 * or instret (rv32: or a high half) executes at pc, with privilege priv: 0 and *value, or -1 for an illegal
 * instruction exception, which the engine takes to the board's own path (Engine.native_declines). The reading
 * instruction is the last of the block the counter entered (a CSR access ends a block): it retires at icount - 1.
 * Nothing is skipped or written here: Unicorn writes rd and goes on in the same translation loop. */
int chron_rv_counter_csr(struct rv_timer *t, int csrno, uint64_t pc, int priv, uint64_t *value)
{
    const struct chron_counter *c = t->counter;
    uint32_t csr = (uint32_t)csrno;
    if (t->disabled || c->stop_reason != STOP_NONE || c->landing)
        return -1;
    if (pc < c->block_addr || pc + 4 != c->block_addr + c->block_size || c->icount == 0)
        return -1;
    if (!rv_counter_readable(t, csr, (uint64_t)priv))
        return -1;
    t->csr_reads++;
    *value = rv_mask(t, rv_counter_value(t, csr, c->icount - 1));
    return 0;
}

/* A load (lb/lh/lw/ld/lbu/lhu/lwu, c.lw, c.ld) of mtime in M-mode without MPRV (physical addresses): 1 if
 * answered. */
static int rv_mtime_load(void *uc, struct rv_timer *t, uint64_t priv, uint64_t addr, uint32_t insn, uint64_t len)
{
    uint64_t rd, rs1, size;
    int64_t imm;
    int sign;
    if (len == 4) {
        uint32_t funct3 = (insn >> 12) & 7u;
        if ((insn & 0x7fu) != 0x03u || funct3 == 7u || ((funct3 == 3u || funct3 == 6u) && t->xlen == 32))
            return 0;   /* not a load (ld and lwu are rv64's) */
        rd = (insn >> 7) & 31u;
        rs1 = (insn >> 15) & 31u;
        imm = (int64_t)(int32_t)insn >> 20;
        size = 1ull << (funct3 & 3u);
        sign = funct3 < 4u;
    } else {
        uint32_t op = insn & 3u, funct3 = (insn >> 13) & 7u;
        if (op != 0u || (funct3 != 2u && !(funct3 == 3u && t->xlen == 64)))
            return 0;
        rd = 8u + ((insn >> 2) & 7u);
        rs1 = 8u + ((insn >> 7) & 7u);
        if (funct3 == 2u) {
            imm = (int64_t)((((insn >> 6) & 1u) << 2) | (((insn >> 10) & 7u) << 3) | (((insn >> 5) & 1u) << 6));
            size = 4;
        } else {
            imm = (int64_t)((((insn >> 10) & 7u) << 3) | (((insn >> 5) & 3u) << 6));
            size = 8;
        }
        sign = 1;
    }
    uint64_t mstatus = 0, base = 0;
    if (priv != 3)
        return 0;
    if (rv_reg(uc, t, t->mstatus_reg, &mstatus) != 0 || (mstatus & (1ull << 17)))
        return 0;   /* MPRV: loads translated as another mode's */
    if (rs1 != 0 && rv_reg(uc, t, t->x0_reg + rs1, &base) != 0)
        return 0;
    uint64_t ea = rv_mask(t, base + (uint64_t)imm);
    if (ea < t->mtime_addr || ea + size > t->mtime_addr + 8 || (ea & (size - 1)))
        return 0;   /* another address (or misaligned: the device's way) */
    uint64_t icount = rv_icount_at(uc, t, 1, addr, len);
    if (icount == ~0ull)
        return 0;
    uint64_t value = rv_mtime(t, icount) >> (8 * (ea - t->mtime_addr));
    if (size < 8) {
        uint64_t bits = 8 * size;
        value &= (1ull << bits) - 1;
        if (sign && (value >> (bits - 1)))
            value |= ~0ull << bits;
    }
    t->mtime_reads++;
    rv_retire(uc, t, icount, rd, value, addr + len);
    return 1;
}

void chron_rv_site_hook(void *uc, uint64_t addr, uint32_t size, struct rv_site *s)
{
    struct rv_timer *t = s->timer;
    struct chron_counter *c = t->counter;
    if (s->armed && !t->disabled && c->stop_reason == STOP_NONE && !c->landing &&
        addr >= c->block_addr && addr < c->block_addr + c->block_size) {
        uint64_t priv = 0;
        uint8_t b[4] = {0, 0, 0, 0};
        if (rv_reg(uc, t, t->priv_reg, &priv) == 0) {
            /* Fetches are physical in M-mode and with satp Bare (the board's copy: Unicorn's reads of satp, or
             * of any CSR above the current mode, do not fail below M-mode, they return garbage). Otherwise code
             * is read through the MMU. */
            int physical = priv == 3 || t->satp_bare;
            if (rv_code(uc, t, physical, addr, b, 2) == 0) {
                uint32_t insn = (uint32_t)b[0] | ((uint32_t)b[1] << 8);
                uint64_t len = (insn & 3u) == 3u ? 4 : 2;
                if (len == 2 || rv_code(uc, t, physical, addr + 2, b + 2, 2) == 0) {
                    insn |= ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
                    if (s->kind == SITE_CSR ? len == 4 && rv_counter_read(uc, t, priv, physical, addr, insn)
                                            : rv_mtime_load(uc, t, priv, addr, insn, len))
                        return;
                }
            }
        }
    }
    if (s->fallback)
        ((code_hook_fn)s->fallback)(uc, addr, size, 0);
}
