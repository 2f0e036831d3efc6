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

void chron_block_hook(void *uc, uint64_t addr, uint32_t size, struct chron_counter *c)
{
    struct cache_slot *s = lookup(c, addr, size);
    uint64_t n;

    /* Fast path: a known block that ends at or before both limits. */
    if (__builtin_expect(s != 0, 1)) {
        n = s->insns;
        if (__builtin_expect(c->icount + n <= c->fast_limit, 1)) {
            if (__builtin_expect(s->epoch != (uint32_t)c->exec_epoch, 0)) {
                s->epoch = (uint32_t)c->exec_epoch;
                note_exec(c, addr, size);
            }
            enter_block(c, addr, size, n);
            return;
        }
    }
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
