#!/bin/sh
# Runs the live exporter tests (softflowd, Open vSwitch) after installing what they need.
# Needs root: the tests create network namespaces and run exporters in them. Set CI=true to make
# a missing prerequisite fail the tests instead of skipping them.
set -eu
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: the live tests need root" >&2
    exit 1
fi

missing=""
for tool in softflowd ovs-vswitchd tshark ethtool ip python3; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "run.sh: installing packages for:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package install may start a host Open vSwitch; the tests run their own in a
    # namespace and do not use it.
    apt-get install -y -qq softflowd openvswitch-switch tshark ethtool iproute2 python3 >/dev/null
fi

exec cargo nextest run -p botnest --test live_softflowd --test live_ovs "$@"
