#!/usr/bin/env bash
# The cloud testbed: two Open vSwitch hypervisors, tenant VMs, an Internet with servers, and
# real programs playing benign workloads and botnets. Everything lives in network namespaces
# whose names start with "bnt-"; nothing outside them is touched.
#
# Usage: scripts/testbed.sh COMMAND [ARGS]   (as root)
#
#   up                   build the topology and start the servers (Internet side and tenants)
#   export [OPTIONS]     (re)configure IPFIX export on both bridges; options:
#                          --collector ADDR:PORT  default 172.31.0.1:4739 (bnt-mgmt)
#                          --bridge-sampling N    sample 1 in N packets bridge-wide (default 0: off)
#                          --flow-sampling N      sample 1 in N packets (default 1) with sample()
#                                                 actions into a Flow_Sample_Collector_Set (0: off)
#                          --active-timeout S     flow cache active timeout (default 10)
#   export off           stop exporting
#   start SCENARIO...    start the programs of scenarios (list: scenarios)
#   stop SCENARIO...     stop them
#   scenarios            list the scenarios
#   status               what runs: namespaces, switches, ports, programs
#   record FILE [SECS]   record the IPFIX export of the scenarios to FILE (pcap) for SECS seconds
#                        (default 150): what `botnest demo` replays without the live testbed
#   exec NS CMD...       run a command in one of the testbed's namespaces (prefix optional)
#   down                 stop everything and remove what any run left behind
#
# Environment: BOTNEST_TESTBED_DIR (run directory, default /run/botnest-testbed),
# BOTNEST_TESTBED_SPEED (divides every period of the traffic programs, default 1).
#
# Topology (see README "The cloud testbed"):
#   bnt-hv1, bnt-hv2   hypervisors: ovsdb-server + ovs-vswitchd (userspace datapath) with their
#                      own run directory; bridge br-int for VMs, br-phy for the underlay; one
#                      VXLAN port per tenant (VNI = tenant number) between them
#   bnt-mgmt           management network: the IPFIX collector at 172.31.0.1
#   bnt-gw<T>          the NAT gateway of tenant T (on hv1), towards bnt-inet
#   bnt-inet           the Internet: C2 servers, web, DNS, SMTP, peers, flood victim
#   bnt-vm<T>-<N>      VM N of tenant T, address <tenant range>.N, its vif tagged with VLAN T

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AGENT="$HERE/testbed/agent.py"
DIR=${BOTNEST_TESTBED_DIR:-/run/botnest-testbed}
P=bnt
PYTHON=${PYTHON:-python3}
export PATH="$PATH:/usr/sbin:/sbin"

# Tenants: number (VLAN id and VNI), name, network prefix (a /24).
TENANTS=(
    "101 acme 10.0.0"
    "102 globex 10.0.0"
    "103 initech 172.16.3"
)

# VMs: tenant, host number, hypervisor, what the VM runs at start ("-": nothing). The bots of
# the scenarios are started later on the VMs named in SCENARIOS.
VMS=(
    "101 10 1 web-server,db-server"
    "101 11 2 web-client,db-client,dns,ntp,health"
    "101 12 1 backup,metrics,updates"
    "101 21 1 -"
    "101 22 2 -"
    "101 23 2 -"
    "101 24 1 -"
    "101 25 2 -"
    "101 26 1 -"
    "101 31 2 web-client,cron-upload"
    "101 32 1 ntp,dns,metrics"
    "101 33 2 health,updates"
    "102 10 2 web-server,db-server"
    "102 21 1 web-client,dns,ntp"
    "102 22 2 db-client,backup,metrics"
    "102 23 1 health,cron-upload,updates"
    "102 31 2 -"
    "102 32 1 -"
    "102 33 2 -"
    "102 34 1 -"
    "102 35 2 -"
    "102 41 1 iot-telnetd"
    "102 42 2 iot-telnetd"
    "102 43 1 iot-telnetd"
    "103 10 1 web-server,db-server"
    "103 11 2 web-client,db-client,dns,ntp,health"
    "103 12 1 backup,metrics,updates,cron-upload"
    "103 13 2 web-client,health,metrics"
)

# Scenarios: name, then VM:program pairs started by `start NAME`.
SCENARIOS=(
    "irc-botnet 101-21:irc-bot 101-22:irc-bot 101-23:irc-bot"
    "http-botnet 102-31:http-bot 102-32:http-bot 101-24:http-bot"
    "p2p-botnet 101-25:p2p-node 101-26:p2p-node 102-34:p2p-node 102-35:p2p-node"
    "worm 102-33:worm"
    "flood inet:irc-operator"
    "spam inet:order-spam"
    "bruteforce 101-24:ssh-brute 102-31:telnet-brute"
)

# Internet servers: address, program (arguments follow after a colon).
INET_ADDRS=(
    198.51.100.10  # IRC C2 (ngircd)
    203.0.113.50   # HTTP C2
    198.51.100.22  # SSH server (brute-force target)
    198.51.100.23  # telnet server (brute-force target)
    192.0.2.80     # web and API
    192.0.2.53     # DNS (dnsmasq)
    192.0.2.123    # time
    192.0.2.200    # package mirror
    192.0.2.201    # metrics push gateway
    192.0.2.202    # backup and upload store
    203.0.113.99   # flood victim
)
SMTP_SERVERS=$(for i in $(seq 25 40); do printf '203.0.113.%s ' "$i"; done)
P2P_PEERS=$(for i in $(seq 100 111); do printf '198.51.100.%s ' "$i"; done)

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

need_root() { [[ $EUID -eq 0 ]] || die "run as root (network namespaces and Open vSwitch)"; }

# The end-to-end test and the live demo hold /run/lock/botnest-testbed (its pid file names the
# holder) while they use the testbed; up and down refuse to touch it under a live holder unless
# it is this script's own caller.
LOCK=/run/lock/botnest-testbed
check_lock() {
    local holder p
    holder=$(cat "$LOCK/pid" 2>/dev/null) || return 0
    [[ -n $holder && -d /proc/$holder ]] || return 0
    p=$$
    while [[ -n $p && $p -gt 1 ]]; do
        [[ $p == "$holder" ]] && return 0
        p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
    done
    die "process $holder is using the testbed (it holds $LOCK); not touching it"
}

need_tools() {
    local missing=() t
    for t in ip ethtool ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl nft \
        "$PYTHON" ngircd dnsmasq; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ ${BOTNEST_TESTBED_INSTALL:-1} == 1 ]] && command -v apt-get >/dev/null; then
        log "installing missing tools: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            openvswitch-switch iproute2 ethtool nftables ngircd dnsmasq-base python3 \
            hping3 openssh-server hydra curl socat >&2 || die "apt-get install failed"
    else
        die "missing: ${missing[*]}"
    fi
}

nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

tenant_prefix() {
    local t entry
    for entry in "${TENANTS[@]}"; do
        read -r t _ prefix <<<"$entry"
        [[ $t == "$1" ]] && { echo "$prefix"; return; }
    done
    die "no tenant $1"
}

add_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# Open vSwitch commands against hypervisor N's private run directory.
ovs_env() { env OVS_RUNDIR="$DIR/hv$1" OVS_LOGDIR="$DIR/hv$1" OVS_DBDIR="$DIR/hv$1" \
    OVS_SYSCONFDIR="$DIR/hv$1" ip netns exec "$P-hv$1" "${@:2}"; }
vsctl() { ovs_env "$1" ovs-vsctl --db="unix:$DIR/hv$1/db.sock" --timeout=20 "${@:2}"; }
ofctl() { ovs_env "$1" ovs-ofctl "$2" "unix:$DIR/hv$1/$3.mgmt" "${@:4}"; }
appctl() { ovs_env "$1" ovs-appctl --target="$DIR/hv$1/ovs-vswitchd.ctl" "${@:2}"; }

no_offload() { nsx "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true; }

start_switch() {
    local n=$1 d="$DIR/hv$1"
    mkdir -p "$d"
    add_ns "$P-hv$n"
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovs_env "$n" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" \
        --unixctl="$d/ovsdb-server.ctl" --detach --no-chdir -vconsole:off 2>/dev/null
    vsctl "$n" --no-wait init
    ovs_env "$n" ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" \
        --log-file="$d/ovs-vswitchd.log" --unixctl="$d/ovs-vswitchd.ctl" --detach --no-chdir -vconsole:off 2>/dev/null
    vsctl "$n" add-br br-int -- set bridge br-int datapath_type=netdev \
        other_config:hwaddr="02:00:00:00:0$n:01" \
        -- add-br br-phy -- set bridge br-phy datapath_type=netdev \
        other_config:hwaddr="02:00:00:00:0$n:02"
    ofctl "$n" add-flow br-int "table=1,priority=0,actions=NORMAL"
}

# The underlay: a veth between the hypervisors' br-phy bridges, whose internal ports carry the
# tunnel endpoints 172.31.255.1 and .2.
underlay() {
    ip -n "$P-hv1" link add phy type veth peer name phy netns "$P-hv2"
    local n
    for n in 1 2; do
        ip -n "$P-hv$n" link set phy mtu 1600 up
        no_offload "$P-hv$n" phy
        vsctl "$n" add-port br-phy phy
        vsctl "$n" set interface br-phy mtu_request=1600
        ip -n "$P-hv$n" addr add "172.31.255.$n/24" dev br-phy
        ip -n "$P-hv$n" link set br-phy up
    done
    local t entry remote
    for entry in "${TENANTS[@]}"; do
        read -r t _ _ <<<"$entry"
        for n in 1 2; do
            remote=$((3 - n))
            # Frames from the tunnel belong to the tenant of its key; they were sampled on
            # the hypervisor where they entered, so table 0 sends them straight to NORMAL.
            vsctl "$n" add-port br-int "vx$t" tag="$t" vlan_mode=native-untagged trunks="$t" \
                -- set interface "vx$t" type=vxlan options:remote_ip="172.31.255.$remote" \
                options:key="$t"
            ofctl "$n" add-flow br-int \
                "table=0,priority=10,in_port=vx$t,vlan_tci=0x0000/0x1fff,actions=mod_vlan_vid:$t,NORMAL"
        done
    done
    # The userspace datapath routes tunnel packets by its own table, learnt from the kernel's.
    for n in 1 2; do
        appctl "$n" ovs/route/add "172.31.255.$((3 - n))/32" br-phy >/dev/null 2>&1 || true
    done
}

# Management network: both hypervisors reach the collector namespace over veths.
management() {
    add_ns "$P-mgmt"
    ip -n "$P-mgmt" addr add 172.31.0.1/32 dev lo
    local n
    for n in 1 2; do
        ip -n "$P-mgmt" link add "hv$n" type veth peer name mgmt netns "$P-hv$n"
        ip -n "$P-mgmt" addr add "172.31.$n.1/24" dev "hv$n"
        ip -n "$P-mgmt" link set "hv$n" up
        ip -n "$P-hv$n" addr add "172.31.$n.2/24" dev mgmt
        ip -n "$P-hv$n" link set mgmt up
        ip -n "$P-hv$n" route add 172.31.0.1/32 via "172.31.$n.1"
    done
}

# A vif on hypervisor HV's br-int for namespace NS in tenant T. Table 0 tags what enters from
# it with VLAN T, so the sample actions of table 1 see the tenant (Open vSwitch samples a
# packet as it is at the sample action; per-bridge sampling sees it untagged, as it entered).
# native-untagged: the port is in VLAN T, and frames leave it untagged.
vif() {
    local hv=$1 port=$2 ns=$3 t=$4 addr=$5
    ip -n "$P-hv$hv" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$P-hv$hv" link set "$port" up
    no_offload "$P-hv$hv" "$port"
    vsctl "$hv" add-port br-int "$port" tag="$t" vlan_mode=native-untagged trunks="$t"
    tenant_port "$hv" "$port" "$t"
    ip -n "$ns" link set eth0 mtu 1400 up
    no_offload "$ns" eth0
    ip -n "$ns" addr add "$addr/24" dev eth0
}

# Untagged frames entering PORT get tenant T's tag, then go on to table 1.
tenant_port() {
    ofctl "$1" add-flow br-int \
        "table=0,priority=10,in_port=$2,vlan_tci=0x0000/0x1fff,actions=mod_vlan_vid:$3,resubmit(,1)"
}

internet() {
    add_ns "$P-inet"
    local a
    for a in "${INET_ADDRS[@]}" $SMTP_SERVERS $P2P_PEERS; do
        ip -n "$P-inet" addr add "$a/32" dev lo
    done
    nsx "$P-inet" sysctl -qw net.ipv4.ip_forward=1
}

gateway() {
    local t=$1 prefix=$2 ns="$P-gw$1"
    add_ns "$ns"
    vif 1 "gw$t" "$ns" "$t" "$prefix.1"
    # Towards the Internet: 198.18.T.1 (the tenant's public address) and 198.18.T.2.
    ip -n "$ns" link add wan type veth peer name "gw$t" netns "$P-inet"
    ip -n "$ns" addr add "198.18.$((t - 100)).1/30" dev wan
    ip -n "$ns" link set wan up
    ip -n "$P-inet" addr add "198.18.$((t - 100)).2/30" dev "gw$t"
    ip -n "$P-inet" link set "gw$t" up
    ip -n "$ns" route add default via "198.18.$((t - 100)).2"
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
    nsx "$ns" nft -f - <<EOF
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade
    }
}
EOF
}

vm() {
    local t=$1 n=$2 hv=$3 prefix ns="$P-vm$1-$2"
    prefix=$(tenant_prefix "$t")
    add_ns "$ns"
    vif "$hv" "vm$t-$n" "$ns" "$t" "$prefix.$n"
    ip -n "$ns" route add default via "$prefix.1"
}

# Starts PROGRAM of the agent in namespace NS, detached, its pid and log in the run directory.
spawn() {
    local ns=$1 name=$2
    shift 2
    mkdir -p "$DIR/procs"
    local base="$DIR/procs/$ns.$name"
    if [[ -f $base.pid ]] && kill -0 "$(cat "$base.pid")" 2>/dev/null; then
        return 0
    fi
    BOTNEST_TESTBED_DIR="$DIR" setsid ip netns exec "$ns" "$@" </dev/null >"$base.log" 2>&1 &
    echo $! >"$base.pid"
}

agent() {
    local ns=$1 program=$2
    shift 2
    spawn "$ns" "$program" "$PYTHON" "$AGENT" "$program" "$@"
}

inet_servers() {
    local d="$DIR/inet"
    mkdir -p "$d"
    # IRC: ngircd, the C2 of the IRC botnet.
    cat >"$d/ngircd.conf" <<EOF
[Global]
    Name = irc.c2.example
    Info = botnest testbed
    Listen = 198.51.100.10
    Ports = 6667
    ServerUID = root
    ServerGID = root
    MotdPhrase = welcome
[Limits]
    MaxConnectionsIP = 0
    PingTimeout = 120
    PongTimeout = 20
[Options]
    PAM = no
    DNS = no
    Ident = no
EOF
    spawn "$P-inet" ngircd ngircd --nodaemon --config "$d/ngircd.conf"
    # DNS: dnsmasq with the names the workloads resolve.
    cat >"$d/dnsmasq.conf" <<EOF
no-resolv
no-hosts
listen-address=192.0.2.53
bind-interfaces
address=/www.example.com/192.0.2.80
address=/api.example.com/192.0.2.80
address=/time.example.com/192.0.2.123
address=/deb.example.com/192.0.2.200
address=/metrics.example.com/192.0.2.201
address=/backup.example.com/192.0.2.202
address=/update.c2.example/203.0.113.50
address=/irc.c2.example/198.51.100.10
EOF
    spawn "$P-inet" dnsmasq dnsmasq --keep-in-foreground --conf-file="$d/dnsmasq.conf" \
        --pid-file="$d/dnsmasq.pid" --user=root --group=root
    # SSH: the brute-force target (no account accepts the guessed passwords).
    if command -v sshd >/dev/null 2>&1 || [[ -x /usr/sbin/sshd ]]; then
        [[ -f $d/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -f "$d/ssh_host_ed25519_key"
        mkdir -p /run/sshd
        spawn "$P-inet" sshd /usr/sbin/sshd -D -e -f /dev/null -h "$d/ssh_host_ed25519_key" \
            -o ListenAddress=198.51.100.22 -o PasswordAuthentication=yes \
            -o PidFile="$d/sshd.pid" -o MaxStartups=100:30:200 -o MaxAuthTries=3 \
            -o UsePAM=no
    fi
    agent "$P-inet" http-c2 203.0.113.50 80
    agent "$P-inet" web-site 192.0.2.80 80
    agent "$P-inet" web-site 192.0.2.200 80
    agent "$P-inet" web-site 192.0.2.201 9091
    agent "$P-inet" store 192.0.2.202 873
    agent "$P-inet" time-server 192.0.2.123 123
    agent "$P-inet" telnetd 198.51.100.23 23
    agent "$P-inet" smtp-servers $SMTP_SERVERS
    agent "$P-inet" p2p-peers $P2P_PEERS
}

vm_programs() {
    local entry t n hv programs prefix p
    for entry in "${VMS[@]}"; do
        read -r t n hv programs <<<"$entry"
        [[ $programs == - ]] && continue
        prefix=$(tenant_prefix "$t")
        for p in ${programs//,/ }; do
            agent "$P-vm$t-$n" "$p" "$prefix"
        done
    done
}

cmd_up() {
    need_root
    check_lock
    need_tools
    if ip netns list | grep -q "^$P-"; then
        die "a testbed is already up (scripts/testbed.sh down removes it)"
    fi
    mkdir -p "$DIR"
    log "hypervisors"
    start_switch 1
    start_switch 2
    underlay
    management
    log "internet and gateways"
    internet
    local entry t prefix n hv
    for entry in "${TENANTS[@]}"; do
        read -r t _ prefix <<<"$entry"
        gateway "$t" "$prefix"
    done
    log "VMs"
    for entry in "${VMS[@]}"; do
        read -r t n hv _ <<<"$entry"
        vm "$t" "$n" "$hv"
    done
    log "servers and workloads"
    inet_servers
    vm_programs
    check_paths
    log "up: ${#VMS[@]} VMs in ${#TENANTS[@]} tenants on 2 hypervisors (status: $0 status)"
}

# The paths every workload needs: VM to VM across the tunnel, VM to the Internet, TCP included.
check_paths() {
    local path ok
    for path in "101-11 10.0.0.10 80" "102-21 10.0.0.10 80" "103-13 192.0.2.80 80" \
        "101-22 198.51.100.10 6667"; do
        read -r vm addr port <<<"$path"
        ok=0
        for _ in $(seq 1 50); do
            if nsx "$P-vm$vm" "$PYTHON" "$AGENT" probe "$addr" "$port" 2>/dev/null; then
                ok=1
                break
            fi
            sleep 0.2
        done
        [[ $ok == 1 ]] || die "VM $vm cannot reach $addr:$port (logs in $DIR)"
    done
}

cmd_export() {
    need_root
    local collector=172.31.0.1:4739 bridge=0 flow=1 active=10
    if [[ ${1:-} == off ]]; then
        for n in 1 2; do
            vsctl "$n" clear bridge br-int ipfix -- --all destroy Flow_Sample_Collector_Set \
                -- --all destroy IPFIX
            ofctl "$n" del-flows br-int table=1
            ofctl "$n" add-flow br-int "table=1,priority=0,actions=NORMAL"
        done
        log "export off"
        return
    fi
    while [[ $# -gt 0 ]]; do
        case $1 in
            --collector) collector=$2 ;;
            --bridge-sampling) bridge=$2 ;;
            --flow-sampling) flow=$2 ;;
            --active-timeout) active=$2 ;;
            *) die "export: unknown option $1" ;;
        esac
        shift 2
    done
    local n
    for n in 1 2; do
        vsctl "$n" clear bridge br-int ipfix -- --all destroy Flow_Sample_Collector_Set \
            -- --all destroy IPFIX
        ofctl "$n" del-flows br-int table=1
        if [[ $bridge -gt 0 ]]; then
            # Observation domain: the hypervisor's number.
            vsctl "$n" -- set bridge br-int ipfix=@i -- --id=@i create IPFIX \
                targets="\"$collector\"" sampling="$bridge" obs_domain_id="$n" \
                obs_point_id=1 cache_active_timeout="$active" cache_max_flows=4096 >/dev/null
        fi
        if [[ $flow -gt 0 ]]; then
            local probability=$(((65535 + flow / 2) / flow))
            vsctl "$n" -- --id=@br get bridge br-int -- --id=@i create IPFIX \
                targets="\"$collector\"" cache_active_timeout="$active" cache_max_flows=4096 \
                -- create Flow_Sample_Collector_Set id=1 bridge=@br ipfix=@i >/dev/null
            # One domain per exporter: Open vSwitch refreshes templates for its first one only.
            ofctl "$n" add-flow br-int "table=1,priority=10,ip,actions=sample(\
probability=$probability,collector_set_id=1,obs_domain_id=$((10 + n)),obs_point_id=2),NORMAL"
        fi
        ofctl "$n" add-flow br-int "table=1,priority=0,actions=NORMAL"
    done
    log "exporting to $collector: bridge sampling 1:$bridge, flow sampling 1:$flow" \
        "(0: off), active timeout ${active}s"
}

scenario_entry() {
    local entry
    for entry in "${SCENARIOS[@]}"; do
        [[ ${entry%% *} == "$1" ]] && { echo "$entry"; return; }
    done
    die "no scenario '$1' (scenarios: $(cmd_scenarios | tr '\n' ' '))"
}

cmd_start() {
    need_root
    local s entry pair vm program t prefix
    for s in "$@"; do
        entry=$(scenario_entry "$s")
        for pair in ${entry#* }; do
            vm=${pair%%:*}
            program=${pair#*:}
            if [[ $vm == inet ]]; then
                agent "$P-inet" "$program"
            else
                agent "$P-vm$vm" "$program" "$(tenant_prefix "${vm%%-*}")"
            fi
        done
        log "started $s"
    done
}

stop_pidfile() {
    local f=$1 pid
    pid=$(cat "$f" 2>/dev/null) || return 0
    # The pid is ip-netns-exec's, which exec'd the program: its process group holds the program
    # and whatever it started (setsid made it the leader).
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

cmd_stop() {
    need_root
    local s entry pair vm program
    for s in "$@"; do
        entry=$(scenario_entry "$s")
        for pair in ${entry#* }; do
            vm=${pair%%:*}
            program=${pair#*:}
            [[ $vm == inet ]] || vm="vm$vm"
            stop_pidfile "$DIR/procs/$P-$vm.$program.pid"
        done
        log "stopped $s"
    done
}

cmd_scenarios() {
    local entry
    for entry in "${SCENARIOS[@]}"; do echo "${entry%% *}"; done
}

cmd_status() {
    local ns
    ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true)
    if [[ -z $ns ]]; then
        echo "testbed: down"
        return 0
    fi
    echo "namespaces: $(echo "$ns" | wc -l)"
    local n
    for n in 1 2; do
        if [[ -S $DIR/hv$n/db.sock ]]; then
            echo "hypervisor $n: $(vsctl "$n" list-ports br-int | tr '\n' ' ')"
            vsctl "$n" --columns=sampling,targets,obs_domain_id list IPFIX 2>/dev/null |
                sed 's/^/  /'
        fi
    done
    echo "programs:"
    local f
    for f in "$DIR"/procs/*.pid; do
        [[ -f $f ]] || continue
        if kill -0 "$(cat "$f")" 2>/dev/null; then
            echo "  running  $(basename "$f" .pid)"
        else
            echo "  exited   $(basename "$f" .pid) (log: ${f%.pid}.log)"
        fi
    done
}

stop_daemon() {
    local pidfile=$1 pid comm
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
    [[ $comm == ovs* ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    need_root
    check_lock
    local f ns pid
    for f in "$DIR"/procs/*.pid; do
        [[ -f $f ]] && stop_pidfile "$f"
    done
    for f in "$DIR"/hv*/ovs-vswitchd.pid "$DIR"/hv*/ovsdb-server.pid; do
        [[ -f $f ]] && stop_daemon "$f"
    done
    # Whatever else still runs inside the testbed's namespaces (a run killed half way).
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done
    sleep 0.2
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
        ip netns del "$ns" 2>/dev/null || log "cannot delete namespace $ns"
    done
    rm -rf "$DIR"
    log "down"
}

# The demo's recording: the export of every scenario but the flood (it would fill the file),
# caught by tcpdump in the management namespace while socat takes the messages (Open vSwitch's
# IPFIX socket is connected: without a listener it drops them).
cmd_record() {
    need_root
    local file=${1:?record: FILE missing} seconds=${2:-150}
    ip netns list | grep -q "^$P-mgmt" || die "the testbed is not up"
    local sink dump
    ip netns exec "$P-mgmt" socat -u UDP-RECV:4739,bind=172.31.0.1 /dev/null &
    sink=$!
    ip netns exec "$P-mgmt" tcpdump -q -s 0 -i any -w "$file" udp port 4739 2>/dev/null &
    dump=$!
    sleep 1
    cmd_export
    export BOTNEST_TESTBED_SCAN_RATE=${BOTNEST_TESTBED_SCAN_RATE:-5}
    cmd_start http-botnet p2p-botnet worm bruteforce irc-botnet
    sleep 30
    cmd_start spam
    sleep $((seconds - 30))
    cmd_export off
    sleep 1
    kill -INT "$dump" 2>/dev/null || true
    kill "$sink" 2>/dev/null || true
    wait "$dump" 2>/dev/null || true
    log "recorded $(stat -c %s "$file") bytes to $file"
}

cmd_exec() {
    local ns=$1
    shift
    [[ $ns == "$P-"* ]] || ns="$P-$ns"
    exec ip netns exec "$ns" "$@"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    export) shift; cmd_export "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    scenarios) cmd_scenarios ;;
    status) cmd_status ;;
    record) shift; cmd_record "$@" ;;
    exec) shift; cmd_exec "$@" ;;
    -h | --help | help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" ;;
    *) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
