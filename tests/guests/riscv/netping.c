/*
 * netping: a small polling virtio-net driver over virtio-mmio (legacy,
 * Version 1, and modern, Version 2) that talks to QEMU's user-mode network
 * (slirp: -netdev user,id=n0 -device virtio-net-device,netdev=n0).
 *
 * The guest scans the eight virtio-mmio slots for a network device (DeviceID
 * 1), negotiates VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS (and VERSION_1 on
 * Version 2), nothing else, sets up RX queue 0 (8 posted buffers) and TX queue
 * 1, then:
 *   1. prints the MAC and the link status from config space;
 *   2. DHCP: DISCOVER, OFFER, REQUEST, ACK (address, server, router, DNS,
 *      netmask, lease time);
 *   3. ARP for the router (10.0.2.2);
 *   4. three ICMP echo requests to the router, with payloads of 32, 256 and
 *      1472 bytes (the largest fills a 1514-byte frame);
 *   5. a UDP round trip with slirp's own TFTP server (10.0.2.2:69): a read
 *      request, which QEMU answers with a TFTP error since no tftp= directory
 *      is given; then a DNS A query to 10.0.2.3, whose answer comes from the
 *      host's resolver: only the fact that the query was sent is printed,
 *      the reply (or its absence) is consumed silently;
 *   6. prints "netping done" and exits through the finisher.
 *
 * Every wait is a bounded count of polls of the RX used ring (no clock, no
 * interrupts), so the output does not depend on timing. Each step prints what
 * it received, including frame lengths and whether the checksums verified.
 * The line "virtio-mmio slot N version V ..." is the only one that differs
 * between the legacy and the modern interface (device features, header
 * size): tests compare everything else with expected/netping.out.
 *
 * On an error the guest prints "error: WHAT", sets FAILED in Status and exits
 * with a code from 2 to 40 (see fail() calls).
 *
 * The driver, DHCP, ARP and the IPv4/UDP helpers are netstack.h's (shared with
 * netecho); steps 3-6 are here.
 */
#ifdef NETPING_VERBOSE
#define NET_VERBOSE                         /* netstack.h's frames and TX completions too */
#endif
#include "netstack.h"                       /* the driver, DHCP, ARP, IPv4 and UDP */

/* DNS_POLLS: about 20 ms on QEMU (the DNS reply, if any, is not printed, so
 * waiting longer gains nothing); REPLY_POLLS and TX_POLLS: netstack.h. */
#define DNS_POLLS             10000000ul

#define ICMP_ID               0x4e50u       /* "NP" */
#define DNS_ID                0x4e51u
#define DNS_PORT_LOCAL        49153u
#define TFTP_PORT_LOCAL       49154u

/* ---- ICMP echo ---------------------------------------------------------------- */
static uint16_t ping_seq;

static uint8_t ping_byte(unsigned j, unsigned seq)
{
    return (uint8_t)(j * 7u + seq * 31u + (j >> 8));
}

static int icmp_match(const uint8_t *f, unsigned n)
{
    struct ipv4 ip;
    if (!parse_ip(f, n, &ip) || ip.proto != IPPROTO_ICMP || ip.len < 8)
        return 0;
    const uint8_t *c = ip.payload;
    return c[0] == 0 && get16(c + 4) == ICMP_ID && get16(c + 6) == ping_seq;
}

static int ping(uint32_t dst, const uint8_t *dst_mac, unsigned seq, unsigned size)
{
    uint8_t *c = ip_start(dst_mac, my_ip, dst, IPPROTO_ICMP);
    c[0] = 8;                       /* echo request */
    c[1] = 0;
    put16(c + 2, 0);
    put16(c + 4, ICMP_ID);
    put16(c + 6, seq);
    for (unsigned j = 0; j < size; j++)
        c[8 + j] = ping_byte(j, seq);
    put16(c + 2, csum_fold(csum_add(0, c, 8 + size)));
    ip_finish(8 + size);
    ping_seq = (uint16_t)seq;
    uart_puts("ping ");
    uart_putdec(seq);
    uart_puts(": echo request to ");
    put_ip(dst);
    uart_puts(", payload ");
    uart_putdec(size);
    if (exchange(icmp_match, REPLY_POLLS, "ping") != 0)
        return -1;
    struct ipv4 ip;
    parse_ip(rx_frame, rx_len, &ip);
    const uint8_t *r = ip.payload;
    unsigned payload = ip.len - 8;
    int same = payload == size;
    for (unsigned j = 0; same && j < size; j++)
        if (r[8 + j] != ping_byte(j, seq))
            same = 0;
    uart_puts("ping ");
    uart_putdec(seq);
    uart_puts(": ");
    put_frame_line("echo reply");
    put_ip_line(&ip);
    uart_puts(csum_fold(csum_add(0, r, ip.len)) == 0 ? " icmp-csum ok" : " icmp-csum BAD");
    uart_puts("\nping ");
    uart_putdec(seq);
    uart_puts(": id 0x");
    put_hex(get16(r + 4), 4);
    uart_puts(" seq ");
    uart_putdec(get16(r + 6));
    uart_puts(" payload ");
    uart_putdec(payload);
    uart_puts(same ? " matches\n" : " differs\n");
    return same ? 0 : -1;
}

/* ---- UDP: TFTP read request to slirp's own server ----------------------------- */
static int tftp_match(const uint8_t *f, unsigned n)
{
    struct ipv4 ip;
    const uint8_t *d;
    unsigned len;
    return parse_udp(f, n, &ip, TFTP_PORT_LOCAL, &d, &len);
}

static const char tftp_file[] = "netping.txt";

/* s with its NUL at d + n; returns the offset after it. */
static unsigned put_str0(uint8_t *d, unsigned n, const char *s)
{
    do
        d[n++] = (uint8_t)*s;
    while (*s++);
    return n;
}

static int tftp_probe(uint32_t server, const uint8_t *server_mac)
{
    uint8_t *d = udp_start(server_mac, my_ip, server, TFTP_PORT_LOCAL, 69);
    put16(d, 1);                    /* RRQ */
    udp_finish(put_str0(d, put_str0(d, 2, tftp_file), "octet"));
    uart_puts("tftp: read request for \"");
    uart_puts(tftp_file);
    uart_puts("\" to ");
    put_ip(server);
    uart_puts(":69 from port ");
    uart_putdec(TFTP_PORT_LOCAL);
    int got = exchange(tftp_match, REPLY_POLLS, "tftp");
    if (got != 0)
        return got == TX_FAILED ? -1 : 0;
    struct ipv4 ip;
    const uint8_t *r;
    unsigned len;
    parse_udp(rx_frame, rx_len, &ip, TFTP_PORT_LOCAL, &r, &len);
    put_udp_line("tftp reply", &ip, "", len);
    uart_puts("tftp reply: opcode ");
    uart_putdec(len >= 2 ? get16(r) : 0);
    if (len >= 4 && get16(r) == 5) {
        uart_puts(" (error) code ");
        uart_putdec(get16(r + 2));
        uart_puts(" message \"");
        for (unsigned j = 4; j < len && r[j]; j++)
            uart_putc((char)r[j]);
        uart_puts("\"");
    }
    uart_puts("\n");
    return 0;
}

/* ---- UDP: DNS query through slirp's DNS proxy ----------------------------------- */
static const char dns_name[] = "example.test";

static int dns_match(const uint8_t *f, unsigned n)
{
    struct ipv4 ip;
    const uint8_t *d;
    unsigned len;
    if (parse_udp(f, n, &ip, DNS_PORT_LOCAL, &d, &len))
        return 1;
    /* An ICMP error about the query (e.g. the host has no route to its resolver). */
    if (!parse_ip(f, n, &ip) || ip.proto != IPPROTO_ICMP || ip.len < 8 + 28)
        return 0;
    const uint8_t *c = ip.payload;
    return (c[0] == 3 || c[0] == 11) && c[8 + 9] == IPPROTO_UDP
           && get16(c + 8 + 20) == DNS_PORT_LOCAL;
}

static int dns_query(uint32_t server, const uint8_t *server_mac)
{
    uint8_t *d = udp_start(server_mac, my_ip, server, DNS_PORT_LOCAL, 53);
    put16(d, DNS_ID);
    put16(d + 2, 0x0100);           /* standard query, recursion desired */
    put16(d + 4, 1);                /* QDCOUNT */
    put16(d + 6, 0);
    put16(d + 8, 0);
    put16(d + 10, 0);
    unsigned n = 12;
    const char *s = dns_name;
    while (*s) {
        unsigned l = 0;
        while (s[l] && s[l] != '.')
            l++;
        d[n++] = (uint8_t)l;
        for (unsigned j = 0; j < l; j++)
            d[n++] = (uint8_t)s[j];
        s += l;
        if (*s == '.')
            s++;
    }
    d[n++] = 0;
    put16(d + n, 1);                /* QTYPE A */
    put16(d + n + 2, 1);            /* QCLASS IN */
    n += 4;
    udp_finish(n);
    uart_puts("dns: A query for ");
    uart_puts(dns_name);
    uart_puts(" to ");
    put_ip(server);
    uart_puts(":53 from port ");
    uart_putdec(DNS_PORT_LOCAL);
    /*
     * slirp forwards the query to the host's resolver: whether an answer comes,
     * and what it says, depends on the host. Nothing about it is printed
     * (except in the verbose development build).
     */
    int sent = exchange(dns_match, DNS_POLLS, 0);
    if (sent == TX_FAILED)
        return -1;
    int got = sent == 0;
#ifdef NETPING_VERBOSE
    if (!got) {
        uart_puts("  [dns: no reply]\n");
    } else {
        struct ipv4 ip;
        const uint8_t *r;
        unsigned len;
        if (parse_udp(rx_frame, rx_len, &ip, DNS_PORT_LOCAL, &r, &len) && len >= 12) {
            uart_puts("  [dns reply: id 0x");
            put_hex(get16(r), 4);
            uart_puts(" rcode ");
            uart_putdec(get16(r + 2) & 0xf);
            uart_puts(" answers ");
            uart_putdec(get16(r + 6));
            uart_puts("]\n");
        } else {
            uart_puts("  [dns: icmp type ");
            uart_putdec(ip.payload[0]);
            uart_puts(" code ");
            uart_putdec(ip.payload[1]);
            uart_puts("]\n");
        }
    }
#else
    (void)got;
#endif
    uart_puts("dns: reply not printed (slirp forwards the query to the host's resolver)\n");
    return 0;
}

/* ---- device set-up --------------------------------------------------------------- */
int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    uart_puts("netping start\n");
    int err = net_start();
    if (!err)
        err = net_dhcp();
    if (err)
        return err;
    uint32_t router = net_router, dns = net_dns;

    /* 3. ARP for the router. */
    uint8_t router_mac[6];
    if (arp_resolve(router, router_mac) != 0)
        return fail(20, "ARP for the router");

    /* 4. Pings. */
    static const unsigned sizes[3] = { 32, 256, 1472 };
    for (unsigned k = 0; k < 3; k++)
        if (ping(router, router_mac, k + 1, sizes[k]) != 0)
            return fail(21 + (int)k, "ping");

    /* 5. UDP: TFTP to slirp's server, then DNS through its proxy. */
    if (tftp_probe(router, router_mac) != 0)
        return fail(30, "TX of TFTP request");
    uint8_t dns_mac[6];
    if (arp_resolve(dns, dns_mac) != 0)
        return fail(31, "ARP for the DNS server");
    if (dns_query(dns, dns_mac) != 0)
        return fail(32, "TX of DNS query");

    /* 6. Done. */
    uart_puts("netping done\n");
    return 0;
}
