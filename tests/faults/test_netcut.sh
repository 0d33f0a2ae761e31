#!/usr/bin/env bash
# The network between a parent and a child is cut mid-run and restored, with
# both brokers running: p lives in this script's own network namespace, c in
# a second one, joined by a veth pair on 10.77.0.0/24 (both namespaces are
# created here and vanish with the script). Taking the veth down drops every
# packet without closing a socket, as a pulled cable would:
#   - both sides mark the link down within the heartbeat timeout, the run
#     fails at p and c applies nothing more while the cable is out;
#   - p's memory stays bounded;
#   - once the veth is up again the link comes back over the same or a new
#     TCP connection, the run resumes from the acknowledged cursor (it does
#     not start over) and the digests converge;
#   - a second cut with the link idle, a change on each side while apart,
#     then restored: both directions converge.
if [ -z "${HS_NETCUT_NS:-}" ]; then
    export HS_NETCUT_NS=1
    if [ "$(id -u)" -eq 0 ]; then
        exec unshare --net bash "$0" "$@"
    fi
    exec unshare --map-root-user --net bash "$0" "$@"
fi
. "$(dirname "$0")/../replication/lib_repl.sh"

N=${HSYNC_NETCUT_N:-120000}
PA=10.77.0.1
CA=10.77.0.2

HOLDER=""
own_netns() { [ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }
cleanup_ns() {
    [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
    hr_cleanup
}
trap cleanup_ns EXIT

# The second namespace is held by a sleeping process; c's broker joins it
# with nsenter. ipc:// control sockets are files, so commands reach c's
# broker from here.
make_namespaces() {
    ip link set lo up || return 1
    unshare --net sleep 3600 &
    HOLDER=$!
    # the holder has unshared once its net namespace differs from ours
    wait_for 10 own_netns "$HOLDER" || return 1
    ip link add hs-p type veth peer name hs-c || return 1
    ip link set hs-c netns "$HOLDER" || return 1
    ip addr add "$PA/24" dev hs-p && ip link set hs-p up || return 1
    nsenter -t "$HOLDER" -n sh -c "ip link set lo up && ip addr add $CA/24 dev hs-c && ip link set hs-c up" || return 1
    ping_ok() { nsenter -t "$HOLDER" -n bash -c "(exec 3<>/dev/tcp/$PA/$(hr_port p)) 2>/dev/null"; }
}

net_cut() { ip link set hs-p down; }
net_restore() { ip link set hs-p up; }

partly_at_c() {
    local n
    n=$(hr_count c resource. p) || return 1
    [ "$n" -gt 0 ] && [ "$n" -lt "$TOTAL" ]
}

PEAK_ANON=0
sample_p_then() {
    local a
    a=$(hr_rss_anon_kb "${HR_PID[p]}")
    [ "${a:-0}" -gt "$PEAK_ANON" ] && PEAK_ANON=$a
    "$@"
}

test_setup() {
    HR_HOST[p]=$PA
    HR_HOST[c]=$CA
    hr_node p
    hr_node c
    if ! make_namespaces; then
        fail "could not create the namespaces and veth pair (needs root or user namespaces, and iproute2)"
        hr_done
    fi
    HR_WRAP[c]="nsenter -t $HOLDER -n"
    hr_start p
    hr_start c
    wait_for 10 ping_ok
    hr_link p c
    TOTAL=0
}

test_cut_mid_run() {
    local f sync_pid size0 downs_p downs_c at_cut base_anon
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$N" NC
    hr_import p "$f"
    TOTAL=$N
    base_anon=$(hr_rss_anon_kb "${HR_PID[p]}")
    size0=$(hr_store_bytes c)
    downs_p=$(hr_log_count p "event=link-down")
    downs_c=$(hr_log_count c "event=link-down")
    "$HSYNC" sync -d "$(hr_dir p)" --rule resources --complete --timeout 60 --json \
        >"$HR_T/sync-cut.json" 2>&1 &
    sync_pid=$!
    wait_for 30 hr_store_grown c $((size0 + (2 << 20)))
    net_cut
    wait_for 15 sample_p_then hr_log_more p "event=link-down" "$downs_p"
    wait_for 15 hr_log_more c "event=link-down" "$downs_c"
    at_cut=$(hr_count c resource. p)
    partly_at_c && pass || fail "cut too late: c has $at_cut of $TOTAL"
    # The cable is out: nothing more arrives at c while p keeps trying.
    wait_for 10 sample_p_then hr_log_more p "event=run-failed.*resources down" 0
    assert_eq "$at_cut" "$(hr_count c resource. p)" "c applied nothing while cut"
    echo "netcut: c had $at_cut of $TOTAL at the cut; p RssAnon $base_anon kB before, peak $PEAK_ANON kB while cut"
    if [ "$PEAK_ANON" -lt $((base_anon + 32768)) ]; then pass; else
        fail "p's anonymous memory grew from $base_anon kB to $PEAK_ANON kB while cut"; fi

    net_restore
    wait_for 20 hr_state_is p c up
    wait_for 20 hr_state_is c p up
    wait_for 70 eval '! kill -0 '"$sync_pid"
    wait "$sync_pid" 2>/dev/null
    hr_sync p --rule resources --timeout 60
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "sync after the cable is back"
    wait_for 40 hr_log_more p "event=run-done.*resources down complete.*resuming after" 0
    local sent
    sent=$(grep -m1 -o 'resources down complete ([^)]*resuming after[^)]*): sent [0-9]*' "$(hr_log p)" | grep -o '[0-9]*$')
    echo "netcut: the resumed run sent ${sent:-?} of $TOTAL (c had $at_cut at the cut)"
    if [[ "${sent:-x}" =~ ^[0-9]+$ ]] && [ "$sent" -le $((TOTAL - at_cut + 8 * 2048)) ]; then pass; else
        fail "the resumed run sent '${sent:-}' with $at_cut of $TOTAL already at c: it started over"; fi
    wait_for 30 hr_same_digest p c resource. p
    assert_eq "$TOTAL" "$(hr_count c resource. p)" "everything at c after the cut"
}

test_cut_both_ways() {
    local gp gc
    net_cut
    wait_for 15 hr_state_is p c down
    # Changes on both sides while apart.
    gp=$(hr_put p item.policy '{"while":"cut","at":"p"}')
    gc=$(hr_put c resource.computer '{"name":"made-while-cut"}' --key serial=CUT-1)
    net_restore
    wait_for 20 hr_state_is p c up
    hr_sync p --timeout 60
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "sync both ways after a second cut"
    wait_for 20 hr_same_digest p c item. p
    wait_for 20 hr_same_digest p c resource. c
    expect_exit 0 hs get -d "$(hr_dir c)" "$gp"
    expect_exit 0 hs get -d "$(hr_dir p)" "$gc"
}

test_setup
test_cut_mid_run
test_cut_both_ways
hr_done
