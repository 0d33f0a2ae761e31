#!/usr/bin/env bash
# The disk under a receiving node fills up during a replication run: the
# child's folder is a small tmpfs (mounted in a private mount namespace, so
# nothing outside this script sees it) that the parent's data overflows. The
# run fails with the disk named in the error, the child keeps serving reads
# and its links, what arrived is whole batches, and once the disk has room
# again (the tmpfs is enlarged under the running broker) the next run
# completes, digests agree, and no restart was needed.
if [ -z "${HS_DISKFULL_NS:-}" ]; then
    export HS_DISKFULL_NS=1
    if [ "$(id -u)" -eq 0 ]; then
        exec unshare --mount --propagation private bash "$0" "$@"
    fi
    exec unshare --map-root-user --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/../replication/lib_repl.sh"

N=${HSYNC_DISKFULL_N:-30000}
SMALL_KB=${HSYNC_DISKFULL_KB:-3072}
# The tmpfs goes (lazily: brokers may still hold it) before the scratch
# folders are removed.
trap 'umount -l "$(hr_dir c)" 2>/dev/null; hr_cleanup' EXIT

test_disk_full_then_freed() {
    local cdir f g
    cdir=$(hr_dir c)
    mkdir -p "$cdir"
    if ! mount -t tmpfs -o "size=${SMALL_KB}k" hsync-diskfull "$cdir"; then
        fail "could not mount a ${SMALL_KB} KiB tmpfs on $cdir (needs root or user namespaces)"
        return
    fi
    hr_node p
    hr_node c
    f=$(hs_tmp)/res.ndjson
    hr_gen_resources "$f" "$N" D
    hr_import p "$f"
    g=$(hr_put c resource.computer '{"name":"own"}' --key serial=OWN-1)
    hr_start p
    hr_start c
    hr_link p c
    expect_exit 1 hs sync -d "$(hr_dir p)" --rule resources --timeout 40 --json
    echo "disk full: $(df -k "$cdir" | tail -n 1)"
    local why
    why=$(json_get "$HS_OUT" '[r.get("error") or r.get("why") for r in j["runs"] if r["peer"] == "c" and r["direction"] == "down"][0]' 2>/dev/null)
    echo "disk full: sync said: $why"
    assert_contains "$why" "disk" "sync output names the full disk"
    assert_contains "$(cat "$(hr_log c)")" "no space left" "c's log says the disk is full"
    assert_contains "$(cat "$(hr_log c)")" "free some" "c's log says what to do"
    expect_exit 0 hs history -d "$(hr_dir p)" --json
    assert_contains "$HS_OUT" "disk" "history records the failure"

    # Status and metrics warn about the disk before anyone reads a log.
    expect_exit 0 hs status -d "$cdir"
    assert_contains "$HS_OUT" "warning:   under 1 GiB left on the disk holding" "status warns of a low disk"
    expect_exit 0 hs status -d "$cdir" --json
    assert_eq "true" "$(json_get "$HS_OUT" 'j["disk_low"]')" "status --json: disk_low"
    local m
    m=$(curl -s "http://127.0.0.1:$(($(hr_port c) + 1))/metrics")
    assert_contains "$m" "hsync_disk_free_bytes" "metrics: free disk space"

    # Reads still work, the broker is up and its link too.
    hr_running c && pass || fail "c stopped serving after its disk filled"
    assert_eq "up" "$(hr_state c p)" "c's link to p survives a full disk"
    expect_exit 0 hs get -d "$cdir" "$g"
    assert_contains "$HS_OUT" "own"
    hs export -d "$(hr_dir p)" --class resource. >"$HR_T/p.export"
    hs export -d "$cdir" --class resource. >"$HR_T/c.export"
    local k
    k=$(hr_prefix_check "$HR_T/p.export" "$HR_T/c.export" p)
    echo "disk full: $k of $N objects arrived before the disk filled"
    if [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -lt "$N" ]; then pass; else fail "arrived: $k"; fi
    if [[ "$k" =~ ^[0-9]+$ ]] && [ $((k % 2048)) -eq 0 ]; then pass; else
        fail "$k objects is not a whole number of 2048-object batches"; fi

    # Free space under the running broker: the next run completes.
    mount -o remount,size=2g "$cdir" || fail "could not enlarge the tmpfs" # a limit, not memory
    hr_sync p --rule resources --timeout 60
    assert_eq "true" "$(json_get "$HS_OUT" 'j["all_ok"]')" "sync once the disk has room"
    wait_for 20 hr_same_digest p c resource. p
    assert_eq "$N" "$(hr_count c resource. p)" "everything arrived"
    assert_eq "1" "$(hr_count c resource. c)" "c's own resource kept"
    assert_eq "$(hr_digest p resource. p)" "$(hr_digest c resource. p)" "digests agree"
    hr_running c && pass || fail "c needed a restart"
    expect_exit 0 hs status -d "$cdir" --json
    assert_eq "false" "$(json_get "$HS_OUT" 'j["disk_low"]')" "no warning once there is room"
}

test_disk_full_then_freed
hr_done
