# Sourced by the recording benchmarks (bench-record.sh, bench-watch.sh): builds vmlat,
# makes a scratch dir removed on exit, and names the tracepoints that vmlat and perf
# both record, so that every benchmark compares the same events.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q
vmlat=$PWD/target/release/vmlat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
events=sched:sched_switch,sched:sched_wakeup,sched:sched_wakeup_new,sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork,signal:signal_generate,block:block_rq_issue,block:block_rq_complete
