/*
 * sndtone: a small polling virtio-snd driver (virtio 1.2 section 5.14) over
 * the modern virtio-mmio interface (virtio_mmio.h's transport; the device's
 * messages are virtio_snd.h). QEMU 7.2 has no virtio-snd on the riscv virt
 * board: this guest runs on chronicorn's (`chronicorn run sndtone.elf
 * --audio in=sine:440,out=wav:FILE`).
 *
 * Steps (each printed on the UART):
 *  1. find the device (DeviceID 25, highest slot first), accept VERSION_1 and
 *     nothing else, set up the control, event, tx and rx queues (0..3),
 *     DRIVER_OK; the configuration (jacks, streams, chmaps), JACK_INFO (if
 *     any), PCM_INFO (streams 0..3 at most), CHMAP_INFO (if any); the event
 *     queue gets four empty buffers.
 *  2. capture on stream 1: SET_PARAMS (mono, S16, 16000 Hz, period 1600 bytes
 *     = 50 ms, buffer 4 periods), PREPARE, four 1600-byte rx buffers, START,
 *     then each completed buffer is taken and the next one posted until ten
 *     (16000 bytes, 0.5 s) are in; STOP, RELEASE. Prints the samples, their
 *     RMS (integer square root of the mean square), minimum and maximum, a
 *     CRC-32 (zlib.crc32) of the bytes, and the mtime elapsed from START's
 *     notify to the moment the guest sees the tenth buffer used (5,000,000
 *     ticks within one period, or an error).
 *  3. playback on stream 0: SET_PARAMS (mono, S16, 16000 Hz, same period and
 *     buffer), PREPARE, four tx buffers of a 1 kHz triangle (peak 8192, 16
 *     samples a cycle, integer-generated) queued before START, the fifth
 *     after the first completes; every status must be OK; STOP, RELEASE.
 *     Prints the CRC-32 of what was sent and the mtime elapsed from START's
 *     notify to the fifth completion seen (2,500,000 ticks within one period,
 *     or an error).
 *  4. the event queue's notifications (none are expected: no PCM feature is
 *     negotiated), then exit 0 through the finisher.
 *
 * Every wait polls a used ring's idx (at most POLL_LIMIT times): no interrupts
 * (the PLIC source, slot + 1, stays disabled; vq_take() acknowledges
 * InterruptStatus) and no clock waits: mtime is only read, at each control
 * request's notify and at each I/O completion seen. On an error:
 * "error: WHAT", FAILED in Status, exit with the step's number (2..36).
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define QSIZE                 16u           /* entries of each queue */
#include "virtio_mmio.h"
#include "virtio_snd.h"

#define MAX_ITEMS             4u            /* jacks, streams, chmaps queried */
#define EVENT_BUFS            4u

#define RATE_HZ               16000u
#define PERIOD_BYTES          1600u         /* 800 mono S16 frames: 50 ms */
#define PERIODS               4u            /* buffer_bytes = 4 periods; rx/tx messages in flight */
#define BUFFER_BYTES          (PERIODS * PERIOD_BYTES)
#define PERIOD_TICKS          (CLINT_TIMEBASE_HZ / 20u)   /* 50 ms of mtime */
#define CAPTURE_BUFS          10u           /* 0.5 s */
#define PLAY_BUFS             5u            /* 0.25 s */
#define CAPTURE_SAMPLES       (CAPTURE_BUFS * PERIOD_BYTES / 2u)
#define PLAY_SAMPLES          (PLAY_BUFS * PERIOD_BYTES / 2u)

#define OUT_STREAM            0u
#define IN_STREAM             1u

#define POLL_LIMIT            500000000u    /* polls of a used ring for one completion */

/* ---- queues ----------------------------------------------------------- */
struct queue {
    struct vring *ring;
    unsigned index;
    uint16_t avail_idx;                     /* the driver's count of chains made available */
    uint16_t used_seen;                     /* the used entries taken */
};

static struct vring ctl_ring __attribute__((aligned(PAGE_SIZE)));
static struct vring evt_ring __attribute__((aligned(PAGE_SIZE)));
static struct vring tx_ring __attribute__((aligned(PAGE_SIZE)));
static struct vring rx_ring __attribute__((aligned(PAGE_SIZE)));

static struct queue ctlq = { &ctl_ring, VIRTIO_SND_VQ_CONTROL, 0, 0 };
static struct queue evtq = { &evt_ring, VIRTIO_SND_VQ_EVENT, 0, 0 };
static struct queue txq = { &tx_ring, VIRTIO_SND_VQ_TX, 0, 0 };
static struct queue rxq = { &rx_ring, VIRTIO_SND_VQ_RX, 0, 0 };

/* Poll q's used ring until the device has used another chain (1), or give up
 * after POLL_LIMIT polls (0). */
static __attribute__((noinline)) int wait_used(struct queue *q)
{
    for (uint32_t n = 0; n < POLL_LIMIT; n++)
        if (VQ_USED(q->ring, q->used_seen))
            return 1;
    return 0;
}

static inline void notify(struct queue *q)
{
    wr(VM_QUEUE_NOTIFY, q->index);
}

/* ---- output helpers ----------------------------------------------------- */
static void put_status(const char *name, uint32_t status, uint32_t len)
{
    uart_puts(name);
    uart_puts(": status 0x");
    put_hex(status, 4);
    uart_puts(" len ");
    uart_putdec(len);
    uart_putc('\n');
}

static void put_signed(long v)
{
    if (v < 0) {
        uart_putc('-');
        v = -v;
    }
    uart_putdec((unsigned long)v);
}

static const char *const format_names[] = {
    "IMA_ADPCM", "MU_LAW", "A_LAW", "S8", "U8", "S16", "U16", "S18_3", "U18_3",
    "S20_3", "U20_3", "S24_3", "U24_3", "S20", "U20", "S24", "U24", "S32", "U32",
    "FLOAT", "FLOAT64", "DSD_U8", "DSD_U16", "DSD_U32", "IEC958_SUBFRAME",
};
static const uint32_t rate_hz[] = {
    5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 64000, 88200, 96000,
    176400, 192000, 384000,
};
static const char *const position_names[] = {
    "NONE", "NA", "MONO", "FL", "FR", "RL", "RR", "FC", "LFE", "SL", "SR", "RC",
};
#define COUNT(a) (sizeof (a) / sizeof (a)[0])

/* " NAME" for each bit set in `bits` (names[i] for bit i, Hz for rates, or
 * "bitN" past the table); " none" if no bit is set. */
static void put_bits(uint64_t bits, const char *const *names, const uint32_t *hz, unsigned known)
{
    if (!bits)
        uart_puts(" none");
    for (unsigned i = 0; bits; i++, bits >>= 1) {
        if (!(bits & 1))
            continue;
        uart_putc(' ');
        if (i < known && names)
            uart_puts(names[i]);
        else if (i < known)
            uart_putdec(hz[i]);
        else {
            uart_puts("bit");
            uart_putdec(i);
        }
    }
}

static void put_direction(uint8_t d)
{
    if (d == VIRTIO_SND_D_OUTPUT)
        uart_puts(" output");
    else if (d == VIRTIO_SND_D_INPUT)
        uart_puts(" input");
    else {
        uart_puts(" direction ");
        uart_putdec(d);
    }
}

/* ---- CRC-32 (IEEE, reflected: zlib.crc32), bitwise --------------------- */
static uint32_t crc32(uint32_t crc, const uint8_t *p, unsigned long n)
{
    uint32_t c = ~crc;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
    }
    return ~c;
}

/* floor(n / d), bit by bit (rv32 has no libgcc to divide 64-bit numbers:
 * the toolchain's rv32imac multilib does not match -march=..._zicsr). */
static uint64_t udiv64(uint64_t n, uint32_t d)
{
    uint64_t q = 0, r = 0;
    for (int i = 0; i < 64; i++) {
        r = (r << 1) | ((n >> 63) & 1);
        n <<= 1;
        q <<= 1;
        if (r >= d) {
            r -= d;
            q |= 1;
        }
    }
    return q;
}

/* floor(sqrt(v)), bit by bit. */
static uint32_t isqrt(uint64_t v)
{
    uint64_t r = 0, bit = 1ull << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

/* ---- control requests --------------------------------------------------- */
/* One request in flight, as the chain with head 0: the request (descriptor
 * 0, device-readable), then the response (descriptor 1, device-writable):
 * the status header and the items' information. */
static union {
    struct virtio_snd_query_info query;
    struct virtio_snd_pcm_hdr pcm;
    struct virtio_snd_pcm_set_params params;
} ctl_req;
static uint64_t ctl_notified;              /* mtime at the last control request's notify */
static uint8_t ctl_resp[sizeof(struct virtio_snd_hdr) + MAX_ITEMS * sizeof(struct virtio_snd_pcm_info)]
    __attribute__((aligned(8)));

/* Send ctl_req (req_len bytes) with a resp_len-byte response buffer, wait,
 * print "NAME: status 0xS len L". 0 (status OK, the used element is ours, the
 * whole response was written), or `step` after "error: ...". */
static int control(const char *name, uint32_t req_len, uint32_t resp_len, int step)
{
    uint32_t len;

    __builtin_memset(ctl_resp, 0, sizeof ctl_resp);
    vq_set_desc(ctlq.ring, 0, &ctl_req, req_len, VIRTQ_DESC_F_NEXT, 1);
    vq_set_desc(ctlq.ring, 1, ctl_resp, resp_len, VIRTQ_DESC_F_WRITE, 0);
    vq_publish(ctlq.ring, &ctlq.avail_idx, 0);
    ctl_notified = clint_read_mtime();
    notify(&ctlq);
    if (!wait_used(&ctlq))
        return fail(step, "no answer to a control request");
    uint32_t id = vq_take(ctlq.ring, &ctlq.used_seen, &len);
    uint32_t status = ((struct virtio_snd_hdr *)ctl_resp)->code;
    put_status(name, status, len);
    if (id != 0)
        return fail(step, "control request: used id not 0");
    if (status != VIRTIO_SND_S_OK)
        return fail(step, "control request: status not OK");
    if (len != resp_len)
        return fail(step, "control request: short response");
    return 0;
}

/* An information request (JACK_INFO, PCM_INFO, CHMAP_INFO) for items 0..count-1. */
static int query(const char *name, uint32_t code, uint32_t count, uint32_t size, int step)
{
    ctl_req.query.hdr.code = code;
    ctl_req.query.start_id = 0;
    ctl_req.query.count = count;
    ctl_req.query.size = size;
    return control(name, sizeof ctl_req.query, sizeof(struct virtio_snd_hdr) + count * size, step);
}

/* Item i of the last information response, copied out (the items follow the
 * 4-byte header, so the 64-bit fields are not aligned in place). */
static void *item(void *dst, unsigned i, unsigned size)
{
    return __builtin_memcpy(dst, ctl_resp + sizeof(struct virtio_snd_hdr) + i * size, size);
}

/* PREPARE, START, STOP, RELEASE of a stream. */
static int pcm_command(const char *name, uint32_t code, uint32_t stream, int step)
{
    ctl_req.pcm.hdr.code = code;
    ctl_req.pcm.stream_id = stream;
    return control(name, sizeof ctl_req.pcm, sizeof(struct virtio_snd_hdr), step);
}

/* SET_PARAMS: mono S16 at RATE_HZ, PERIOD_BYTES periods, BUFFER_BYTES, no features. */
static int set_params(uint32_t stream, int step)
{
    __builtin_memset(&ctl_req, 0, sizeof ctl_req);
    ctl_req.params.hdr.hdr.code = VIRTIO_SND_R_PCM_SET_PARAMS;
    ctl_req.params.hdr.stream_id = stream;
    ctl_req.params.buffer_bytes = BUFFER_BYTES;
    ctl_req.params.period_bytes = PERIOD_BYTES;
    ctl_req.params.features = 0;
    ctl_req.params.channels = 1;
    ctl_req.params.format = VIRTIO_SND_PCM_FMT_S16;
    ctl_req.params.rate = VIRTIO_SND_PCM_RATE_16000;
    return control("set params", sizeof ctl_req.params, sizeof(struct virtio_snd_hdr), step);
}

/* ---- I/O messages ------------------------------------------------------- */
/* Message slot k (0..PERIODS-1) of the tx or rx queue is the chain 3k..3k+2:
 * the xfer header (device-readable), the PCM buffer (device-writable on rx),
 * the status (device-writable). Slots are reused in order: the device
 * completes a stream's messages in order. */
struct io_slot {
    struct virtio_snd_pcm_xfer xfer;
    struct virtio_snd_pcm_status status;
};
static struct io_slot tx_slots[PERIODS], rx_slots[PERIODS];
static uint64_t io_done;                    /* mtime when the last message was seen used */

static void post_io(struct queue *q, struct io_slot *slots, unsigned k, uint32_t stream,
                    const void *data, uint32_t len)
{
    struct io_slot *s = &slots[k];
    uint16_t head = (uint16_t)(3 * k);
    uint16_t data_flags = q == &rxq ? VIRTQ_DESC_F_WRITE : 0;

    s->xfer.stream_id = stream;
    s->status.status = 0xffffffffu;
    s->status.latency_bytes = 0xffffffffu;
    vq_set_desc(q->ring, head, &s->xfer, sizeof s->xfer, VIRTQ_DESC_F_NEXT, head + 1);
    vq_set_desc(q->ring, head + 1, data, len, VIRTQ_DESC_F_NEXT | data_flags, head + 2);
    vq_set_desc(q->ring, head + 2, &s->status, sizeof s->status, VIRTQ_DESC_F_WRITE, 0);
    vq_publish(q->ring, &q->avail_idx, head);
}

/* Wait for message number n (slot n % PERIODS) of q, print "NAME N: status
 * 0xS latency B len L", check it: 0, or `step` after "error: ...". */
static int take_io(struct queue *q, struct io_slot *slots, const char *name, unsigned n,
                   uint32_t want_len, int step)
{
    unsigned k = n % PERIODS;
    uint32_t len;

    if (!wait_used(q))
        return fail(step, "PCM buffer not completed");
    io_done = clint_read_mtime();
    uint32_t id = vq_take(q->ring, &q->used_seen, &len);
    volatile struct virtio_snd_pcm_status *st = &slots[k].status;
    uint32_t status = st->status, latency = st->latency_bytes;
    uart_puts(name);
    uart_putc(' ');
    uart_putdec(n);
    uart_puts(": status 0x");
    put_hex(status, 4);
    uart_puts(" latency ");
    uart_putdec(latency);
    uart_puts(" len ");
    uart_putdec(len);
    uart_putc('\n');
    if (id != 3 * k)
        return fail(step, "PCM buffer completed out of order");
    if (status != VIRTIO_SND_S_OK)
        return fail(step, "PCM buffer status not OK");
    if (len != want_len)
        return fail(step, "PCM buffer used length");
    return 0;
}

/* "NAME elapsed T ticks", and whether T is WANT within one period (0, or
 * `step` after "error: ..."). */
static int check_elapsed(const char *name, uint64_t t, uint32_t want, int step)
{
    uart_puts(name);
    uart_puts(" elapsed ");
    uart_putdec64(t);
    uart_puts(" ticks\n");
    if (t + PERIOD_TICKS < want || t > want + PERIOD_TICKS)
        return fail(step, "elapsed virtual time off by more than one period");
    return 0;
}

/* ---- the streams --------------------------------------------------------- */
static int16_t capture[CAPTURE_SAMPLES];
static int16_t tone[PLAY_SAMPLES];
static struct virtio_snd_event events[EVENT_BUFS];

static int do_capture(void)
{
    int err;
    uart_puts("capture: stream 1, mono S16 16000 Hz, period 1600 bytes, buffer 6400 bytes, 10 buffers\n");
    if ((err = set_params(IN_STREAM, 20)) || (err = pcm_command("prepare", VIRTIO_SND_R_PCM_PREPARE, IN_STREAM, 21)))
        return err;

    /* The first PERIODS buffers before START, the others as buffers complete. */
    unsigned posted = 0;
    for (; posted < PERIODS; posted++)
        post_io(&rxq, rx_slots, posted, IN_STREAM, (uint8_t *)capture + posted * PERIOD_BYTES, PERIOD_BYTES);
    notify(&rxq);
    if ((err = pcm_command("start", VIRTIO_SND_R_PCM_START, IN_STREAM, 22)))
        return err;
    uint64_t t0 = ctl_notified;
    for (unsigned n = 0; n < CAPTURE_BUFS; n++) {
        err = take_io(&rxq, rx_slots, "rx", n, sizeof(struct virtio_snd_pcm_status) + PERIOD_BYTES, 23);
        if (err)
            return err;
        if (posted < CAPTURE_BUFS) {
            post_io(&rxq, rx_slots, posted % PERIODS, IN_STREAM,
                    (uint8_t *)capture + posted * PERIOD_BYTES, PERIOD_BYTES);
            notify(&rxq);
            posted++;
        }
    }
    uint64_t t1 = io_done;                  /* the last buffer's completion */
    if ((err = pcm_command("stop", VIRTIO_SND_R_PCM_STOP, IN_STREAM, 24))
        || (err = pcm_command("release", VIRTIO_SND_R_PCM_RELEASE, IN_STREAM, 25)))
        return err;

    uint64_t sum_sq = 0;
    int32_t lo = 32767, hi = -32768;
    for (unsigned i = 0; i < CAPTURE_SAMPLES; i++) {
        int32_t s = capture[i];
        sum_sq += (uint64_t)(s * s);        /* at most 2^30 */
        if (s < lo)
            lo = s;
        if (s > hi)
            hi = s;
    }
    uart_puts("capture ");
    uart_putdec(CAPTURE_SAMPLES);
    uart_puts(" samples rms ");
    uart_putdec(isqrt(udiv64(sum_sq, CAPTURE_SAMPLES)));
    uart_puts(" min ");
    put_signed(lo);
    uart_puts(" max ");
    put_signed(hi);
    uart_puts(" crc32 ");
    put_hex(crc32(0, (const uint8_t *)capture, sizeof capture), 8);
    uart_putc('\n');
    return check_elapsed("capture", t1 - t0, CAPTURE_BUFS * PERIOD_TICKS, 26);
}

/* Sample i of the tone: a 1 kHz triangle at 16 kHz (16 samples a cycle, steps
 * of 2048, peak 8192), from 0 rising. */
static int16_t tone_sample(unsigned i)
{
    int k = (int)((i + 12u) % 16u);
    int d = k < 8 ? 8 - k : k - 8;
    return (int16_t)(2048 * (d - 4));
}

static int do_playback(void)
{
    int err;
    uart_puts("playback: stream 0, mono S16 16000 Hz, period 1600 bytes, buffer 6400 bytes, 5 buffers of a 1 kHz triangle\n");
    for (unsigned i = 0; i < PLAY_SAMPLES; i++)
        tone[i] = tone_sample(i);
    if ((err = set_params(OUT_STREAM, 30)) || (err = pcm_command("prepare", VIRTIO_SND_R_PCM_PREPARE, OUT_STREAM, 31)))
        return err;

    /* Pre-buffering: PERIODS buffers before START, the last as the first completes. */
    unsigned posted = 0;
    for (; posted < PERIODS; posted++)
        post_io(&txq, tx_slots, posted, OUT_STREAM, (uint8_t *)tone + posted * PERIOD_BYTES, PERIOD_BYTES);
    notify(&txq);
    if ((err = pcm_command("start", VIRTIO_SND_R_PCM_START, OUT_STREAM, 32)))
        return err;
    uint64_t t0 = ctl_notified;
    for (unsigned n = 0; n < PLAY_BUFS; n++) {
        err = take_io(&txq, tx_slots, "tx", n, sizeof(struct virtio_snd_pcm_status), 33);
        if (err)
            return err;
        if (posted < PLAY_BUFS) {
            post_io(&txq, tx_slots, posted % PERIODS, OUT_STREAM,
                    (uint8_t *)tone + posted * PERIOD_BYTES, PERIOD_BYTES);
            notify(&txq);
            posted++;
        }
    }
    uint64_t t1 = io_done;                  /* the last buffer's completion */
    if ((err = pcm_command("stop", VIRTIO_SND_R_PCM_STOP, OUT_STREAM, 34))
        || (err = pcm_command("release", VIRTIO_SND_R_PCM_RELEASE, OUT_STREAM, 35)))
        return err;
    uart_puts("playback sent ");
    uart_putdec(PLAY_SAMPLES);
    uart_puts(" samples crc32 ");
    put_hex(crc32(0, (const uint8_t *)tone, sizeof tone), 8);
    uart_putc('\n');
    return check_elapsed("playback", t1 - t0, PLAY_BUFS * PERIOD_TICKS, 36);
}

/* ---- set-up and information --------------------------------------------- */
static int setup(void)
{
    int err = vm_find(VIRTIO_ID_SOUND, "no virtio-snd device");
    if (err)
        return err;
    vm_put_slot();
    if (version != 2) {
        uart_putc('\n');
        return fail(3, "virtio-snd needs the modern interface (version 2)");
    }
    if ((err = vm_reset()))
        return err;
    uart_putc(' ');
    vm_put_features();
    uart_putc('\n');
    if ((err = vm_check_version_1()) || (err = vm_accept(0, 6)))
        return err;
    struct queue *qs[] = { &ctlq, &evtq, &txq, &rxq };
    for (unsigned i = 0; i < 4; i++) {
        err = vm_setup_queue(qs[i]->index, qs[i]->ring);
        if (err)
            return fail(6 + err, err == 1 ? "queue already in use" : "queue too small");
    }
    return vm_driver_ok(9);
}

static int info(void)
{
    uint32_t gen, jacks, streams, chmaps;
    int err;

    do {
        gen = vm_config_gen();
        jacks = rd(VM_CONFIG + VIRTIO_SND_CFG_JACKS);
        streams = rd(VM_CONFIG + VIRTIO_SND_CFG_STREAMS);
        chmaps = rd(VM_CONFIG + VIRTIO_SND_CFG_CHMAPS);
    } while (vm_config_gen() != gen);
    uart_puts("config jacks ");
    uart_putdec(jacks);
    uart_puts(" streams ");
    uart_putdec(streams);
    uart_puts(" chmaps ");
    uart_putdec(chmaps);
    uart_putc('\n');

    if (jacks) {
        uint32_t n = jacks < MAX_ITEMS ? jacks : MAX_ITEMS;
        if ((err = query("jack info", VIRTIO_SND_R_JACK_INFO, n, sizeof(struct virtio_snd_jack_info), 10)))
            return err;
        for (unsigned i = 0; i < n; i++) {
            struct virtio_snd_jack_info j;
            item(&j, i, sizeof j);
            uart_puts("jack ");
            uart_putdec(i);
            uart_puts(": nid ");
            uart_putdec(j.hdr.hda_fn_nid);
            uart_puts(" features 0x");
            put_hex(j.features, 8);
            uart_puts(" defconf 0x");
            put_hex(j.hda_reg_defconf, 8);
            uart_puts(" caps 0x");
            put_hex(j.hda_reg_caps, 8);
            uart_puts(" connected ");
            uart_putdec(j.connected);
            uart_putc('\n');
        }
    }

    if (streams < 2)
        return fail(11, "fewer than 2 streams");
    uint32_t n = streams < MAX_ITEMS ? streams : MAX_ITEMS;
    if ((err = query("pcm info", VIRTIO_SND_R_PCM_INFO, n, sizeof(struct virtio_snd_pcm_info), 12)))
        return err;
    for (unsigned i = 0; i < n; i++) {
        struct virtio_snd_pcm_info p;
        item(&p, i, sizeof p);
        uart_puts("stream ");
        uart_putdec(i);
        uart_puts(": nid ");
        uart_putdec(p.hdr.hda_fn_nid);
        put_direction(p.direction);
        uart_puts(" channels ");
        uart_putdec(p.channels_min);
        uart_putc('-');
        uart_putdec(p.channels_max);
        uart_puts(" formats");
        put_bits(p.formats, format_names, 0, COUNT(format_names));
        uart_puts(" rates");
        put_bits(p.rates, 0, rate_hz, COUNT(rate_hz));
        uart_puts(" features 0x");
        put_hex(p.features, 8);
        uart_putc('\n');
        /* Streams 0 and 1 must take what the guest sets. */
        if (i <= IN_STREAM
            && (p.direction != (i == OUT_STREAM ? VIRTIO_SND_D_OUTPUT : VIRTIO_SND_D_INPUT)
                || !((p.formats >> VIRTIO_SND_PCM_FMT_S16) & 1)
                || !((p.rates >> VIRTIO_SND_PCM_RATE_16000) & 1)
                || p.channels_min > 1 || p.channels_max < 1))
            return fail(13, i == OUT_STREAM ? "stream 0 is not a mono S16 16 kHz output"
                                            : "stream 1 is not a mono S16 16 kHz input");
    }

    if (chmaps) {
        n = chmaps < MAX_ITEMS ? chmaps : MAX_ITEMS;
        if ((err = query("chmap info", VIRTIO_SND_R_CHMAP_INFO, n, sizeof(struct virtio_snd_chmap_info), 14)))
            return err;
        for (unsigned i = 0; i < n; i++) {
            struct virtio_snd_chmap_info c;
            item(&c, i, sizeof c);
            uart_puts("chmap ");
            uart_putdec(i);
            uart_puts(": nid ");
            uart_putdec(c.hdr.hda_fn_nid);
            put_direction(c.direction);
            uart_puts(" channels ");
            uart_putdec(c.channels);
            uart_puts(" positions");
            for (unsigned j = 0; j < c.channels && j < VIRTIO_SND_CHMAP_MAX_SIZE; j++) {
                uart_putc(' ');
                if (c.positions[j] < COUNT(position_names))
                    uart_puts(position_names[c.positions[j]]);
                else
                    uart_putdec(c.positions[j]);
            }
            uart_putc('\n');
        }
    }

    /* The event queue: EVENT_BUFS empty device-writable buffers. */
    for (unsigned i = 0; i < EVENT_BUFS; i++) {
        vq_set_desc(evtq.ring, i, &events[i], sizeof events[i], VIRTQ_DESC_F_WRITE, 0);
        vq_publish(evtq.ring, &evtq.avail_idx, (uint16_t)i);
    }
    notify(&evtq);
    return 0;
}

/* The notifications the device sent, one line each, then "events N". */
static void put_events(void)
{
    unsigned count = 0;
    while (VQ_USED(evtq.ring, evtq.used_seen)) {
        uint32_t len, id = vq_take(evtq.ring, &evtq.used_seen, &len);
        volatile struct virtio_snd_event *e = &events[id % EVENT_BUFS];
        uart_puts("event: code 0x");
        put_hex(e->hdr.code, 4);
        uart_puts(" data ");
        uart_putdec(e->data);
        uart_puts(" len ");
        uart_putdec(len);
        uart_putc('\n');
        count++;
    }
    uart_puts("events ");
    uart_putdec(count);
    uart_putc('\n');
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    int err;

    uart_puts("sndtone start\n");
    if ((err = setup()))
        return err;
    uart_puts("driver ok\n");
    if ((err = info()) || (err = do_capture()) || (err = do_playback()))
        return err;
    put_events();
    uart_puts("sndtone done\n");
    return 0;
}
