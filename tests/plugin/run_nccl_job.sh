#!/usr/bin/env bash
# A real two-process NCCL job (NCCL found under /usr/local/cuda) with every
# byte through libnccl-net-gccl.so: NCCL_NET_PLUGIN names the plugin by path
# and each process gets its own NCCL_HOSTID, so NCCL takes them for two hosts
# (one GPU may serve both). Checks the results (the program does), that NCCL
# loaded this plugin and that the plugin's comms carried the bytes (their
# closing counters, logged with NCCL_DEBUG=INFO). Exit 77: skipped, with why.
#
#   run_nccl_job.sh <nccl_allreduce_job binary> <libnccl-net-gccl.so>
set -u
job=${1:?job binary}
plugin=${2:?plugin library}
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q GPU; then
  echo "SKIP: no GPU on this machine (NCCL cannot run without one); the plugin is covered by test_nccl_net here"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pids=()
for rank in 0 1; do
  env NCCL_NET_PLUGIN="$plugin" NCCL_HOSTID="gccl-job-host-$rank" \
      NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET NCCL_SOCKET_IFNAME=lo GCCL_SOCKET_IFNAME=lo \
      timeout 300 "$job" "$rank" 2 "$dir/id" > "$dir/rank$rank.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1; do
  wait "${pids[$i]}"; rc=$?
  if [ "$rc" = 77 ]; then cat "$dir/rank$i.log"; exit 77; fi
  [ "$rc" = 0 ] || { echo "rank $i exited with $rc"; status=1; }
done
for i in 0 1; do
  log="$dir/rank$i.log"
  grep -E "^rank $i: (allreduce|OK)" "$log"
  if ! grep -qE "Using network gccl|NET/Plugin.*gccl" "$log"; then
    echo "rank $i: NCCL did not say it uses the gccl net plugin"; status=1
  fi
  sent=$(grep -oE "NET/gccl: closing send comm [0-9a-f]+ with [^:]+: sent [0-9]+ bytes" "$log" |
         awk '{s += $(NF-1)} END {print s + 0}')
  echo "rank $i: the plugin's send comms carried $sent bytes"
  if [ "$sent" -le 0 ]; then echo "rank $i: the plugin carried no bytes"; status=1; fi
done
[ "$status" = 0 ] || { echo "--- logs"; tail -n 60 "$dir"/rank*.log; }
exit $status
