# Sourced by the recording benchmarks (bench-record.sh, bench-watch.sh, bench-lb.sh):
# builds vmlat, makes a scratch dir removed on exit, starts keepalived in a namespace
# of its own where asked, and names the tracepoints that vmlat and perf both record, so
# that every benchmark compares the same events.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q
vmlat=$PWD/target/release/vmlat
tmp=$(mktemp -d)
ns=vmlat-bench-$$
# Ends what the benchmark started (each daemon's pid file is in $tmp), then its
# namespace and files.
cleanup() {
  local pids=() pid
  for pidfile in "$tmp"/*.pid; do
    [ -e "$pidfile" ] && pids+=("$(cat "$pidfile")")
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do # keepalived leaves its namespace only once it has exited
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# keepalived alone in namespace $ns on bench0 (a veth), master within ~3 s and
# advertising every second, as on an idle load balancer: capture it as bench0@$ns.
start_keepalived() {
  cat >"$tmp/keepalived.conf" <<EOF
vrrp_instance VI_1 {
  state BACKUP
  interface bench0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress { 10.254.0.100/24 dev bench0 }
}
EOF
  ip netns add "$ns"
  ip -n "$ns" link add bench0 type veth peer name bench1
  ip -n "$ns" addr add 10.254.0.1/24 dev bench0
  ip -n "$ns" link set bench0 up
  ip -n "$ns" link set bench1 up
  ip -n "$ns" link set lo up
  ip netns exec "$ns" keepalived -n -l -D -f "$tmp/keepalived.conf" -p "$tmp/keepalived.pid" \
    -r "$tmp/vrrp.pid" -c "$tmp/checkers.pid" >"$tmp/keepalived.log" 2>&1 &
  sleep 1
}
events=sched:sched_switch,sched:sched_wakeup,sched:sched_wakeup_new,sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork,signal:signal_generate,block:block_rq_issue,block:block_rq_complete,syscalls:sys_enter_exit_group
