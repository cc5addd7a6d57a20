#!/usr/bin/perl
# Writes seed corpora for the fuzz targets, one directory per target under CORPUS.
#
#   seeds.pl CORPUS < payloads.tsv    UDP payloads listed by tshark (see scripts/fuzz.sh)
#   seeds.pl --builtin CORPUS         a few messages and captures built here, field by field
#
# The TSV columns are: capture interface id, arrival time (epoch seconds), IPv4 source, IPv6
# source, UDP source port, UDP payload (hex). Interface ids tell the captures apart, so every
# capture gives the decoder and framing targets its own message sequence.
#
# Plain Perl, independent of botnest: seeds must not depend on the code they are meant to test.

use strict;
use warnings;
use Digest::SHA qw(sha1_hex);

my $builtin = @ARGV && $ARGV[0] eq '--builtin' ? shift @ARGV : undef;
my $corpus = shift @ARGV or die "usage: seeds.pl [--builtin] CORPUS\n";
my @targets = qw(ipfix_message netflow9_packet netflow5_packet decoder capture framing);
for my $t (@targets) {
    mkdir "$corpus/$t" unless -d "$corpus/$t";
}

# Seeds of the chunked targets stay small enough for libFuzzer to mutate quickly.
my $MAX_SEQUENCE = 32 * 1024;
my $MAX_SEQUENCES_PER_CAPTURE = 4;

# Names a seed by its content, so repeated datagrams are kept once.
sub seed {
    my ($target, $bytes) = @_;
    return unless length $bytes;
    my $path = "$corpus/$target/" . sha1_hex($bytes);
    open my $fh, '>:raw', $path or die "$path: $!\n";
    print $fh $bytes;
    close $fh;
}

# The decoder target's chunk control byte: bits 0-1 pick one of four exporters, bits 3-5 how far
# the arrival clock moves (see fuzz_targets/decoder.rs).
sub time_step {
    my ($delta) = @_;
    return 0 if $delta <= 0;
    return 1 if $delta < 0.5;
    return 2 if $delta < 3;
    return 3 if $delta < 20;
    return 4 if $delta < 45;
    return 5 if $delta < 3600;
    return 6;
}

# One chunk of the decoder target's layout: control byte, big-endian length, bytes.
sub chunk {
    my ($control, $bytes) = @_;
    return pack('C n', $control, length $bytes) . $bytes;
}

# Seeds from one capture's datagrams, each [time, exporter, payload], in capture order.
sub seed_sequence {
    my @datagrams = @_;
    my (%exporters, @sequences);
    my ($sequence, $ipfix_stream, $last) = ('', '', undef);
    for my $d (@datagrams) {
        my ($time, $exporter, $payload) = @$d;
        my $version = length $payload >= 2 ? unpack('n', $payload) : 0;
        seed('ipfix_message', $payload) if $version == 10;
        seed('netflow9_packet', $payload) if $version == 9;
        seed('netflow5_packet', $payload) if $version == 5;
        $exporters{$exporter} //= scalar(keys %exporters) % 4;
        my $step = defined $last ? time_step($time - $last) : 0;
        $last = $time;
        $sequence .= chunk($exporters{$exporter} | ($step << 3), $payload);
        $ipfix_stream .= $payload if $version == 10 && length $ipfix_stream < $MAX_SEQUENCE;
        if (length $sequence >= $MAX_SEQUENCE) {
            push @sequences, $sequence;
            $sequence = '';
        }
    }
    push @sequences, $sequence;
    seed('decoder', $_) for grep { length } @sequences[0 .. min($#sequences, $MAX_SEQUENCES_PER_CAPTURE - 1)];
    # A capture's IPFIX messages back to back are a stream: templates first, then their data.
    if (length $ipfix_stream) {
        seed('ipfix_message', $ipfix_stream);
        seed('framing', "\x2a" . $ipfix_stream);
    }
}

sub min { $_[0] < $_[1] ? $_[0] : $_[1] }

sub from_tsv {
    my (%by_capture, @order);
    while (my $line = <STDIN>) {
        chomp $line;
        my ($iface, $time, $v4, $v6, $port, $hex) = split /\t/, $line, -1;
        next unless defined $hex && length $hex;
        # A frame with nested UDP lists every layer's field; the last one is the payload.
        ($hex) = reverse split /,/, $hex;
        my $src = (split /,/, ($v4 || $v6 || '?'))[-1] . ':' . ($port // '');
        push @order, $iface unless $by_capture{$iface};
        push @{ $by_capture{$iface} }, [$time, $src, pack('H*', $hex)];
    }
    seed_sequence(@{ $by_capture{$_} }) for @order;
    printf "seeded %d captures\n", scalar @order;
}

# ---- Built-in messages, used when no real captures are at hand. ----

# An IPFIX set (RFC 7011 section 3.3.2): id, length including this 4-byte header, body.
sub ipfix_set { my ($id, $body) = @_; pack('n n', $id, 4 + length $body) . $body }

sub ipfix_message {
    my ($sequence, @sets) = @_;
    my $body = join '', @sets;
    return pack('n', 10)                 # version 10 (RFC 7011 section 3.1)
      . pack('n', 16 + length $body)     # message length, header included
      . pack('N', 1_700_000_000)         # export time, seconds
      . pack('N', $sequence)             # sequence number: data records sent before
      . pack('N', 1)                     # observation domain 1
      . $body;
}

sub ipfix_messages {
    my $template = ipfix_set(2,
        pack('n n', 256, 7)              # template 256, 7 fields
      . pack('n n', 8, 4)                # sourceIPv4Address
      . pack('n n', 12, 4)               # destinationIPv4Address
      . pack('n n', 4, 1)                # protocolIdentifier
      . pack('n n', 2, 8)                # packetDeltaCount
      . pack('n n', 1, 8)                # octetDeltaCount
      . pack('n n', 152, 8)              # flowStartMilliseconds
      . pack('n n', 82, 0xffff));        # interfaceName, variable length
    my $options = ipfix_set(3,
        pack('n n n', 257, 2, 1)         # options template 257, 2 fields, 1 scope field
      . pack('n n', 149, 4)              # scope: observationDomainId
      . pack('n n', 34, 4));             # samplingInterval
    my $record = pack('C4', 192, 0, 2, 10) # source 192.0.2.10
      . pack('C4', 198, 51, 100, 7)      # destination 198.51.100.7
      . pack('C', 6)                     # TCP
      . pack('Q>', 12)                   # 12 packets
      . pack('Q>', 3400)                 # 3400 octets
      . pack('Q>', 1_700_000_000_000)    # started at the export time, in ms
      . pack('C a4', 4, 'eth0');         # interface name: 1-byte length, then UTF-8
    my $data = ipfix_set(256, $record . $record);
    my $sampling = ipfix_set(257,
        pack('N', 1)                     # observation domain 1
      . pack('N', 100));                 # 1 packet in 100 sampled
    my $withdraw = ipfix_set(2, pack('n n', 256, 0)); # withdraw template 256 (section 8.1)
    return (
        ipfix_message(0, $template, $options),
        ipfix_message(0, $sampling, $data),
        ipfix_message(3, $data, $withdraw),
    );
}

# A NetFlow v9 FlowSet (RFC 3954 section 5): id, length including the header, body.
sub v9_flowset { my ($id, $body) = @_; pack('n n', $id, 4 + length $body) . $body }

sub netflow9_packet {
    my $template = v9_flowset(0,
        pack('n n', 256, 6)              # template 256, 6 fields
      . pack('n n', 8, 4)                # IPV4_SRC_ADDR
      . pack('n n', 12, 4)               # IPV4_DST_ADDR
      . pack('n n', 4, 1)                # PROTOCOL
      . pack('n n', 2, 4)                # IN_PKTS
      . pack('n n', 22, 4)               # FIRST_SWITCHED, sysUpTime ms
      . pack('n n', 21, 4));             # LAST_SWITCHED, sysUpTime ms
    my $options = v9_flowset(1,
        pack('n n n', 257, 4, 8)         # options template 257, scope 4 bytes, options 8 bytes
      . pack('n n', 1, 4)                # scope: system, 4 bytes
      . pack('n n', 34, 4)               # SAMPLING_INTERVAL
      . pack('n n', 35, 1)               # SAMPLING_ALGORITHM
      . pack('x2'));                     # padding to a 4-byte boundary
    my $data = v9_flowset(256,
        pack('C4 C4', 192, 0, 2, 10, 198, 51, 100, 7) # source, destination
      . pack('C N', 17, 5)               # UDP, 5 packets
      . pack('N N', 59_000, 60_000)      # first and last switched
      . pack('x3'));                     # padding
    my $sampling = v9_flowset(257,
        pack('N', 0)                     # scope: the system
      . pack('N C', 100, 2)              # 1 in 100, random sampling
      . pack('x3'));                     # padding
    my $body = $template . $options . $data . $sampling;
    return pack('n', 9)                  # version 9
      . pack('n', 4)                     # records in the packet: 2 templates, 2 data
      . pack('N', 60_000)                # sysUpTime, ms
      . pack('N', 1_700_000_000)         # UNIX seconds
      . pack('N', 0)                     # package sequence
      . pack('N', 7)                     # source id
      . $body;
}

sub netflow5_packet {
    return pack('n n', 5, 1)             # version 5, 1 record
      . pack('N', 60_000)                # sysUpTime, ms
      . pack('N N', 1_700_000_000, 0)    # UNIX seconds and nanoseconds
      . pack('N', 0)                     # flow sequence
      . pack('C C', 0, 1)                # engine type and id
      . pack('n', 0x4064)                # sampling: mode 1, 1 in 100
      . pack('C4 C4 C4', 192, 0, 2, 10, 198, 51, 100, 7, 0, 0, 0, 0) # source, dest, next hop
      . pack('n n', 1, 2)                # input and output interface
      . pack('N N', 5, 700)              # packets, octets
      . pack('N N', 59_000, 60_000)      # first and last, sysUpTime ms
      . pack('n n', 443, 50_000)         # ports
      . pack('x C C C', 0x18, 6, 0)      # pad, TCP flags, protocol TCP, ToS
      . pack('n n', 64_496, 64_497)      # source and destination AS
      . pack('C C x2', 24, 24);          # prefix lengths, pad
}

# RFC 1071 checksum of an IPv4 header.
sub ip_checksum {
    my $sum = 0;
    $sum += $_ for unpack('n*', $_[0]);
    $sum = ($sum & 0xffff) + ($sum >> 16) while $sum >> 16;
    return ~$sum & 0xffff;
}

# An Ethernet frame carrying an IPv4 packet from 192.0.2.1 to 192.0.2.2.
sub ethernet_ipv4 {
    my ($protocol, $payload, $id, $fragment) = @_;
    my $header = pack('C C n', 0x45, 0, 20 + length $payload) # IPv4, 20-byte header, total length
      . pack('n n', $id, $fragment)      # identification, flags and fragment offset
      . pack('C C n', 64, $protocol, 0)  # TTL, protocol, checksum (filled below)
      . pack('C4 C4', 192, 0, 2, 1, 192, 0, 2, 2);
    substr($header, 10, 2) = pack('n', ip_checksum($header));
    return pack('H12 H12 n', '020000000002', '020000000001', 0x0800) . $header . $payload;
}

sub udp {
    my ($port, $payload) = @_;
    return pack('n n n n', 50_000, $port, 8 + length $payload, 0) . $payload; # no checksum
}

sub tcp {
    my ($sequence, $payload) = @_;
    return pack('n n N N', 50_001, 4739, $sequence, 0) # ports, sequence, no ack
      . pack('C C n', 0x50, 0x18, 65_535)              # 20-byte header, PSH+ACK, window
      . pack('n n', 0, 0)                              # checksum, urgent pointer
      . $payload;
}

# A classic pcap file (microsecond, little-endian) of Ethernet frames, one per second.
sub pcap {
    my $file = pack('V v v V V V V', 0xa1b2c3d4, 2, 4, 0, 0, 65_535, 1);
    my $second = 1_700_000_000;
    for my $frame (@_) {
        $file .= pack('V V V V', $second++, 0, length $frame, length $frame) . $frame;
    }
    return $file;
}

# A pcapng block (section header, interface description, enhanced packet...), padded to 4.
sub pcapng_block {
    my ($type, $body) = @_;
    $body .= "\0" x (-length($body) % 4);
    my $length = 12 + length $body;
    return pack('V V', $type, $length) . $body . pack('V', $length);
}

sub pcapng {
    my $file = pcapng_block(0x0a0d0d0a, pack('V v v q<', 0x1a2b3c4d, 1, 0, -1)) # SHB
      . pcapng_block(1, pack('v v V', 1, 0, 65_535));                          # IDB, Ethernet
    my $micros = 1_700_000_000 * 1_000_000;
    for my $frame (@_) {
        $file .= pcapng_block(6, pack('V V V V V', 0, $micros >> 32, $micros & 0xffffffff,
            length $frame, length $frame) . $frame);
        $micros += 1_000_000;
    }
    return $file;
}

sub from_builtin {
    my @ipfix = ipfix_messages();
    my ($v9, $v5) = (netflow9_packet(), netflow5_packet());
    my @datagrams = map { [$_, '192.0.2.1:50000', $ipfix[$_]] } 0 .. $#ipfix;
    push @datagrams, [3, '192.0.2.3:50000', $v9], [4, '192.0.2.5:50000', $v5];
    seed_sequence(@datagrams);

    my @udp = map { ethernet_ipv4(17, udp(4739, $_), 1, 0x4000) } @ipfix, $v9, $v5;
    seed('capture', pcap(@udp));
    seed('capture', pcapng(@udp));
    # One datagram in two IPv4 fragments: the first carries 8-byte-aligned bytes (RFC 791).
    my $whole = udp(4739, $ipfix[1]);
    seed('capture', pcap(ethernet_ipv4(17, substr($whole, 0, 32), 9, 0x2000),
        ethernet_ipv4(17, substr($whole, 32), 9, 32 / 8)));
    # IPFIX over TCP (RFC 7011 section 10.4), the second message split across segments.
    my $stream = join '', @ipfix;
    my $cut = length($ipfix[0]) + 10;
    seed('capture', pcap(ethernet_ipv4(6, tcp(1000, substr($stream, 0, $cut)), 2, 0x4000),
        ethernet_ipv4(6, tcp(1000 + $cut, substr($stream, $cut)), 3, 0x4000)));
    print "seeded built-in messages\n";
}

$builtin ? from_builtin() : from_tsv();
