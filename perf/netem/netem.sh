#!/usr/bin/env bash
# Runs N ranks of a program as N separate hosts: one network namespace per
# rank, each joined to a software switch (a bridge in a namespace of its own)
# by a veth link whose two directions are shaped by tc (htb) to --rate.
# Latency: this kernel's tc has no netem, so one-way latency is added by
# gccl's benchmark-only GCCL_BENCH_DELAY_US (every data frame waits that long
# in the sender's queue; see docs/PARAMETERS.md). The links carry only the
# ranks' traffic, in 198.18.7.0/24 (the benchmarking range), inside the
# namespaces; everything is removed on exit.
#
#   perf/netem/netem.sh -n 8 [--rate 1gbit] [--delay-us 5000] [--timeout 600] -- prog args...
#
# Each rank gets RANK, WORLD_SIZE, GCCL_COMM_ID (rank 0's address), a random
# GCCL_SECRET and GCCL_SOCKET_IFNAME=eth0, so gcclCommInitFromEnv works.
# Rank 0's output goes to stdout; every rank's log is printed when one fails.
# Needs root and iproute2. Exit status: the ranks' (0 when all succeeded), 2
# for bad usage, 3 when this machine cannot build the network.
set -euo pipefail

nranks=""
rate="1gbit"
delay_us=0
timeout_s=600
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nranks="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --delay-us) delay_us="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "netem.sh: unknown argument $1 (usage: netem.sh -n N [--rate R] [--delay-us D] [--timeout S] -- prog args)" >&2; exit 2 ;;
  esac
done
if [ -z "$nranks" ] || [ $# -eq 0 ]; then
  echo "netem.sh: usage: netem.sh -n N [--rate R] [--delay-us D] [--timeout S] -- prog args" >&2
  exit 2
fi
if ! [[ "$nranks" =~ ^[0-9]+$ ]] || [ "$nranks" -lt 1 ] || [ "$nranks" -gt 200 ]; then
  echo "netem.sh: -n must be 1..200, got '$nranks'" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "netem.sh: network namespaces need root" >&2
  exit 2
fi
command -v ip >/dev/null || { echo "netem.sh: iproute2 (ip) is not installed" >&2; exit 2; }
command -v tc >/dev/null || { echo "netem.sh: tc (iproute2) is not installed" >&2; exit 2; }

tag="$$"
sw="gccl-sw-$tag"
logs="$(mktemp -d)"
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for ((i = 0; i < nranks; i++)); do ip netns del "gccl-h$i-$tag" 2>/dev/null || true; done
  ip netns del "$sw" 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT

# Each step of the set-up; the first that fails ends it (errexit does not
# apply inside the `if` that runs setup below).
step() {
  "$@" || { echo "'$*' failed" >&2; return 1; }
}

shape() {  # namespace device: egress of that device limited to $rate
  step ip netns exec "$1" tc qdisc add dev "$2" root handle 1: htb default 10 &&
    step ip netns exec "$1" tc class add dev "$2" parent 1: classid 1:10 htb rate "$rate" ceil "$rate"
}

setup() {
  step ip netns add "$sw" || return 1
  step ip -n "$sw" link add br0 type bridge || return 1
  step ip -n "$sw" link set br0 up || return 1
  step ip -n "$sw" link set lo up || return 1
  local i h
  for ((i = 0; i < nranks; i++)); do
    h="gccl-h$i-$tag"
    step ip netns add "$h" || return 1
    step ip link add "gn$i-$tag" type veth peer name "gs$i-$tag" || return 1
    step ip link set "gn$i-$tag" netns "$h" || return 1
    step ip link set "gs$i-$tag" netns "$sw" || return 1
    step ip -n "$h" link set "gn$i-$tag" name eth0 || return 1
    step ip -n "$h" addr add "198.18.7.$((i + 1))/24" dev eth0 || return 1
    step ip -n "$h" link set eth0 up || return 1
    step ip -n "$h" link set lo up || return 1
    step ip -n "$sw" link set "gs$i-$tag" master br0 || return 1
    step ip -n "$sw" link set "gs$i-$tag" up || return 1
    shape "$h" eth0 || return 1
    shape "$sw" "gs$i-$tag" || return 1
  done
}

# A machine that cannot make namespaces, veth links or htb qdiscs is not a
# failure of the program under test: say so and exit 3.
if ! setup_err="$(setup 2>&1 >/dev/null)"; then
  echo "netem.sh: cannot build the emulated network here: $setup_err" >&2
  exit 3
fi

secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$((20000 + RANDOM % 20000))
for ((i = 0; i < nranks; i++)); do
  ip netns exec "gccl-h$i-$tag" env RANK="$i" WORLD_SIZE="$nranks" LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 \
    GCCL_COMM_ID="198.18.7.1:$port" GCCL_SECRET="$secret" GCCL_SOCKET_IFNAME="=eth0" \
    GCCL_BENCH_DELAY_US="$delay_us" timeout -k 5 "$timeout_s" "$@" >"$logs/rank$i.log" 2>&1 &
  pids+=($!)
done

status=0
for ((i = 0; i < nranks; i++)); do
  if ! wait "${pids[$i]}"; then status=1; fi
done
pids=()
if [ "$status" -ne 0 ]; then
  for ((i = 0; i < nranks; i++)); do
    echo "---- rank $i ----" >&2
    cat "$logs/rank$i.log" >&2
  done
  echo "netem.sh: a rank failed (see above)" >&2
  exit 1
fi
grep -v "GCCL_BENCH_DELAY_US=.*emulated latency" "$logs/rank0.log" || true
