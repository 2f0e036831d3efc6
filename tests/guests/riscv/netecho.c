/*
 * netecho: an echo server (RFC 862, port 7) on QEMU's user network, over
 * TCP and UDP, for host programs that reach it through a host forward
 * (-netdev user,hostfwd=tcp::HPORT-:7,hostfwd=udp::HPORT-:7).
 *
 * netstack.h's virtio-net driver and DHCP bring the link up (the same lines
 * as netping's first ones), then the guest serves, sleeping in `wfi` between
 * frames (the device's PLIC interrupt, IRQ slot + 1, enabled with MIE.MEIE;
 * MSTATUS.MIE stays off, so no trap: wfi returns, the guest claims, acknowledges
 * InterruptStatus, completes and looks at the RX ring). Every frame is handled
 * as it comes:
 *   - ARP requests for 10.0.2.15 are answered (silently);
 *   - UDP to port 7: the payload goes back to its sender uppercased, from port
 *     7 ("udp ADDR:PORT: N bytes");
 *   - TCP to port 7: one connection at a time. SYN -> SYN-ACK (MSS 1460, a
 *     fixed window of 8192); the ACK of it opens the connection ("connection
 *     opened, mss M", M: the peer's MSS option); data in order is echoed back
 *     uppercased at once, in segments of at most the peer's MSS, and
 *     acknowledged by them ("N bytes received", one line per segment); the
 *     peer's FIN is acknowledged together with the guest's own FIN ("peer
 *     closed"), whose ACK closes the connection ("closed, N bytes echoed").
 *     Pure and duplicate ACKs are taken silently; a retransmitted segment is
 *     acknowledged again; no retransmission timer (the link loses nothing).
 *     Anything unexpected (another port, a segment without a connection, a
 *     second peer, an out-of-order segment, an ACK of unsent data) is answered
 *     with a RST ("reset (WHY)", RFC 9293's reset generation).
 * A UDP datagram "quit" (or a TCP line "quit"), with an optional "\r\n" or
 * "\n", ends the session: after its echo the guest prints "netecho done: ..."
 * and exits through the finisher with 0. Nothing depends on a clock: the
 * transcript depends only on the frames received.
 *
 * On an error: "error: WHAT", FAILED in Status, exit 2..17 (net_start,
 * net_dhcp), 20 (a TX the device did not complete), 21 (a bad RX element).
 */
#include "netstack.h"
#include "riscv.h"

#define ECHO_PORT             7u
#define TCP_WINDOW            8192u         /* advertised, always: data is echoed at once */
#define TCP_MSS_SENT          1460u         /* 1500 - 40 */
#define TCP_MSS_DEFAULT       536u          /* a peer's without the option */
#define TCP_ISS_BASE          0x6e650000u   /* "ne"; + 0x10000 per connection */

#define TH_FIN                0x01u
#define TH_SYN                0x02u
#define TH_RST                0x04u
#define TH_PSH                0x08u
#define TH_ACK                0x10u

enum tcp_state { TCP_CLOSED, TCP_SYN_RECEIVED, TCP_ESTABLISHED, TCP_LAST_ACK };

/* The one connection. */
static struct tcb {
    enum tcp_state state;
    uint8_t mac[6];                 /* the peer's: the source of its frames */
    uint32_t ip;
    uint16_t port;
    uint16_t mss;                   /* the peer's */
    uint32_t iss, irs;
    uint32_t snd_una, snd_nxt, rcv_nxt;
    unsigned long bytes;            /* received, so echoed */
    unsigned line_len;              /* of the line being received */
    char line[4];                   /* its first four characters */
} tcb;

static unsigned long syns_accepted, udp_datagrams, resets_sent;
static int quit;
static unsigned irq;                /* the device's PLIC source: slot + 1 */

/* ---- helpers --------------------------------------------------------------------- */
static int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

static uint8_t upper(uint8_t c) { return c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c; }

/* "PROTO ADDR:PORT: " */
static void put_peer(const char *proto, uint32_t ip, unsigned port)
{
    uart_puts(proto);
    uart_putc(' ');
    put_ip(ip);
    uart_putc(':');
    uart_putdec(port);
    uart_puts(": ");
}

/* Whether p[0..n) is "quit", "quit\n" or "quit\r\n". */
static int is_quit(const uint8_t *p, unsigned n)
{
    if (n < 4 || p[0] != 'q' || p[1] != 'u' || p[2] != 'i' || p[3] != 't')
        return 0;
    return n == 4 || (n == 5 && p[4] == '\n') || (n == 6 && p[4] == '\r' && p[5] == '\n');
}

static void send_frame(void)
{
    if (tx_send() != 0)
        guest_exit(fail(20, "TX not completed"));
}

/* ---- UDP ------------------------------------------------------------------------- */
static __attribute__((noinline)) void udp_echo(const uint8_t *f, const struct ipv4 *ip,
                                               const uint8_t *data, unsigned len)
{
    unsigned sport = get16(ip->payload);
    put_peer("udp", ip->src, sport);
    if (!udp_csum_ok(ip)) {
        uart_puts("bad checksum, dropped\n");
        return;
    }
    udp_datagrams++;
    uart_putdec(len);
    uart_puts(" bytes");
    if (is_quit(data, len)) {
        uart_puts(", quit");
        quit = 1;
    }
    uart_putc('\n');
    uint8_t *o = udp_start(f + 6, my_ip, ip->src, ECHO_PORT, (uint16_t)sport);
    for (unsigned j = 0; j < len; j++)
        o[j] = upper(data[j]);
    udp_finish(len);
    send_frame();
}

/* ---- TCP ------------------------------------------------------------------------- */
/* The TCP checksum over the pseudo-header of the IP header ip and the segment
 * t[0..len): 0 for a received segment that verifies. */
static uint16_t tcp_csum(const uint8_t *ip, const uint8_t *t, unsigned len)
{
    uint32_t sum = csum_add(0, ip + 12, 8);
    sum += IPPROTO_TCP + len;
    return csum_fold(csum_add(sum, t, len));
}

/* One segment from sport to dst:dport (Ethernet mac): header (with the MSS
 * option on a SYN), then data[0..len) uppercased. */
static void tcp_send(const uint8_t *mac, uint32_t dst, unsigned sport, unsigned dport, uint32_t seq,
                     uint32_t ack, unsigned flags, const uint8_t *data, unsigned len)
{
    uint8_t *t = ip_start(mac, my_ip, dst, IPPROTO_TCP);
    unsigned hlen = flags & TH_SYN ? 24 : 20;
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)(hlen / 4 << 4);
    t[13] = (uint8_t)flags;
    put16(t + 14, TCP_WINDOW);
    put16(t + 16, 0);               /* checksum, below */
    put16(t + 18, 0);               /* urgent pointer */
    if (flags & TH_SYN) {
        t[20] = 2;                  /* MSS */
        t[21] = 4;
        put16(t + 22, TCP_MSS_SENT);
    }
    for (unsigned j = 0; j < len; j++)
        t[hlen + j] = upper(data[j]);
    put16(t + 16, tcp_csum(tx_frame + 14, t, hlen + len));
    ip_finish(hlen + len);
    send_frame();
}

/* To the connection's peer, from port 7. */
static void tcp_reply(uint32_t seq, unsigned flags, const uint8_t *data, unsigned len)
{
    tcp_send(tcb.mac, tcb.ip, ECHO_PORT, tcb.port, seq, tcb.rcv_nxt, flags, data, len);
}

/* The segment t (its data length len) gets a RST (RFC 9293 3.10.7.1: the ACK
 * it carries as the sequence number, or an ACK of all of it); "reset (WHY)". */
static void tcp_reset(const uint8_t *f, const struct ipv4 *ip, const uint8_t *t, unsigned len,
                      const char *why)
{
    unsigned flags = t[13];
    if (flags & TH_ACK)
        tcp_send(f + 6, ip->src, get16(t + 2), get16(t), get32(t + 8), 0, TH_RST, 0, 0);
    else
        tcp_send(f + 6, ip->src, get16(t + 2), get16(t), 0,
                 get32(t + 4) + len + (flags & TH_SYN ? 1 : 0) + (flags & TH_FIN ? 1 : 0),
                 TH_RST | TH_ACK, 0, 0);
    resets_sent++;
    put_peer("tcp", ip->src, get16(t));
    uart_puts("reset (");
    uart_puts(why);
    uart_puts(")\n");
}

/* The MSS option of a SYN's header t (off bytes), or TCP_MSS_DEFAULT. */
static unsigned tcp_peer_mss(const uint8_t *t, unsigned off)
{
    for (unsigned k = 20; k < off;) {
        if (t[k] == 0)
            break;
        if (t[k] == 1) {
            k++;
            continue;
        }
        if (k + 1 >= off || t[k + 1] < 2 || k + t[k + 1] > off)
            break;
        if (t[k] == 2 && t[k + 1] == 4)
            return get16(t + k + 2);
        k += t[k + 1];
    }
    return TCP_MSS_DEFAULT;
}

/* A SYN for port 7 with no connection: SYN-RECEIVED, SYN-ACK. */
static void tcp_accept(const uint8_t *f, const struct ipv4 *ip, const uint8_t *t, unsigned off)
{
    for (unsigned j = 0; j < 6; j++)
        tcb.mac[j] = f[6 + j];
    tcb.ip = ip->src;
    tcb.port = get16(t);
    tcb.mss = (uint16_t)tcp_peer_mss(t, off);
    if (tcb.mss == 0)
        tcb.mss = TCP_MSS_DEFAULT;
    tcb.irs = get32(t + 4);
    tcb.rcv_nxt = tcb.irs + 1;
    tcb.iss = TCP_ISS_BASE + 0x10000u * (uint32_t)syns_accepted++;
    tcb.snd_una = tcb.iss;
    tcb.snd_nxt = tcb.iss + 1;
    tcb.bytes = 0;
    tcb.line_len = 0;
    tcb.state = TCP_SYN_RECEIVED;
    tcp_reply(tcb.iss, TH_SYN | TH_ACK, 0, 0);
}

/* Data in order: its lines ("quit" ends the session), its echo. */
static void tcp_data(const uint8_t *data, unsigned len)
{
    tcb.rcv_nxt += len;
    tcb.bytes += len;
    put_peer("tcp", tcb.ip, tcb.port);
    uart_putdec(len);
    uart_puts(" bytes received\n");
    for (unsigned j = 0; j < len; j++) {
        uint8_t c = data[j];
        if (c == '\n') {
            if (is_quit((const uint8_t *)tcb.line, tcb.line_len))
                quit = 1;
            tcb.line_len = 0;
        } else if (c != '\r') {
            if (tcb.line_len < sizeof tcb.line)
                tcb.line[tcb.line_len] = (char)c;
            tcb.line_len++;
        }
    }
    for (unsigned done = 0; done < len;) {
        unsigned n = len - done < tcb.mss ? len - done : tcb.mss;
        tcp_reply(tcb.snd_nxt, TH_ACK | TH_PSH, data + done, n);
        tcb.snd_nxt += n;
        done += n;
    }
    if (quit) {
        put_peer("tcp", tcb.ip, tcb.port);
        uart_puts("quit\n");
    }
}

/* A TCP segment for us (ip: its IP header, as parse_ip() gives it). */
static __attribute__((noinline)) void tcp_input(const uint8_t *f, const struct ipv4 *ip)
{
    const uint8_t *t = ip->payload;
    if (ip->len < 20)
        return;
    unsigned off = (t[12] >> 4) * 4u;
    if (off < 20 || off > ip->len)
        return;
    unsigned sport = get16(t), dport = get16(t + 2), flags = t[13];
    uint32_t seq = get32(t + 4), ack = get32(t + 8);
    const uint8_t *data = t + off;
    unsigned len = ip->len - off;
    if (tcp_csum(ip->hdr, t, ip->len) != 0) {
        put_peer("tcp", ip->src, sport);
        uart_puts("bad checksum, dropped\n");
        return;
    }
    int ours = tcb.state != TCP_CLOSED && ip->src == tcb.ip && sport == tcb.port && dport == ECHO_PORT;

    if (flags & TH_RST) {           /* never answered */
        if (ours && seq == tcb.rcv_nxt) {
            tcb.state = TCP_CLOSED;
            put_peer("tcp", ip->src, sport);
            uart_puts("reset by peer\n");
        }
        return;
    }
    if (dport != ECHO_PORT) {
        tcp_reset(f, ip, t, len, "port closed");
        return;
    }
    if (!ours) {
        if (tcb.state == TCP_CLOSED && (flags & (TH_SYN | TH_ACK | TH_FIN)) == TH_SYN)
            tcp_accept(f, ip, t, off);
        else
            tcp_reset(f, ip, t, len, tcb.state == TCP_CLOSED ? "no connection" : "busy");
        return;
    }
    if (flags & TH_SYN) {
        if (tcb.state == TCP_SYN_RECEIVED && !(flags & TH_ACK) && seq == tcb.irs) {
            tcp_reply(tcb.iss, TH_SYN | TH_ACK, 0, 0);   /* the SYN again: the SYN-ACK again */
        } else {
            tcb.state = TCP_CLOSED;
            tcp_reset(f, ip, t, len, "unexpected syn");
        }
        return;
    }
    if (!(flags & TH_ACK))
        return;                     /* RFC 9293: dropped */

    /* The ACK. */
    if (tcb.state == TCP_SYN_RECEIVED) {
        if (ack != tcb.iss + 1) {
            tcb.state = TCP_CLOSED;
            tcp_reset(f, ip, t, len, "bad ack of syn");
            return;
        }
        tcb.snd_una = ack;
        tcb.state = TCP_ESTABLISHED;
        put_peer("tcp", tcb.ip, tcb.port);
        uart_puts("connection opened, mss ");
        uart_putdec(tcb.mss);
        uart_putc('\n');
    } else if (seq_lt(tcb.snd_nxt, ack)) {
        tcb.state = TCP_CLOSED;
        tcp_reset(f, ip, t, len, "ack of unsent data");
        return;
    } else if (seq_lt(tcb.snd_una, ack)) {
        tcb.snd_una = ack;          /* older ones: duplicate ACKs */
    }

    unsigned fin = flags & TH_FIN ? 1 : 0;
    if (tcb.state == TCP_LAST_ACK) {
        if (tcb.snd_una == tcb.snd_nxt) {
            tcb.state = TCP_CLOSED;
            put_peer("tcp", tcb.ip, tcb.port);
            uart_puts("closed, ");
            uart_putdec(tcb.bytes);
            uart_puts(" bytes echoed\n");
        } else if (fin) {           /* the FIN again: our FIN and its ACK again */
            tcp_reply(tcb.snd_nxt - 1, TH_FIN | TH_ACK, 0, 0);
        }
        return;
    }
    if (len == 0 && !fin)
        return;                     /* a pure ACK */

    /* Data and FIN, in ESTABLISHED. */
    if (seq != tcb.rcv_nxt) {
        uint32_t old = tcb.rcv_nxt - seq;
        if (!seq_lt(seq, tcb.rcv_nxt)) {
            tcb.state = TCP_CLOSED;
            tcp_reset(f, ip, t, len, "out-of-order segment");
            return;
        }
        if (old >= len + fin) {     /* all of it seen before */
            put_peer("tcp", tcb.ip, tcb.port);
            uart_puts("duplicate segment, acknowledged again\n");
            tcp_reply(tcb.snd_nxt, TH_ACK, 0, 0);
            return;
        }
        if (old > len)
            old = len;              /* only the FIN is new */
        data += old;
        len -= old;
    }
    if (len)
        tcp_data(data, len);
    if (quit)
        return;
    if (fin) {
        tcb.rcv_nxt++;
        put_peer("tcp", tcb.ip, tcb.port);
        uart_puts("peer closed\n");
        tcp_reply(tcb.snd_nxt, TH_FIN | TH_ACK, 0, 0);
        tcb.snd_nxt++;
        tcb.state = TCP_LAST_ACK;
    }
}

/* ---- frames ---------------------------------------------------------------------- */
static void frame_input(const uint8_t *f, unsigned n)
{
    struct ipv4 ip;
    const uint8_t *data;
    unsigned len;
    if (arp_is(f, n, 1)) {
        arp_answer(f, n);           /* if it asks for our address */
        return;
    }
    if (!parse_ip(f, n, &ip) || ip.dst != my_ip)
        return;
    if (!ip.csum_ok || (get16(ip.hdr + 6) & 0x3fffu) != 0)
        return;                     /* a bad header or a fragment */
    if (ip.proto == IPPROTO_TCP)
        tcp_input(f, &ip);
    else if (parse_udp(f, n, &ip, ECHO_PORT, &data, &len))
        udp_echo(f, &ip, data, len);
}

/* Sleep until the device's interrupt (or any other): claim it, acknowledge
 * the device (its line goes low), complete it. The caller looks at the ring
 * again: a frame that came before the acknowledgement is there, one after it
 * raises the line again. */
static void idle(void)
{
    wfi();
    uint32_t claimed = plic_claim();
    if (claimed) {
        if (claimed == irq)
            wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));
        plic_complete(claimed);
    }
}

/* Frames, one at a time as they come, until "quit". */
static void serve(void)
{
    while (!quit) {
        while (!VQ_USED(&rxring, rx_used_seen))
            idle();
        uint32_t len, id = vq_take(&rxring, &rx_used_seen, &len);
        unsigned i = id / 2;
        if ((id & 1) || i >= RX_BUFS || len < net_hdr_len || len > net_hdr_len + FRAME_MAX)
            guest_exit(fail(21, "bad RX used element"));
        frame_input(rx_data[i], len - net_hdr_len);
        rx_post(i);
        wr(VM_QUEUE_NOTIFY, RXQ);
    }
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    uart_puts("netecho start\n");
    int err = net_start();
    if (!err)
        err = net_dhcp();
    if (err)
        return err;

    irq = (unsigned)slot + 1;
    plic_set_priority(irq, 1);
    plic_set_threshold(0);
    plic_enable(irq);
    csr_set(mie, MIE_MEIE);         /* MSTATUS.MIE off: wfi wakes up, no trap */
    uart_puts("netecho ready: tcp and udp echo on ");
    put_ip(my_ip);
    uart_puts(":7, idle in wfi for plic irq ");
    uart_putdec(irq);
    uart_putc('\n');

    serve();

    uart_puts("netecho done: tcp connections ");
    uart_putdec(syns_accepted);
    uart_puts(", udp datagrams ");
    uart_putdec(udp_datagrams);
    uart_puts(", resets sent ");
    uart_putdec(resets_sent);
    uart_putc('\n');
    return 0;
}
