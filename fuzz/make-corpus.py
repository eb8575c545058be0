#!/usr/bin/env python3
"""Builds a small seed corpus for every fuzz target under fuzz/corpus/<target>/.

Each seed is a real-looking frame (or, for a per-header target, that header
and what follows it) with correct lengths and checksums, so the fuzzer starts
past the length and checksum checks: VXLAN over IPv4 and IPv6, 802.1Q and
QinQ tags, ARP, IPv4 options and fragments, IPv6 extension headers, ICMP
errors quoting a datagram, neighbour discovery, TCP options.

Usage: python3 fuzz/make-corpus.py   (from anywhere; writes next to itself)
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
V4_A, V4_B = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
IN_A, IN_B = bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("20010db8000000000000000000000002")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, ethertype, payload, tags=()):
    head = dst + src
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, options=b"", flags_frag=0x4000, ttl=64, total=None):
    ihl = 5 + len(options) // 4
    total = total if total is not None else ihl * 4 + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, flags_frag, ttl, proto, 0, src, dst) + options
    head = head[:10] + struct.pack("!H", csum(head)) + head[12:]
    return head + payload


def ipv6(src, dst, next_header, payload, hop_limit=64):
    return struct.pack("!IHBB16s16s", 0x60012345, len(payload), next_header, hop_limit, src, dst) + payload


def pseudo4(src, dst, proto, length):
    return src + dst + struct.pack("!BBH", 0, proto, length)


def pseudo6(src, dst, next_header, length):
    return src + dst + struct.pack("!IxxxB", length, next_header)


def udp(src_port, dst_port, payload, pseudo=None):
    length = 8 + len(payload)
    head = struct.pack("!HHHH", src_port, dst_port, length, 0)
    if pseudo is not None:
        c = csum(pseudo(length) + head + payload) or 0xFFFF
        head = head[:6] + struct.pack("!H", c)
    return head + payload


def tcp(src_port, dst_port, seq, ack, flags, options, payload, pseudo):
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    head = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, off << 4, flags, 64240, 0, 0) + options
    c = csum(pseudo(len(head) + len(payload)) + head + payload)
    return head[:16] + struct.pack("!H", c) + head[18:] + payload


def icmp4(typ, code, rest, data):
    msg = struct.pack("!BBH", typ, code, 0) + rest + data
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def icmp6(typ, code, body, src, dst):
    msg = struct.pack("!BBH", typ, code, 0) + body
    c = csum(pseudo6(src, dst, 58, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def vxlan(vni, inner):
    return struct.pack("!II", 0x08000000, vni << 8) + inner


SYN_OPTIONS = bytes.fromhex("020405b4") + bytes.fromhex("0402080a") + struct.pack("!II", 1, 0) + bytes.fromhex("01030307")
ACK_OPTIONS = bytes.fromhex("0101080a") + struct.pack("!II", 7, 9) + bytes.fromhex("0101050a") + struct.pack("!II", 100, 200)


def main():
    seeds = {}  # target -> list of (name, bytes)

    def add(target, name, data):
        seeds.setdefault(target, []).append((name, data))

    # Inner frames.
    syn = tcp(40000, 80, 1000, 0, 0x02, SYN_OPTIONS, b"", lambda n: pseudo4(IN_A, IN_B, 6, n))
    inner_ip = ipv4(IN_A, IN_B, 6, syn)
    inner_eth = eth(MAC_B, MAC_A, 0x0800, inner_ip)
    outer_udp = udp(49152, 4789, vxlan(42, inner_eth))
    outer_ip = ipv4(V4_A, V4_B, 17, outer_udp)
    frame_vxlan4 = eth(MAC_B, MAC_A, 0x0800, outer_ip)
    add("frame", "vxlan4-tcp-syn", frame_vxlan4)
    add("tcp", "syn-options", syn)
    add("ipv4", "tcp-syn", inner_ip)
    add("udp", "vxlan", outer_udp)
    add("vxlan", "vni42", vxlan(42, inner_eth))

    echo6 = icmp6(128, 0, struct.pack("!HH", 0x7768, 1) + b"wharf", V6_A, V6_B)
    inner6 = eth(MAC_B, MAC_A, 0x86DD, ipv6(V6_A, V6_B, 58, echo6))
    outer_udp6 = udp(50000, 8472, vxlan(43, inner6), lambda n: pseudo6(V6_A, V6_B, 17, n))
    frame_vxlan6 = eth(MAC_B, MAC_A, 0x86DD, ipv6(V6_A, V6_B, 17, outer_udp6), tags=[(0x88A8, 10), (0x8100, 20)])
    add("frame", "qinq-vxlan6-icmpv6-echo", frame_vxlan6)
    add("icmpv6", "echo", echo6)
    add("ethernet", "qinq", frame_vxlan6)

    echo4 = icmp4(8, 0, struct.pack("!HH", 0x7768, 1), b"wharf wire probe")
    frame_vlan = eth(MAC_B, MAC_A, 0x0800, ipv4(V4_A, V4_B, 1, echo4), tags=[(0x8100, 100)])
    add("frame", "dot1q-icmp-echo", frame_vlan)
    add("ethernet", "dot1q", frame_vlan)
    add("icmpv4", "echo", echo4)

    arp_req = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, V4_A, b"\0" * 6, V4_B)
    frame_arp = eth(b"\xff" * 6, MAC_A, 0x0806, arp_req)
    add("frame", "arp-request", frame_arp)
    add("arp", "request", arp_req)
    add("ethernet", "arp", frame_arp)

    # ICMP fragmentation needed, quoting an IPv4/UDP header and 8 bytes.
    quoted = ipv4(V4_A, V4_B, 17, udp(5000, 53, b"12345678"), total=1500)[:28]
    frag_needed = icmp4(3, 4, struct.pack("!HH", 0, 1400), quoted)
    frame_fn = eth(MAC_A, MAC_B, 0x0800, ipv4(V4_B, V4_A, 1, frag_needed))
    add("frame", "frag-needed", frame_fn)
    add("icmpv4", "frag-needed", frag_needed)

    # IPv4 with options (Router Alert, NOP, EOL padding) carrying TCP with SACK.
    ack = tcp(80, 40000, 5000, 1001, 0x10, ACK_OPTIONS, b"data", lambda n: pseudo4(V4_A, V4_B, 6, n))
    opts = bytes.fromhex("94040000") + bytes.fromhex("01010100")
    ip_opts = ipv4(V4_A, V4_B, 6, ack, options=opts)
    add("ipv4", "options-tcp-sack", ip_opts)
    add("tcp", "ack-sack-ts", ack)
    add("frame", "ipv4-options", eth(MAC_B, MAC_A, 0x0800, ip_opts))

    # IPv4 fragments: the first (MF) and a later one (offset 1480).
    first = ipv4(V4_A, V4_B, 17, udp(5000, 53, b"x" * 32), flags_frag=0x2000)
    later = ipv4(V4_A, V4_B, 17, b"y" * 16, flags_frag=1480 // 8)
    add("ipv4", "first-fragment", first)
    add("ipv4", "later-fragment", later)
    add("frame", "ipv4-later-fragment", eth(MAC_B, MAC_A, 0x0800, later))

    # IPv6 with hop-by-hop (Router Alert), destination options, fragment, UDP.
    up = udp(5000, 53, b"hello", lambda n: pseudo6(V6_A, V6_B, 17, n))
    frag_hdr = struct.pack("!BBHI", 17, 0, 0, 0xCAFE)  # offset 0, M=0: an atomic fragment
    dst_opts = struct.pack("!BB", 44, 0) + bytes.fromhex("010400000000")
    hbh = struct.pack("!BB", 60, 0) + bytes.fromhex("050200000100")
    v6_ext = ipv6(V6_A, V6_B, 0, hbh + dst_opts + frag_hdr + up)
    add("ipv6", "hbh-dst-frag-udp", v6_ext)
    add("frame", "ipv6-extensions", eth(MAC_B, MAC_A, 0x86DD, v6_ext))
    add("udp", "dns-v6", up)

    # Neighbour solicitation with a source link-layer address option.
    snm = bytes.fromhex("ff0200000000000000000001ff000002")
    ns = icmp6(135, 0, b"\0" * 4 + V6_B + bytes([1, 1]) + MAC_A, V6_A, snm)
    frame_ns = eth(bytes.fromhex("3333ff000002"), MAC_A, 0x86DD, ipv6(V6_A, snm, 58, ns, hop_limit=255))
    add("icmpv6", "neighbor-solicit", ns)
    add("ipv6", "neighbor-solicit", ipv6(V6_A, snm, 58, ns, hop_limit=255))
    add("frame", "neighbor-solicit", frame_ns)
    na = icmp6(136, 0, struct.pack("!I", 0x60000000) + V6_B + bytes([2, 1]) + MAC_B, V6_B, V6_A)
    add("icmpv6", "neighbor-advert", na)

    # Packet too big quoting an IPv6/UDP header.
    quoted6 = ipv6(V6_A, V6_B, 17, udp(5000, 53, b"z" * 1400))[:48]
    ptb = icmp6(2, 0, struct.pack("!I", 1280) + quoted6, V6_B, V6_A)
    add("icmpv6", "packet-too-big", ptb)

    # The checksum target reads: a field offset byte, a 4-byte new value, data.
    add("checksum", "rewrite-address", bytes([12]) + IN_B + inner_ip[:20])
    add("checksum", "odd-length", bytes([3]) + b"\xff\xff\x00\x01" + b"\x01\x02\x03")

    # The VTEP targets: a selector byte (configuration), then a UDP payload
    # (decap) or an inner frame (encap → decap round trip).
    for selector in (0x00, 0x01, 0x40):
        add("vxlan_decap", f"vni42-{selector:02x}", bytes([selector]) + vxlan(42, inner_eth))
        add("vxlan_roundtrip", f"syn-{selector:02x}", bytes([selector]) + inner_eth)
    add("vxlan_decap", "arp", bytes([0]) + vxlan(42, frame_arp))
    add("vxlan_roundtrip", "arp", bytes([0]) + frame_arp)

    # virtio-net headers (little-endian): flags, gso type, hdr_len, gso_size,
    # csum_start, csum_offset; gso: the header, a control byte (bit 0: repair
    # lengths and checksums), an output-size byte, then the frame.
    tso4 = struct.pack("<BBHHHH", 1, 1, 66, 1448, 34, 16)
    plain = struct.pack("<BBHHHH", 0, 0, 0, 0, 0, 0)
    add("virtio_net", "tso4", tso4)
    add("virtio_net", "none", plain)
    big = tcp(40000, 80, 1000, 1, 0x18, b"", b"x" * 3000, lambda n: pseudo4(IN_A, IN_B, 6, n))
    add("gso", "tso4-3000", tso4 + bytes([1, 255]) + eth(MAC_B, MAC_A, 0x0800, ipv4(IN_A, IN_B, 6, big)))
    add("gso", "plain-syn", plain + bytes([1, 255]) + inner_eth)

    # gro: a limit byte, then frames each behind a 2-byte length: a run of
    # consecutive segments of one flow, then a pure ACK.
    run = b""
    for i in range(4):
        seg = tcp(40000, 80, 1000 + i * 100, 1, 0x10, b"", bytes([i]) * 100, lambda n: pseudo4(IN_A, IN_B, 6, n))
        frame = eth(MAC_B, MAC_A, 0x0800, ipv4(IN_A, IN_B, 6, seg))
        frame = frame[:18] + struct.pack("!H", 0x1234 + i) + frame[20:]  # consecutive idents
        ip = frame[14:34]
        ip = ip[:10] + b"\0\0" + ip[12:]
        frame = frame[:14] + ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + frame[34:]
        run += struct.pack("!H", len(frame)) + frame
    add("gro", "four-segments", bytes([255]) + run + struct.pack("!H", len(inner_eth)) + inner_eth)
    # The top bit of a length: a frame that arrived whole (take_superframe).
    whole = eth(MAC_B, MAC_A, 0x0800, ipv4(IN_A, IN_B, 6, big))
    add("gro", "whole-superframe", bytes([255]) + struct.pack("!H", 0x8000 | len(whole)) + whole)

    # wharf vtep --tunnel-gso's readers of /proc/net/route and /proc/net/arp:
    # the address to look up, then the table's text.
    add("proc_tables", "route", bytes([192, 0, 2, 9]) + b"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        b"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\nu0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    add("proc_tables", "arp", bytes([192, 0, 2, 2]) + b"IP address       HW type     Flags       HW address            Mask     Device\n"
        b"192.0.2.2        0x1         0x2         0a:1b:2c:3d:4e:5f     *        u0\n")

    # Netlink answers to `NTF_USE` (native byte order, as the kernel sends
    # them): an ENOENT error and an acknowledgement, back to back.
    def nlmsgerr(error):
        return struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", error) + struct.pack("=IHHII", 36, 28, 1, 1, 0)
    add("netlink_answers", "enoent-and-ack", nlmsgerr(-2) + nlmsgerr(0))

    # wharf-proxy's command line: SPECs, a config file, NUL-separated argv.
    add("proxy_args", "spec-range", b"tcp:0.0.0.0:8000-8999:172.17.0.2:8000-8999")
    add("proxy_args", "spec-v6", b"udp:[::1]:5353:[fd00::2]:53")
    add("proxy_args", "config", b"# ports\ntcp:0.0.0.0:80:10.0.0.2:80\nudp:0.0.0.0:53:10.0.0.2:53 # dns\n")
    add("proxy_args", "argv-docker", b"-proto\0tcp\0-host-ip\0000.0.0.0\0-host-port\0008080\0-container-ip\000172.17.0.2\0-container-port\00080")
    add("proxy_args", "argv-extensions", b"-map=tcp:127.0.0.1:80:10.0.0.2:80\0-drain-timeout\0001m30s\0-proxy-protocol\0v2")
    add("proxy_args", "argv-congestion", b"-map=tcp:0.0.0.0:80:10.0.0.2:80\0-local-congestion\0cubic\0--local-congestion=system")

    # wharf run's values: -v SPEC (or --volumes-from, a size, --network)
    # first, then NUL-separated --memory-swap, --cpus, --cpu-shares, --pids-limit.
    add("container_args", "bind-ro", b"/srv/data:/data:ro")
    add("container_args", "named", b"vol1:/var/lib/db\x00-1\x000.5\x00512\x0010")
    add("container_args", "anonymous", b"/data/../etc\x00")
    add("container_args", "sizes", b"64m\x00128m\x001.5\x002\x00-1")
    add("container_args", "network", b"container:web")
    add("container_args", "huge-memory", b"4994499944944444444")  # overflowed the default swap once
    add("container_args", "rfc3339", b"2026-11-28T17:42:07.123456789Z")
    add("container_args", "rfc3339-last", b"9999-12-31T23:59:59.5Z")
    add("container_args", "rfc3339-huge", b"1970-01-01T00:00:10000000000000000000Z")  # overflowed once

    # The DNS resolver: a selector byte (bit 0: TCP; bits 1-2: the source,
    # 0 a container on front, 1 one on front and back, 2 unknown, 3 IPv6),
    # then the message.
    def dns_name(text):
        return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".") if label) + b"\0"

    def dns_query(qid, name, qtype=1, flags=0x0100, extra=b"", arcount=0):
        return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount) + dns_name(name) + struct.pack("!HH", qtype, 1) + extra

    opt_cookie = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 12) + struct.pack("!HH", 10, 8) + bytes.fromhex("6b1d9f0244e371a5")
    add("dns_message", "dig-web", bytes([0]) + dns_query(0x9A3C, "web", flags=0x0120, extra=opt_cookie, arcount=1))
    add("dns_message", "api-two-networks-tcp", bytes([3]) + dns_query(1, "api"))
    add("dns_message", "aaaa-alias", bytes([0]) + dns_query(2, "WWW.", qtype=28))
    add("dns_message", "forwarded", bytes([4]) + dns_query(3, "www.example.com"))
    add("dns_message", "notify", bytes([0]) + dns_query(4, "example.com", qtype=6, flags=0x2000))
    compressed = (struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 2, 0, 0) + dns_name("www.example.com") + struct.pack("!HH", 1, 1)
                  + b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 300, 6) + b"\x03cdn\xc0\x10"
                  + b"\xc0\x2d" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 10]))
    add("dns_message", "response-compressed", bytes([0]) + compressed)
    add("dns_message", "looping-pointer", bytes([0]) + struct.pack("!HHHHHH", 5, 0x0100, 1, 0, 0, 0) + b"\x03abc\xc0\x0c" + struct.pack("!HH", 1, 1))

    # The NAT: a configuration byte, then steps of (control, length, bytes).
    # Control bits 0-1: 0 raw, 1 repaired, 2 answer the last forwarded
    # packet (bytes: TCP flags), 3 ICMP error about it (bytes: type, code,
    # quote length / 4); bit 2: from outside; bit 3: zone 1; bits 4-7: seconds.
    NAT_IN, NAT_IN2, NAT_OUT = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3]), bytes([203, 0, 113, 10])
    NAT_PEER, NAT_CLIENT = bytes([198, 51, 100, 1]), bytes([192, 0, 2, 7])
    NAT_IN6 = bytes.fromhex("fd000000000000000000000000000002")
    NAT_PEER6 = bytes.fromhex("20010db8000100000000000000000001")

    def step(control, data):
        return bytes([control, len(data)]) + data

    def nat_tcp(src, dst, sport, dport, flags, pseudo):
        return tcp(sport, dport, 1000, 2000, flags, b"", b"", pseudo)

    syn4 = ipv4(NAT_IN, NAT_PEER, 6, nat_tcp(NAT_IN, NAT_PEER, 40000, 80, 0x02, lambda n: pseudo4(NAT_IN, NAT_PEER, 6, n)))
    add("nat", "tcp-handshake-close", bytes([0x01]) + step(0, syn4) + step(2, b"\x12") + step(0x12, b"\x10")
        + step(0x12, b"\x11") + step(2, b"\x11") + step(2, b"\x10") + step(0xf2, b"\x04"))
    dns4 = ipv4(NAT_IN, NAT_PEER, 17, udp(5000, 53, b"query", lambda n: pseudo4(NAT_IN, NAT_PEER, 17, n)))
    dns4b = ipv4(NAT_IN2, NAT_PEER, 17, udp(5000, 53, b"query", lambda n: pseudo4(NAT_IN2, NAT_PEER, 17, n)))
    add("nat", "udp-collision-error", bytes([0x04]) + step(0, dns4) + step(2, b"") + step(0, dns4b) + step(3, bytes([3, 3, 255])))
    ping6 = ipv6(NAT_IN6, NAT_PEER6, 58, icmp6(128, 0, struct.pack("!HH", 0x77, 1) + b"ping", NAT_IN6, NAT_PEER6))
    add("nat", "ping6-time-exceeded", bytes([0x00]) + step(0, ping6) + step(3, bytes([3, 0, 12])) + step(2, b""))
    dnat = ipv4(NAT_CLIENT, NAT_OUT, 6, nat_tcp(NAT_CLIENT, NAT_OUT, 51000, 8080, 0x02, lambda n: pseudo4(NAT_CLIENT, NAT_OUT, 6, n)))
    add("nat", "published-port", bytes([0x00]) + step(0x04, dnat) + step(2, b"\x12") + step(3, bytes([3, 4, 7])))
    hairpin = ipv4(NAT_IN, NAT_OUT, 17, udp(5000, 5353, b"q", lambda n: pseudo4(NAT_IN, NAT_OUT, 17, n)))
    add("nat", "hairpin", bytes([0x02]) + step(0, dns4) + step(0, hairpin) + step(2, b""))
    add("nat", "fragments", bytes([0x00]) + step(0, first) + step(0, later))

    # The differential target sees whole frames, like `frame`.
    seeds["differential"] = list(seeds["frame"])

    for target, items in sorted(seeds.items()):
        directory = os.path.join(CORPUS, target)
        os.makedirs(directory, exist_ok=True)
        for name, data in items:
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
