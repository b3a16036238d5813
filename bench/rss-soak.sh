#!/usr/bin/env bash
# The engine alone over N renders of the four corpus pages, 4 at a time, with the render
# process's RSS (KiB) and thread count sampled every 2 s into /tmp/soak-LABEL.rss (the
# engine-alone soaks in docs/performance.md). Serve bench/site on 127.0.0.1:18099 first
# (python3 -m http.server 18099 --bind 127.0.0.1 --directory bench/site).
#   bench/rss-soak.sh N LABEL [VAR=value ...]   e.g. bench/rss-soak.sh 600 r100 RENDER_LOOP_RECYCLE=100
N=$1; label=$2; shift 2
# As bench/run.sh: a shell's RUST_BACKTRACE would make every expected error capture and
# symbolize a backtrace, which deploy/ does not do.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
S=http://127.0.0.1:18099
cargo build --release -q -p enconvert-worker --example render_loop
env "$@" "${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release/examples/render_loop" $N 4 $S/invoice.html $S/report.html $S/gallery.html $S/dashboard.html > /tmp/soak-$label.out 2>/dev/null &
pid=$!
: > /tmp/soak-$label.rss
while kill -0 $pid 2>/dev/null; do
  r=$(awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null); t=$(ls /proc/$pid/task 2>/dev/null | wc -l)
  echo "$(date +%s) $r $t" >> /tmp/soak-$label.rss; sleep 2
done
echo "done $(cat /tmp/soak-$label.out)" >> /tmp/soak-$label.rss
