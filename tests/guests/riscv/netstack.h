/*
 * netstack.h: the virtio-net driver and the small IPv4 stack shared by netping
 * and netecho (header-only: static functions and data, one copy per guest; on
 * virtio_mmio.h, with 16-entry queues).
 *
 *   net_start()        find the virtio-net device (DeviceID 1), negotiate MAC
 *                      and STATUS (VERSION_1 too on Version 2), set up RX queue
 *                      0 (RX_BUFS posted buffers) and TX queue 1, DRIVER_OK;
 *                      read the MAC and the link status. Prints one line per
 *                      step; 0, or the failed step (2..10, as fail() gives it)
 *   net_dhcp()         DHCP: DISCOVER, OFFER, REQUEST, ACK; sets my_ip,
 *                      net_router, net_dns; prints each message; 0 or 11..17
 *
 * Then frames: eth_start/ip_start/udp_start build one in tx_frame (the
 * matching *_finish sets the lengths and checksums), tx_send() sends it and
 * waits for the device; rx_wait() polls the RX ring for a frame a frame_match
 * accepts (into rx_frame), answering ARP requests for my_ip on the way;
 * exchange() is both, for a line that announces the frame; parse_ip/parse_udp
 * read a received frame; arp_resolve() asks for an address's MAC.
 *
 * Every wait is a bounded count of polls (no clock, no interrupts). A guest
 * that serves frames as they come may take them itself: VQ_USED(&rxring,
 * rx_used_seen), vq_take(), then rx_post() and wr(VM_QUEUE_NOTIFY, RXQ).
 * -DNET_VERBOSE (development builds) prints every frame received and every TX
 * completion.
 */
#ifndef NETSTACK_H
#define NETSTACK_H

#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define QSIZE                 16u           /* entries per queue */
#include "virtio_mmio.h"

#define VIRTIO_ID_NET         1

#define VIRTIO_NET_F_MAC      5             /* feature bits, low word */
#define VIRTIO_NET_F_STATUS   16

#define VIRTIO_NET_S_LINK_UP  1u
#define VIRTIO_NET_S_ANNOUNCE 2u

/* Config space: mac[6] at 0, status (le16) at 6. */
#define NET_CFG_MAC           0
#define NET_CFG_STATUS        6

#define RXQ                   0u
#define TXQ                   1u
#define RX_BUFS               8u            /* posted RX buffers, 2 descriptors each */
#define NET_HDR_MAX           12u           /* 10 legacy, 12 with VERSION_1 */
#define FRAME_MAX             1526u         /* RX data buffer (any 1514-byte frame fits) */
#define ETH_ZLEN              60u           /* frames sent are padded to this */

/*
 * Poll bounds (iterations of a loop that reads a used ring's idx once, about
 * 2 ns each on QEMU). QEMU answers within a few million polls (the first frame
 * sent takes the longest, 1-5 ms); the bounds only decide how long "no reply"
 * takes: about 1 s.
 */
#define REPLY_POLLS           500000000ul
#define TX_POLLS              500000000ul

/* ---- rings: virtio_mmio.h's layout, one for each queue --------------- */
static struct vring rxring __attribute__((aligned(PAGE_SIZE)));
static struct vring txring __attribute__((aligned(PAGE_SIZE)));

/* RX buffer i: descriptor 2i = its virtio-net header, 2i+1 = its frame. */
static uint8_t rx_hdr[RX_BUFS][16] __attribute__((aligned(16)));
static uint8_t rx_data[RX_BUFS][FRAME_MAX] __attribute__((aligned(16)));
/* TX: descriptor 0 = header, 1 = frame; one frame in flight. */
static uint8_t tx_hdr[16] __attribute__((aligned(16)));
static uint8_t tx_frame[FRAME_MAX] __attribute__((aligned(16)));
static unsigned tx_len;
/* The frame a wait matched, copied out of its RX buffer. */
static uint8_t rx_frame[FRAME_MAX] __attribute__((aligned(16)));
static unsigned rx_len;

static unsigned net_hdr_len;
static uint16_t rx_avail_idx, rx_used_seen;
static uint16_t tx_avail_idx, tx_used_seen;
static unsigned long frames_ignored, arp_requests_answered;

/* ---- network state --------------------------------------------------- */
static uint8_t my_mac[6];
static uint32_t my_ip;                  /* host order; 0 until the DHCP ACK */
static uint16_t ip_ident = 1;

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

#define ETHERTYPE_IP          0x0800
#define ETHERTYPE_ARP         0x0806
#define IPPROTO_ICMP          1
#define IPPROTO_UDP           17

#define IPPROTO_TCP           6

#define DHCP_XID              0x6e657470u   /* "netp" */

/* ---- printing (put_hex: virtio_mmio.h) ---------------------------------- */
static void put_mac(const uint8_t *m)
{
    for (int i = 0; i < 6; i++) {
        if (i)
            uart_putc(':');
        put_hex(m[i], 2);
    }
}

static void put_ip(uint32_t a)
{
    for (int s = 24; s >= 0; s -= 8) {
        uart_putdec((a >> s) & 0xff);
        if (s)
            uart_putc('.');
    }
}

/* ---- byte order and checksums ------------------------------------------ */
static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static uint32_t csum_add(uint32_t sum, const uint8_t *p, unsigned n)
{
    while (n > 1) {
        sum += get16(p);
        p += 2;
        n -= 2;
    }
    if (n)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The UDP pseudo-header (RFC 768) plus the UDP header and data at udp. */
static uint16_t udp_csum(const uint8_t *ip, const uint8_t *udp, unsigned udp_len)
{
    uint32_t sum = csum_add(0, ip + 12, 8);   /* source and destination */
    sum += IPPROTO_UDP + udp_len;
    return csum_fold(csum_add(sum, udp, udp_len));
}

/* ---- virtqueues --------------------------------------------------------- */
/* Make RX buffer i available again (no notify). */
static void rx_post(unsigned i)
{
    vq_publish(&rxring, &rx_avail_idx, (uint16_t)(2 * i));
}

static void rx_init(void)
{
    for (unsigned i = 0; i < RX_BUFS; i++) {
        vq_set_desc(&rxring, 2 * i, rx_hdr[i], net_hdr_len,
                    VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(2 * i + 1));
        vq_set_desc(&rxring, 2 * i + 1, rx_data[i], FRAME_MAX, VIRTQ_DESC_F_WRITE, 0);
        rx_post(i);
    }
}

/*
 * Send tx_frame[0..tx_len) (padded with zeros to 60 bytes) behind an all-zero
 * virtio-net header and wait for the device to return the chain.
 */
static int tx_send(void)
{
    while (tx_len < ETH_ZLEN)
        tx_frame[tx_len++] = 0;
    for (unsigned j = 0; j < net_hdr_len; j++)
        tx_hdr[j] = 0;
    vq_set_desc(&txring, 0, tx_hdr, net_hdr_len, VIRTQ_DESC_F_NEXT, 1);
    vq_set_desc(&txring, 1, tx_frame, tx_len, 0, 0);
    vq_publish(&txring, &tx_avail_idx, 0);
    wr(VM_QUEUE_NOTIFY, TXQ);

    unsigned long polls = TX_POLLS;
    while (!VQ_USED(&txring, tx_used_seen))
        if (--polls == 0)
            return -1;
    uint32_t used_len;
    uint32_t id = vq_take(&txring, &tx_used_seen, &used_len);
#ifdef NET_VERBOSE
    uart_puts("  [tx ");
    uart_putdec(tx_len);
    uart_puts(" bytes, used len ");
    uart_putdec(used_len);
    uart_puts(", polls ");
    uart_putdec(TX_POLLS - polls);
    uart_puts("]\n");
#endif
    return id == 0 ? 0 : -1;
}

/* ---- frame building ------------------------------------------------------- */
static uint8_t *eth_start(const uint8_t *dst, uint16_t type)
{
    for (unsigned j = 0; j < 6; j++) {
        tx_frame[j] = dst[j];
        tx_frame[6 + j] = my_mac[j];
    }
    put16(tx_frame + 12, type);
    return tx_frame + 14;
}

/* Ethernet + IPv4 header (no options, TTL 64, DF clear); returns the payload. */
static uint8_t *ip_start(const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint8_t proto)
{
    uint8_t *ip = eth_start(dst_mac, ETHERTYPE_IP);
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, 0);               /* total length: ip_finish */
    put16(ip + 4, ip_ident++);
    put16(ip + 6, 0);
    ip[8] = 64;
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, src);
    put32(ip + 16, dst);
    return ip + 20;
}

static void ip_finish(unsigned payload_len)
{
    uint8_t *ip = tx_frame + 14;
    put16(ip + 2, 20 + payload_len);
    put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
    tx_len = 14 + 20 + payload_len;
}

static uint8_t *udp_start(const uint8_t *dst_mac, uint32_t src, uint32_t dst,
                          uint16_t sport, uint16_t dport)
{
    uint8_t *udp = ip_start(dst_mac, src, dst, IPPROTO_UDP);
    put16(udp, sport);
    put16(udp + 2, dport);
    return udp + 8;
}

static void udp_finish(unsigned payload_len)
{
    uint8_t *ip = tx_frame + 14, *udp = ip + 20;
    unsigned len = 8 + payload_len;
    put16(udp + 4, len);
    put16(udp + 6, 0);
    uint16_t c = udp_csum(ip, udp, len);
    put16(udp + 6, c ? c : 0xffff);
    ip_finish(len);
}

/* ---- frame parsing --------------------------------------------------------- */
struct ipv4 {
    const uint8_t *hdr;             /* the IP header in rx_frame, or 0 */
    const uint8_t *payload;
    unsigned hlen, len;             /* header length, payload length */
    uint32_t src, dst;
    uint8_t proto;
    int csum_ok;
};

/* IPv4 in a received frame (f, n); 0 if it is not one (or truncated). */
static int parse_ip(const uint8_t *f, unsigned n, struct ipv4 *p)
{
    if (n < 34 || get16(f + 12) != ETHERTYPE_IP)
        return 0;
    const uint8_t *ip = f + 14;
    unsigned hlen = (ip[0] & 0xfu) * 4u, total = get16(ip + 2);
    if ((ip[0] >> 4) != 4 || hlen < 20 || total < hlen || 14 + total > n)
        return 0;
    p->hdr = ip;
    p->hlen = hlen;
    p->payload = ip + hlen;
    p->len = total - hlen;
    p->src = get32(ip + 12);
    p->dst = get32(ip + 16);
    p->proto = ip[9];
    p->csum_ok = csum_fold(csum_add(0, ip, hlen)) == 0;
    return 1;
}

/* UDP to port dport in a received frame: its data and length in data, len. */
static int parse_udp(const uint8_t *f, unsigned n, struct ipv4 *p, uint16_t dport,
                     const uint8_t **data, unsigned *len)
{
    if (!parse_ip(f, n, p) || p->proto != IPPROTO_UDP || p->len < 8)
        return 0;
    const uint8_t *udp = p->payload;
    unsigned ulen = get16(udp + 4);
    if (get16(udp + 2) != dport || ulen < 8 || ulen > p->len)
        return 0;
    *data = udp + 8;
    *len = ulen - 8;
    return 1;
}

static int udp_csum_ok(const struct ipv4 *p)
{
    const uint8_t *udp = p->payload;
    unsigned ulen = get16(udp + 4);
    if (get16(udp + 6) == 0)
        return 1;                   /* no checksum */
    uint32_t sum = csum_add(0, p->hdr + 12, 8);
    sum += IPPROTO_UDP + ulen;
    return csum_fold(csum_add(sum, udp, ulen)) == 0;
}

/* Whether (f, n) is an ARP packet for Ethernet and IPv4 with opcode op. */
static int arp_is(const uint8_t *f, unsigned n, unsigned op)
{
    if (n < 42 || get16(f + 12) != ETHERTYPE_ARP)
        return 0;
    const uint8_t *a = f + 14;
    return get16(a) == 1 && get16(a + 2) == ETHERTYPE_IP && a[4] == 6 && a[5] == 4 && get16(a + 6) == op;
}

/* An ARP packet with opcode op from us (my_mac, my_ip) about target_mac (0:
 * zeros) and target_ip, to dst, in tx_frame (42 bytes). */
static void arp_build(const uint8_t *dst, unsigned op, const uint8_t *target_mac, uint32_t target_ip)
{
    uint8_t *a = eth_start(dst, ETHERTYPE_ARP);
    put16(a, 1);                    /* Ethernet */
    put16(a + 2, ETHERTYPE_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    for (unsigned j = 0; j < 6; j++) {
        a[8 + j] = my_mac[j];
        a[18 + j] = target_mac ? target_mac[j] : 0;
    }
    put32(a + 14, my_ip);
    put32(a + 24, target_ip);
    tx_len = 42;
}

/* Answer an ARP request for our address (silently). */
static void arp_answer(const uint8_t *f, unsigned n)
{
    const uint8_t *a = f + 14;
    if (!my_ip || !arp_is(f, n, 1) || get32(a + 24) != my_ip)
        return;
    uint8_t save[FRAME_MAX];
    unsigned save_len = tx_len;
    for (unsigned j = 0; j < save_len; j++)
        save[j] = tx_frame[j];
    arp_build(a + 8, 2, a + 8, get32(a + 14));
    tx_send();
    arp_requests_answered++;
    for (unsigned j = 0; j < save_len; j++)
        tx_frame[j] = save[j];
    tx_len = save_len;
}

typedef int (*frame_match)(const uint8_t *f, unsigned n);

/*
 * Poll the RX used ring, at most `polls` times, for a frame that `match`
 * accepts; copy it to rx_frame/rx_len. Every RX buffer is reposted (and the RX
 * queue notified) as soon as it has been looked at; ARP requests for our
 * address are answered; anything else is counted in frames_ignored.
 * Returns 0, or -1 if no frame matched in time.
 */
static int rx_wait(frame_match match, unsigned long polls)
{
#ifdef NET_VERBOSE
    unsigned long start = polls;
#endif
    while (polls--) {
        if (!VQ_USED(&rxring, rx_used_seen))
            continue;
        uint32_t len, id = vq_take(&rxring, &rx_used_seen, &len);
        unsigned i = id / 2;
        if ((id & 1) || i >= RX_BUFS || len < net_hdr_len || len > net_hdr_len + FRAME_MAX) {
            uart_puts("error: bad RX used element\n");
            guest_exit(40);
        }
        unsigned n = len - net_hdr_len;
        const uint8_t *f = rx_data[i];
#ifdef NET_VERBOSE
        uart_puts("  [rx buf ");
        uart_putdec(i);
        uart_puts(" len ");
        uart_putdec(n);
        uart_puts(" type ");
        put_hex(n >= 14 ? get16(f + 12) : 0, 4);
        uart_puts(" dst ");
        put_mac(f);
        uart_puts(" hdr");
        for (unsigned j = 0; j < net_hdr_len; j++) {
            uart_putc(' ');
            put_hex(rx_hdr[i][j], 2);
        }
        uart_puts(", after ");
        uart_putdec(start - polls);
        uart_puts(" polls]\n");
#endif
        int ok = match(f, n);
        if (ok) {
            for (unsigned j = 0; j < n; j++)
                rx_frame[j] = f[j];
            rx_len = n;
        } else {
            arp_answer(f, n);
            frames_ignored++;
        }
        rx_post(i);
        wr(VM_QUEUE_NOTIFY, RXQ);
        if (ok)
            return 0;
    }
    return -1;
}

/* "NAME: from MAC to MAC, len N" for the frame in rx_frame. */
static void put_frame_line(const char *name)
{
    uart_puts(name);
    uart_puts(": from ");
    put_mac(rx_frame + 6);
    uart_puts(" to ");
    put_mac(rx_frame);
    uart_puts(", len ");
    uart_putdec(rx_len);
}

static void put_ip_line(const struct ipv4 *p)
{
    uart_puts(", ");
    put_ip(p->src);
    uart_puts(" -> ");
    put_ip(p->dst);
    uart_puts(" ttl ");
    uart_putdec(p->hdr[8]);
    uart_puts(p->csum_ok ? " ip-csum ok" : " ip-csum BAD");
}

/* The UDP datagram in rx_frame (ip, as parse_udp() gives it, and the length of
 * its data): put_frame_line(name), put_ip_line(), then " udp-csum ok, udp
 * SPORT -> DPORT, WHATLEN bytes". */
static void put_udp_line(const char *name, const struct ipv4 *ip, const char *what, unsigned len)
{
    put_frame_line(name);
    put_ip_line(ip);
    uart_puts(udp_csum_ok(ip) ? " udp-csum ok" : " udp-csum BAD");
    uart_puts(", udp ");
    uart_putdec(get16(ip->payload));
    uart_puts(" -> ");
    uart_putdec(get16(ip->payload + 2));
    uart_puts(", ");
    uart_puts(what);
    uart_putdec(len);
    uart_puts(" bytes\n");
}

/* exchange()'s results other than 0. */
#define TX_FAILED             1
#define NO_REPLY              2

/*
 * End the line that announces the frame in tx_frame with ", sent N bytes" (N:
 * as tx_send() pads it), send it, and wait at most `polls` polls for a frame
 * that `match` accepts (then in rx_frame). 0, TX_FAILED, or NO_REPLY after
 * printing "NAME: no reply" (nothing if name is 0).
 */
static int exchange(frame_match match, unsigned long polls, const char *name)
{
    uart_puts(", sent ");
    uart_putdec(tx_len < ETH_ZLEN ? ETH_ZLEN : tx_len);
    uart_puts(" bytes\n");
    if (tx_send() != 0)
        return TX_FAILED;
    if (rx_wait(match, polls) != 0) {
        if (name) {
            uart_puts(name);
            uart_puts(": no reply\n");
        }
        return NO_REPLY;
    }
    return 0;
}

/* ---- DHCP (RFC 2131) ----------------------------------------------------------- */
#define BOOTP_LEN             300u          /* 236 + 64-byte vend (RFC 1542 minimum) */
#define DHCP_DISCOVER         1
#define DHCP_OFFER            2
#define DHCP_REQUEST          3
#define DHCP_ACK              5
#define DHCP_NAK              6

struct dhcp_info {
    int type;
    uint32_t yiaddr, server, router, dns, mask, lease;
    uint8_t opts[24];               /* option codes in order of appearance */
    unsigned nopts;
};

static struct dhcp_info dhcp;
static uint32_t offered_ip, server_id;

static void dhcp_send(int type)
{
    uint8_t *b = udp_start(bcast_mac, 0, 0xffffffffu, 68, 67);
    for (unsigned j = 0; j < BOOTP_LEN; j++)
        b[j] = 0;
    b[0] = 1;                       /* BOOTREQUEST */
    b[1] = 1;                       /* Ethernet */
    b[2] = 6;
    put32(b + 4, DHCP_XID);
    for (unsigned j = 0; j < 6; j++)
        b[28 + j] = my_mac[j];
    uint8_t *o = b + 236;
    put32(o, 0x63825363u);          /* magic cookie */
    o += 4;
    *o++ = 53;                      /* message type */
    *o++ = 1;
    *o++ = (uint8_t)type;
    if (type == DHCP_REQUEST) {
        *o++ = 50;                  /* requested address */
        *o++ = 4;
        put32(o, offered_ip);
        o += 4;
        *o++ = 54;                  /* server identifier */
        *o++ = 4;
        put32(o, server_id);
        o += 4;
    }
    *o++ = 55;                      /* parameter request list */
    *o++ = 4;
    *o++ = 1;                       /* subnet mask */
    *o++ = 3;                       /* router */
    *o++ = 6;                       /* DNS */
    *o++ = 51;                      /* lease time */
    *o = 255;
    udp_finish(BOOTP_LEN);
}

static int dhcp_wanted;

static int dhcp_match(const uint8_t *f, unsigned n)
{
    struct ipv4 ip;
    const uint8_t *b;
    unsigned len;
    if (!parse_udp(f, n, &ip, 68, &b, &len) || len < 240 || b[0] != 2
        || get32(b + 4) != DHCP_XID || get32(b + 236) != 0x63825363u)
        return 0;
    for (unsigned j = 0; j < 6; j++)
        if (b[28 + j] != my_mac[j])
            return 0;
    /* Options. */
    struct dhcp_info d = { 0 };
    d.yiaddr = get32(b + 16);
    for (unsigned k = 240; k < len && b[k] != 255;) {
        unsigned code = b[k];
        if (code == 0) {
            k++;
            continue;
        }
        if (k + 2 > len || k + 2 + b[k + 1] > len)
            break;
        unsigned olen = b[k + 1];
        const uint8_t *v = b + k + 2;
        if (d.nopts < sizeof d.opts)
            d.opts[d.nopts++] = (uint8_t)code;
        if (code == 53 && olen >= 1) {
            d.type = v[0];
        } else if (olen >= 4) {
            uint32_t w = get32(v);
            switch (code) {
            case 54: d.server = w; break;
            case 3: d.router = w; break;
            case 6: d.dns = w; break;
            case 1: d.mask = w; break;
            case 51: d.lease = w; break;
            }
        }
        k += 2 + olen;
    }
    if (d.type != dhcp_wanted && d.type != DHCP_NAK)
        return 0;
    dhcp = d;
    return 1;
}

/* Print what the DHCP reply in rx_frame said. */
static int dhcp_report(const char *name)
{
    struct ipv4 ip;
    const uint8_t *b;
    unsigned len;
    parse_udp(rx_frame, rx_len, &ip, 68, &b, &len);
    put_udp_line(name, &ip, "bootp ", len);
    if (dhcp.type == DHCP_NAK) {
        uart_puts(name);
        uart_puts(": NAK\n");
        return -1;
    }
    uart_puts(name);
    uart_puts(": yiaddr ");
    put_ip(dhcp.yiaddr);
    uart_puts(" siaddr ");
    put_ip(get32(b + 20));
    uart_puts(" flags 0x");
    put_hex(get16(b + 10), 4);
    uart_puts(" file \"");
    for (unsigned j = 0; j < 128 && b[108 + j]; j++)
        uart_putc((char)b[108 + j]);
    uart_puts("\" options");
    for (unsigned j = 0; j < dhcp.nopts; j++) {
        uart_putc(' ');
        uart_putdec(dhcp.opts[j]);
    }
    uart_puts("\n");
    uart_puts(name);
    uart_puts(": server ");
    put_ip(dhcp.server);
    uart_puts(" router ");
    put_ip(dhcp.router);
    uart_puts(" dns ");
    put_ip(dhcp.dns);
    uart_puts(" netmask ");
    put_ip(dhcp.mask);
    uart_puts(" lease ");
    uart_putdec(dhcp.lease);
    uart_puts("\n");
    return 0;
}

/* The two DHCP exchanges: DISCOVER and OFFER, REQUEST and ACK. */
static const struct dhcp_step {
    int send, wanted;
    const char *reply;
    const char *errors[3];          /* TX failed, no reply, NAK */
} dhcp_steps[2] = {
    { DHCP_DISCOVER, DHCP_OFFER, "dhcp offer",
      { "TX of DHCP DISCOVER", "no DHCP OFFER", "DHCP NAK instead of OFFER" } },
    { DHCP_REQUEST, DHCP_ACK, "dhcp ack", { "TX of DHCP REQUEST", "no DHCP ACK", "DHCP NAK" } },
};

/* Send dhcp_steps[k]'s message, wait for its reply (or a NAK) and print it.
 * 0, or the failed step: 11 + 3k (TX), 12 + 3k (no reply), 13 + 3k (a NAK). */
static int dhcp_exchange(unsigned k)
{
    const struct dhcp_step *d = &dhcp_steps[k];
    dhcp_send(d->send);
    if (d->send == DHCP_DISCOVER) {
        uart_puts("dhcp discover: 0.0.0.0:68 -> 255.255.255.255:67 xid 0x");
        put_hex(DHCP_XID, 8);
    } else {
        uart_puts("dhcp request: ");
        put_ip(offered_ip);
        uart_puts(" from server ");
        put_ip(server_id);
    }
    dhcp_wanted = d->wanted;
    int got = exchange(dhcp_match, REPLY_POLLS, d->reply);
    if (got == 0 && dhcp_report(d->reply) != 0)
        got = 3;
    return got ? fail(10 + 3 * (int)k + got, d->errors[got - 1]) : 0;
}

/* ---- ARP ---------------------------------------------------------------------- */
static uint32_t arp_target;

static int arp_match(const uint8_t *f, unsigned n)
{
    return arp_is(f, n, 2) && get32(f + 14 + 14) == arp_target;
}

/* ARP for target; its MAC in mac. Returns 0 or -1. (Not every guest asks.) */
static __attribute__((unused)) int arp_resolve(uint32_t target, uint8_t *mac)
{
    arp_target = target;
    arp_build(bcast_mac, 1, 0, target);
    uart_puts("arp request: who-has ");
    put_ip(target);
    uart_puts(" tell ");
    put_ip(my_ip);
    if (exchange(arp_match, REPLY_POLLS, "arp reply") != 0)
        return -1;
    const uint8_t *a = rx_frame + 14;
    put_frame_line("arp reply");
    uart_puts("\narp reply: ");
    put_ip(get32(a + 14));
    uart_puts(" is-at ");
    put_mac(a + 8);
    uart_puts(", target ");
    put_mac(a + 18);
    uart_puts(" ");
    put_ip(get32(a + 24));
    uart_puts("\n");
    for (unsigned j = 0; j < 6; j++)
        mac[j] = a[8 + j];
    return 0;
}

/* ---- bringing the link up ------------------------------------------------------ */
/*
 * The device: found, reset, its features printed (the one line that differs
 * between the legacy and the modern interface: "virtio-mmio slot N version V
 * device features ... net header H bytes"), MAC and STATUS accepted, the
 * queues set up, DRIVER_OK; then its MAC and link status. 0, or the failed
 * step (2..10).
 */
static int net_start(void)
{
    int err = vm_find(VIRTIO_ID_NET, "no virtio-net device");
    if (!err)
        err = vm_reset();
    if (err)
        return err;
    net_hdr_len = version == 2 ? 12 : 10;
    /* The one line that differs between the legacy and the modern interface. */
    vm_put_slot();
    uart_putc(' ');
    vm_put_features();
    uart_puts(" net header ");
    uart_putdec(net_hdr_len);
    uart_puts(" bytes\n");

    err = vm_check_version_1();
    if (err)
        return err;
    if (!(feat_lo & (1u << VIRTIO_NET_F_MAC)) || !(feat_lo & (1u << VIRTIO_NET_F_STATUS)))
        return fail(6, "MAC or STATUS not offered");
    err = vm_accept((1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_STATUS), 7);
    if (err)
        return err;
    uart_puts("features accepted: MAC STATUS\n");

    /* Queues: RX 0, TX 1. */
    if (vm_setup_queue(RXQ, &rxring) != 0)
        return fail(8, "RX queue unusable");
    if (vm_setup_queue(TXQ, &txring) != 0)
        return fail(9, "TX queue unusable");
    rx_init();
    err = vm_driver_ok(10);
    if (err)
        return err;
    wr(VM_QUEUE_NOTIFY, RXQ);
    uart_puts("driver ok: rx queue 0 with ");
    uart_putdec(RX_BUFS);
    uart_puts(" buffers of ");
    uart_putdec(FRAME_MAX);
    uart_puts(" bytes, tx queue 1\n");

    /* The MAC and the link status from config space. */
    uint32_t gen;
    uint16_t link;
    do {
        gen = vm_config_gen();
        for (unsigned j = 0; j < 6; j++)
            my_mac[j] = MMIO8(base + VM_CONFIG + NET_CFG_MAC + j);
        link = *(volatile uint16_t *)(base + VM_CONFIG + NET_CFG_STATUS);
    } while (vm_config_gen() != gen);
    uart_puts("mac ");
    put_mac(my_mac);
    uart_puts("\nlink status 0x");
    put_hex(link, 4);
    uart_puts(link & VIRTIO_NET_S_LINK_UP ? " (up)\n" : " (down)\n");
    return 0;
}

static uint32_t net_router, net_dns;   /* from the DHCP ACK */

/* DHCP (DISCOVER, OFFER, REQUEST, ACK) and "configured ADDR router R dns D":
 * my_ip, net_router and net_dns are set. 0, or the failed step (11..17). */
static int net_dhcp(void)
{
    int err = dhcp_exchange(0);
    if (err)
        return err;
    offered_ip = dhcp.yiaddr;
    server_id = dhcp.server;
    err = dhcp_exchange(1);
    if (err)
        return err;
    if (dhcp.yiaddr != offered_ip)
        return fail(17, "DHCP ACK for another address");
    my_ip = dhcp.yiaddr;
    net_router = dhcp.router;
    net_dns = dhcp.dns;
    uart_puts("configured ");
    put_ip(my_ip);
    uart_puts(" router ");
    put_ip(net_router);
    uart_puts(" dns ");
    put_ip(net_dns);
    uart_puts("\n");
    return 0;
}

#endif /* NETSTACK_H */
