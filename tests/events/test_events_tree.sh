#!/usr/bin/env bash
# A resource merge raised by a duplicate put at one leaf reaches the root and
# every other branch, hop by hop, exactly once, and is never sent back where
# it came from: on a 1x6 hierarchy and on a three-level tree
# (root > mid1 > leaf, root > mid2 > leaf2).
. "$(dirname "$0")/lib_events.sh"

# merge_at NODE SERIAL: two puts with the same key at NODE; the second merges
# into the first. Prints the merge event's id (from NODE's listing).
merge_at() {
    local d g1 g2
    d=$(hr_dir "$1")
    g1=$(hr_put "$1" resource.computer '{"host":"'"$2"'-a"}' --key "serial=$2")
    expect_exit 0 "$HSYNC" put -d "$d" --class resource.computer --key "serial=$2" '{"host":"'"$2"'-b"}'
    g2=$HS_OUT
    assert_eq "$g1" "$g2" "the second put prints the first's guid"
    assert_contains "$HS_ERR" "merged" "stderr says merged"
    json_get "$(he_events "$1")" '[e["id"] for e in j if e["kind"] == "merge" and e["payload"].get("key") == "serial='"$2"'"][0]'
}

# check NODE ID DIRECTION FROM PEERS: NODE lists ID once, with that direction,
# from, and delivery to exactly PEERS (sorted, space separated).
check() {
    assert_eq "1" "$(he_count "$1" "$2")" "$1 lists the merge event once"
    assert_eq "$3" "$(he_field "$1" "$2" direction)" "direction at $1"
    assert_eq "$4" "$(he_field "$1" "$2" from)" "from at $1"
    assert_eq "merge" "$(he_field "$1" "$2" kind)" "kind at $1"
    assert_eq "$5" "$(he_peers "$1" "$2")" "delivery peers at $1 (never back where it came from)"
}

test_fanout_1x6() {
    local n i id
    hr_node p
    hr_start p
    for i in 1 2 3 4 5 6; do
        hr_node "c$i"
        hr_start "c$i"
        hr_link p "c$i"
    done

    id=$(merge_at c3 FAN-1)
    assert_ne "" "$id" "c3 raised a merge event"
    [ -n "$id" ] || return
    for n in p c1 c2 c4 c5 c6; do
        wait_for 15 he_count_is 1 "$n" "$id"
    done
    # the durable delivery records are written when the acks are flushed
    wait_for 10 he_dl_is c3 "$id" p state acknowledged
    wait_for 10 he_all_acked p "$id"

    check c3 "$id" raised "" "p"
    assert_eq "c3" "$(he_field c3 "$id" origin)" "origin at c3"
    assert_eq "1" "$(he_dl c3 "$id" p attempts)" "c3 sent it to p once"
    check p "$id" received c3 "c1 c2 c4 c5 c6"
    assert_eq "c3" "$(he_field p "$id" origin)" "origin at p"
    for n in c1 c2 c4 c5 c6; do
        check "$n" "$id" received p ""
        assert_eq "c3" "$(he_field "$n" "$id" origin)" "origin at $n"
        assert_eq "acknowledged" "$(he_dl p "$id" "$n" state)" "p's delivery to $n"
        assert_eq "1" "$(he_dl p "$id" "$n" attempts)" "p sent it to $n once"
        assert_eq "1" "$(he_received_lines "$n")" "$n applied exactly one event"
    done
    assert_eq "1" "$(he_received_lines p)" "p applied exactly one event"
    assert_eq "0" "$(he_received_lines c3)" "nothing came back to c3"
    # created is stamped once, at the origin; at is when it arrived here
    local created
    created=$(he_field c3 "$id" created)
    assert_eq "$created" "$(he_field c6 "$id" created)" "created travels unchanged"
    assert_eq "$(he_field c3 "$id" payload)" "$(he_field c6 "$id" payload)" "payload travels unchanged"
    [ "$(he_field c6 "$id" at)" -ge "$created" ] && pass || fail "c6 received before it was created"
}

test_three_levels() {
    local n id
    for n in root mid1 leaf mid2 leaf2; do
        hr_node "$n"
        hr_start "$n"
    done
    hr_link root mid1
    hr_link mid1 leaf
    hr_link root mid2
    hr_link mid2 leaf2

    id=$(merge_at leaf TREE-1)
    assert_ne "" "$id" "leaf raised a merge event"
    [ -n "$id" ] || return
    for n in mid1 root mid2 leaf2; do
        wait_for 15 he_count_is 1 "$n" "$id"
    done
    wait_for 10 he_dl_is leaf "$id" mid1 state acknowledged
    for n in mid1 root mid2; do
        wait_for 10 he_all_acked "$n" "$id"
    done
    check leaf "$id" raised "" "mid1"
    check mid1 "$id" received leaf "root"
    check root "$id" received mid1 "mid2"
    check mid2 "$id" received root "leaf2"
    check leaf2 "$id" received mid2 ""
    for n in leaf mid1 root mid2 leaf2; do
        assert_eq "leaf" "$(he_field "$n" "$id" origin)" "origin at $n"
    done
    assert_eq "0" "$(he_received_lines leaf)" "nothing came back to leaf"

    # and a merge at a middle node goes up and down every other branch
    id=$(merge_at mid2 TREE-2)
    assert_ne "" "$id" "mid2 raised a merge event"
    [ -n "$id" ] || return
    for n in root mid1 leaf leaf2; do
        wait_for 15 he_count_is 1 "$n" "$id"
    done
    wait_for 10 he_all_acked mid2 "$id"
    check mid2 "$id" raised "" "leaf2 root"
    check root "$id" received mid2 "mid1"
    check mid1 "$id" received root "leaf"
    check leaf "$id" received mid1 ""
    check leaf2 "$id" received mid2 ""
}

test_fanout_1x6
test_three_levels
hr_done
