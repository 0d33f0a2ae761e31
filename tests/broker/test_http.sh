#!/usr/bin/env bash
# The operator view of a 1x2 hierarchy: /api/status shows both children and
# the rules' state, /metrics is Prometheus text with the expected families
# and values, unknown paths 404, other methods 405, a busy port leaves the
# broker replicating; hsync trace shows pending, then acknowledged.
. "$(dirname "$0")/../replication/lib_repl.sh"

http_port() { echo $(($(hr_port "$1") + 1)); }
url() { echo "http://127.0.0.1:$(http_port "$1")$2"; }

# http_get NAME PATH [METHOD]: body on stdout; "<code>" of the reply in
# HTTP_CODE (python3 urllib, 5 s timeout).
http_req() {
    python3 - "$1" "${2:-GET}" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], method=sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        body, code, ctype = r.read().decode(), r.status, r.headers.get("Content-Type", "")
except urllib.error.HTTPError as e:
    body, code, ctype = e.read().decode(), e.code, e.headers.get("Content-Type", "")
sys.stdout.write("%d %s\n%s" % (code, ctype, body))
PY
}

setup() {
    hr_node p
    hr_start p
    hr_node c1
    hr_start c1
    hr_node c2
    hr_start c2
    hr_link p c1
    hr_link p c2
}

api_has_children() {
    local out
    out=$(http_req "$(url p /api/status)") || return 1
    [ "$(json_get "$(tail -n +2 <<<"$out")" \
        'sorted(l["name"] + ":" + l["state"] for l in j["links"])')" == '["c1:up", "c2:up"]' ]
}

test_api_status() {
    wait_for 10 api_has_children
    local out body
    out=$(http_req "$(url p /api/status)")
    assert_eq "200 application/json" "$(head -n 1 <<<"$out")" "status line of /api/status"
    body=$(tail -n +2 <<<"$out")
    assert_json "$body" "/api/status"
    assert_eq "p" "$(json_get "$body" 'j["node"]')" "node"
    local q='[r for r in j["replication"] if r["peer"] == "c2" and r["rule"] == "items" and r["role"] == "sends"]'
    assert_eq "1" "$(json_get "$body" "len($q)")" "c2/items in replication[]"
    assert_eq "true" "$(json_get "$body" "$q[0]['enabled']")" "c2/items enabled"
    assert_eq "true" "$(json_get "$body" "all(k in $q[0] for k in ('last_run', 'next_run', 'backlog'))")" \
        "c2/items has last_run, next_run, backlog"
    assert_eq "true" "$(json_get "$body" 'all(k in j for k in ("families", "log_head", "log_entries", "history", "events", "outbox"))')" \
        "families, log_head, log_entries, history, events, outbox"
    # the child sees its parent and the path to it
    body=$(http_req "$(url c1 /api/status)" | tail -n +2)
    assert_eq "parent:p:up" "$(json_get "$body" '",".join(l["role"] + ":" + l["name"] + ":" + l["state"] for l in j["links"])')" \
        "c1 sees its parent"
}

# metric NAME LABELS: the value of one sample in the last /metrics text.
metric() {
    METRICS=$METRICS python3 - "$1" "$2" <<'PY'
import os, sys
name, labels = sys.argv[1], sys.argv[2]
for line in os.environ["METRICS"].splitlines():
    if line.startswith(name + ("{" + labels + "}" if labels else "") + " "):
        print(line.rsplit(" ", 1)[1].strip())
        break
else:
    print("absent")
PY
}

test_metrics() {
    local i
    for i in 1 2 3; do
        hr_put p item.policy '{"n":'"$i"'}' >/dev/null
    done
    hr_put p item.task '{"t":1}' >/dev/null
    hr_put c1 resource.computer '{"h":"a"}' --key serial=M1 >/dev/null
    hr_sync p
    local out
    if command -v curl >/dev/null; then
        echo "metrics: /metrics answered in $(curl -s -o /dev/null -w '%{time_total}' "$(url p /metrics)") s (curl)"
    fi
    out=$(http_req "$(url p /metrics)")
    assert_eq "200 text/plain; version=0.0.4; charset=utf-8" "$(head -n 1 <<<"$out")" "metrics content type"
    METRICS=$(tail -n +2 <<<"$out")
    # every line is a comment or "name{labels} value" (text format 0.0.4)
    assert_eq "ok" "$(METRICS=$METRICS python3 - <<'PY'
import os, re, sys
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|[+-]Inf)$')
typed = set()
for line in os.environ["METRICS"].splitlines():
    if line.startswith("# TYPE "):
        parts = line.split()
        if parts[3] not in ("counter", "gauge", "summary", "histogram", "untyped") or parts[2] in typed:
            print("bad TYPE: " + line); sys.exit()
        typed.add(parts[2])
    elif line.startswith("#") or not line:
        continue
    elif not sample.match(line):
        print("bad sample: " + line); sys.exit()
print("ok")
PY
)" "/metrics parses as Prometheus text"
    assert_eq "1" "$(metric hsync_up 'node="p"')" "hsync_up"
    assert_eq "$(hr_count p item.)" "$(metric hsync_objects 'family="item"')" "items at p (metric = digest count)"
    assert_eq "1" "$(metric hsync_objects 'family="resource"')" "resources at p"
    assert_ne "absent" "$(metric hsync_log_head '')" "log head"
    assert_ne "absent" "$(metric hsync_log_entries '')" "log entries"
    assert_eq "1" "$(metric hsync_link_up 'peer="c1",role="child"')" "c1 up"
    assert_eq "0" "$(metric hsync_backlog 'peer="c2",rule="items"')" "c2/items backlog after sync"
    assert_eq "0" "$(metric hsync_event_outbox 'peer="c1"')" "c1 outbox"
    assert_ne "absent" "$(metric hsync_runs_total 'peer="c2",rule="items",role="sent",result="ok"')" "items runs to c2"
    assert_eq "1" "$(metric hsync_run_objects_total 'peer="c1",rule="resources",role="received"')" "resource received from c1"
    assert_ne "absent" "$(metric hsync_run_duration_seconds_count 'peer="c1",rule="items",role="sent"')" "run durations"
    assert_ne "absent" "$(metric hsync_run_bytes_total 'peer="c1",rule="items",role="sent"')" "run bytes"
    assert_ne "absent" "$(metric hsync_rule_failures 'peer="c1",rule="items"')" "rule failures"
    # a change not yet sent shows as backlog
    hr_put p item.policy '{"n":99}' >/dev/null
    METRICS=$(http_req "$(url p /metrics)" | tail -n +2)
    assert_eq "1" "$(metric hsync_backlog 'peer="c1",rule="items"')" "c1/items backlog of one"
}

test_page_404_405() {
    local out
    out=$(http_req "$(url p /)")
    assert_eq "200 text/html; charset=utf-8" "$(head -n 1 <<<"$out")" "page content type"
    assert_contains "$out" "fetch('/api/status'" "page fetches /api/status"
    assert_not_contains "$out" "src=\"http" "no external scripts"
    assert_eq "404" "$(http_req "$(url p /nope)" | head -n 1 | cut -d' ' -f1)" "unknown path"
    assert_eq "404" "$(http_req "$(url p /api/status/x)" | head -n 1 | cut -d' ' -f1)" "unknown subpath"
    assert_eq "200" "$(http_req "$(url p '/metrics?x=1')" | head -n 1 | cut -d' ' -f1)" "query ignored"
    local m
    for m in POST PUT DELETE; do
        assert_eq "405" "$(http_req "$(url p /metrics)" "$m" | head -n 1 | cut -d' ' -f1)" "$m /metrics"
    done
    assert_eq "405" "$(http_req "$(url p /)" POST | head -n 1 | cut -d' ' -f1)" "POST /"
    # a raw request with a malformed target gets 400, and the broker goes on
    out=$(python3 - "$(http_port p)" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /\x01bad HTTP/1.1\r\nHost: x\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
PY
)
    assert_contains "$out" " 400 " "control byte in the target"
    wait_for 5 api_has_children
}

# DNS rebinding (issue 18 bis, item 5): a request whose Host is a name other
# than localhost (a page's own domain, rebound to 127.0.0.1) gets 421 and no
# status; IP literals and localhost are answered.
host_req() {
    python3 - "$(http_port p)" "$1" "$2" <<'PY'
import socket, sys
data = b""
for attempt in range(3):  # a connection reset is retried (bounded), a reply is not
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (sys.argv[3], sys.argv[2])).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError as e:
        sys.stderr.write("host_req: %s (attempt %d)\n" % (e, attempt + 1))
        continue
    if data:
        break
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode().split(" ")[1], body.decode(errors="replace")[:200].replace("\n", " "))
PY
}

test_host_header() {
    local port out h
    port=$(http_port p)
    for h in "attacker.example" "attacker.example:$port" "127.0.0.1.nip.io:$port" "localhost.attacker.example" \
        "127.0.0.1:$port:1" "[::1" "[::1]x"; do
        out=$(host_req "$h" /api/status)
        assert_eq "421" "${out%% *}" "Host $h for /api/status"
        assert_not_contains "$out" '"node"' "no status for Host $h"
    done
    assert_contains "$(host_req attacker.example /api/status)" "IP address, localhost" "421 reason"
    assert_eq "421" "$(host_req attacker.example /metrics | cut -d' ' -f1)" "Host attacker.example for /metrics"
    for h in "127.0.0.1:$port" "127.0.0.1" "localhost:$port" "LocalHost" "[::1]:$port" "10.1.2.3"; do
        assert_eq "200" "$(host_req "$h" /api/status | cut -d' ' -f1)" "Host $h for /api/status"
    done
}

# hsync trace before and after a sync: pending, then acknowledged for c1.
trace_state() {
    json_get "$("$HSYNC" trace -d "$(hr_dir "$1")" "$2" --json)" \
        '[r["state"] for r in j["peers"] if r["peer"] == "'"$3"'" and r["rule"] == "'"$4"'"][0]'
}

test_trace() {
    local g
    g=$(hr_put p item.policy '{"trace":1}')
    expect_exit 0 hs trace -d "$(hr_dir p)" "$g" --json
    assert_json "$HS_OUT" "trace --json"
    assert_eq "item.policy" "$(json_get "$HS_OUT" 'j["class"]')" "class"
    assert_eq "p" "$(json_get "$HS_OUT" 'j["owner"]')" "owner"
    assert_eq "64" "$(json_get "$HS_OUT" 'len(j["hash"])')" "hash"
    assert_eq "pending" "$(trace_state p "$g" c1 items)" "c1 pending before the sync"
    assert_eq "pending" "$(trace_state p "$g" c2 items)" "c2 pending before the sync"
    hr_sync p --peer c1 --rule items
    assert_eq "acknowledged" "$(trace_state p "$g" c1 items)" "c1 acknowledged after the sync"
    assert_eq "pending" "$(trace_state p "$g" c2 items)" "c2 still pending"
    expect_exit 0 hs trace -d "$(hr_dir p)" "$g"
    assert_contains "$HS_OUT" "acknowledged"
    assert_contains "$HS_OUT" "LAST OK RUN"
    # a child's resource: acknowledged up at the child, out of scope back down
    local r
    r=$(hr_put c1 resource.computer '{"h":"t"}' --key serial=T1)
    assert_eq "pending" "$(trace_state c1 "$r" p resources)" "resource pending at c1"
    hr_sync p --rule resources
    assert_eq "acknowledged" "$(trace_state c1 "$r" p resources)" "resource acknowledged by p"
    assert_eq "out of scope" "$(trace_state p "$r" c2 resources)" "not sent to the sibling"
    # no broker needed; errors say what to do
    hr_stop c1
    expect_exit 0 hs trace -d "$(hr_dir c1)" "$r"
    expect_exit 1 hs trace -d "$(hr_dir p)" 01a228a3-0000-7000-8000-000000000000
    assert_contains "$HS_ERR" "hsync: trace: no object"
    expect_exit 1 hs trace -d "$(hr_dir p)" not-a-guid
    assert_contains "$HS_ERR" "is not a guid"
    expect_exit 2 hs trace -d "$(hr_dir p)"
    hr_start c1
}

# The http port is taken: a clear log line, and the node still replicates.
test_port_busy() {
    hr_node busy
    local port
    port=$(http_port busy)
    python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ready", flush=True); time.sleep(60)' "$port" >"$HR_T/holder.out" &
    local holder=$!
    wait_for 5 grep -q ready "$HR_T/holder.out"
    hr_start busy
    wait_for 5 grep -q "event=http-failed" "$(hr_log busy)"
    assert_contains "$(cat "$(hr_log busy)")" "cannot serve the status page on 127.0.0.1:$port"
    assert_contains "$(cat "$(hr_log busy)")" "replication goes on without it"
    hr_link p busy
    hr_put p item.policy '{"busy":1}' >/dev/null
    hr_sync p --peer busy --rule items
    assert_eq "$(hr_digest p item.)" "$(hr_digest busy item.)" "items reached the node without http"
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
}

setup
test_api_status
test_metrics
test_page_404_405
test_host_header
test_trace
test_port_busy
hr_done
