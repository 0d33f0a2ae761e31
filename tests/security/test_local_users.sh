#!/usr/bin/env bash
# Local users and the node folder (issue 18, item 2): `init` and `serve` make
# the node folder 0700 and DIR/ctl.sock 0600 whatever the umask and whatever
# mode the folder had; the broker takes commands on its control socket only
# from its own user and root (the peer credentials of the ipc connection),
# even when the socket is reachable by others; `serve` refuses a folder that
# other users can write or that belongs to another user (OpenSSH StrictModes).
#
# The other user is `nobody`, through runuser: the suite needs root. Its
# folders live under a /tmp folder with 0755 parents and a copy of the hsync
# binary, so that `nobody` can reach both (the build tree may not be).
LU_TMP=$(mktemp -d /tmp/hsync-lu.XXXXXX)
chmod 755 "$LU_TMP"
export HSYNC_TEST_TMP=$LU_TMP
LU_BIN=${HSYNC:?HSYNC must name the hsync binary} # lib.sh may wrap it (sanitizer runs)
. "$(dirname "$0")/../topology/lib_broker.sh"
trap 'hb_cleanup; rm -rf "$LU_TMP"' EXIT

hs() { "$HSYNC" "$@"; }
if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1 || ! command -v runuser >/dev/null; then
    echo "skipped: needs root, runuser and a 'nobody' user" >&2
    hb_done
fi
chmod 755 "$HS_ROOT" "$HB_T"
mkdir -m 755 "$LU_TMP/bin"
cp "$LU_BIN" "$LU_TMP/bin/hsync"
chmod 755 "$LU_TMP/bin/hsync"
NB_HSYNC=$LU_TMP/bin/hsync
SYS_PY=/usr/bin/python3 # Debian's, with python3-zmq
# as_nobody CMD...: run CMD as user nobody (bounded: 20 s; under the
# sanitizers without the leak check, which nobody's processes cannot write)
as_nobody() {
    timeout 20 runuser -u nobody -- env ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"} "$@"
}
mode() { stat -c %a "$1"; }

P=$(hb_dir p)
Q=$(hb_dir q)

# ---- init and serve under umask 000, in a folder made 0755 beforehand ----
mkdir -m 755 "$P"
old_umask=$(umask)
umask 000
hb_node p
assert_eq 700 "$(mode "$P")" "init makes an existing 0755 folder 0700 (umask 000)"
hb_start p
umask "$old_umask"
assert_eq 700 "$(mode "$P")" "serve keeps the folder 0700"
assert_eq 600 "$(mode "$P/ctl.sock")" "ctl socket 0600 under umask 000"
assert_eq 600 "$(mode "$P/broker.lock")" "broker.lock 0600"
assert_eq 600 "$(mode "$P/store/data.mdb")" "store 0600"
chmod 755 "$P"
hb_stop p
hb_start p
assert_eq 700 "$(mode "$P")" "serve makes a 0755 node folder 0700 again"

hb_node q
hb_start q
expect_exit 0 hs put -d "$P" --class security.role '{"name":"admins","privileges":["all"]}'
digest_before=$(hs digest -d "$P")
links_before=$(hb_links p)

# ---- the socket reachable by everyone (what a umask 000 and a 0755 folder
# gave before): the broker itself must refuse other users ----
chmod 755 "$P"
chmod 666 "$P/ctl.sock"
chmod 644 "$P/broker.lock" # so that the CLI of nobody sees the broker running
tok=$(hb_invite q)
expect_exit 1 as_nobody "$NB_HSYNC" hierarchy add-child -d "$P" "$tok"
assert_contains "$HS_ERR" "refused" "add-child by nobody"
expect_exit 1 as_nobody "$NB_HSYNC" sync -d "$P"
assert_contains "$HS_ERR" "refused" "sync by nobody"
expect_exit 1 as_nobody "$NB_HSYNC" status -d "$P"
expect_exit 1 as_nobody "$NB_HSYNC" export -d "$P"
assert_eq "" "$HS_OUT" "export by nobody prints nothing"
# a raw ZeroMQ client as nobody, straight to the socket
expect_exit 0 as_nobody "$SYS_PY" - "$P/ctl.sock" <<'PY'
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect("ipc://" + sys.argv[1])
for cmd in ({"cmd": "status"}, {"cmd": "remove-child", "name": "q"}, {"cmd": "leave"}):
    s.send(json.dumps(cmd).encode())
    if not s.poll(5000):
        sys.exit("no answer to %s" % cmd["cmd"])
    r = json.loads(s.recv())
    if r.get("ok") or "refused" not in r.get("error", "") or "node" in r or "links" in r:
        sys.exit("not refused: %s -> %s" % (cmd["cmd"], r))
PY
wait_for 5 hb_log_has p "event=ctl-refused"
assert_contains "$(grep -F event=ctl-refused "$(hb_log p)" | head -1)" "uid 65534" "the log names the uid"
assert_eq "$digest_before" "$(hs digest -d "$P")" "digests unchanged"
assert_eq "$links_before" "$(hb_links p)" "no child added"
assert_eq "" "$(hb_links q)" "q was not linked"
# the broker's own user is still served
expect_exit 0 hs sync -d "$P"
expect_exit 0 hs hierarchy show -d "$P"

# ---- serve refuses a folder other users can write, or another user's ----
hb_stop p
chmod 775 "$P"
expect_exit 1 timeout 20 "$HSYNC" serve -d "$P"
assert_contains "$HS_ERR" "chmod 700 $P" "serve on a group-writable folder"
chmod 700 "$P"
chmod 707 "$P/store"
expect_exit 1 timeout 20 "$HSYNC" serve -d "$P"
assert_contains "$HS_ERR" "chmod 700 $P/store" "serve on a world-writable store folder"
chmod 700 "$P/store"
chown nobody "$P"
expect_exit 1 timeout 20 "$HSYNC" serve -d "$P"
assert_contains "$HS_ERR" "chown" "serve on another user's folder"
chown root "$P"
# the help says what serve does: refuses a writable folder, tightens a readable one
expect_exit 0 "$HSYNC" serve --help
assert_contains "$HS_OUT" "it does not change those itself" "serve --help on a writable folder"
assert_contains "$HS_OUT" "such as 0755, it" "serve --help on a readable folder"
assert_not_contains "$HS_OUT" "it makes the folder 0700 and" "serve --help no longer claims to fix it"
chmod 750 "$P"
chmod 755 "$P/store"
hb_start p
assert_eq 700 "$(mode "$P")" "serve makes a 0750 folder 0700"
assert_eq 700 "$(mode "$P/store")" "serve makes a 0755 store/ 0700"
assert_eq 600 "$(mode "$P/ctl.sock")" "a restarted broker's socket is 0600 again"

# ---- init refuses a folder of another user ----
mkdir -m 700 "$HB_T/theirs"
chown nobody "$HB_T/theirs"
expect_exit 1 hs init -d "$HB_T/theirs" --name theirs
assert_contains "$HS_ERR" "belongs to uid 65534" "init in another user's folder"
hb_done
