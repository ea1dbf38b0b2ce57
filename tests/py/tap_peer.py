#!/usr/bin/env python3
"""A host at the far end of a tap device, as a VM's or a VPN's program is:
it holds the tap's file (/dev/net/tun, IFF_TAP | IFF_NO_PI) and plays the
address PEER behind it, answering ARP requests for PEER (frames it
writes) and printing "udp PAYLOAD" for each UDP datagram to PEER it reads.
Usage: tap_peer.py DEV PEER [persist]. Prints READY once attached."""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF, TUNSETPERSIST = 0x400454CA, 0x400454CB
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
MAC = bytes.fromhex("02aabbccdd01")


def arp_reply(frame, peer):
    # an ARP request (ethernet type 0x0806, op 1) for peer: its answer
    if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[20:22] != b"\x00\x01" or frame[38:42] != peer:
        return None
    sha, spa = frame[22:28], frame[28:32]
    return sha + MAC + b"\x08\x06" + frame[14:20] + b"\x00\x02" + MAC + peer + sha + spa


def udp_payload(frame, peer):
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17 or frame[30:34] != peer:
        return None
    ihl = (frame[14] & 0xF) * 4
    return frame[14 + ihl + 8:]


def main():
    dev, peer = sys.argv[1], socket.inet_aton(sys.argv[2])
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TAP | IFF_NO_PI))
    if len(sys.argv) > 3:
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    print("READY", flush=True)
    while True:
        try:
            frame = os.read(fd, 65536)
        except InterruptedError:
            continue
        reply = arp_reply(frame, peer)
        if reply:
            os.write(fd, reply)
            continue
        data = udp_payload(frame, peer)
        if data is not None:
            print("udp", data.decode(errors="replace"), flush=True)


main()
