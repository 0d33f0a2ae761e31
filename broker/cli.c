/*
 * cli.c - command table, dispatch, help and the helpers every command uses.
 *
 *   hsync [--help | help [COMMAND]]
 *   hsync COMMAND --help
 *   hsync COMMAND [-d DIR] [--json] [OPTIONS] [ARGS]
 *
 * The handlers live in broker/cli_<group>.c; see broker/cli.h.
 */
#include "broker/cli.h"

#include "store/hs_error.h"

#include <stdarg.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the command table -------------------------------------------------- */

static const broker_cli_cmd_t s_commands[] = {
    {"init", broker_cli_init, "create a node folder and its store",
     "hsync init -d DIR --name NAME [--listen tcp://HOST:PORT] [--http HOST:PORT]",
     "DESCRIPTION\n"
     "    Create the node folder DIR (like mkdir -p) and an empty store in it, and record\n"
     "    the node's identity: its secret keys go to DIR/keys (mode 0600), never into the\n"
     "    store, so a copy or dump of DIR/store carries no secret (back up both).\n"
     "    DIR is made mode 0700 even when it existed before (whatever the umask); a\n"
     "    folder of another user is refused. Refuses a folder that already holds a node.\n"
     "\n"
     "OPTIONS\n"
     "    --name NAME       node name: 1 to 64 of A-Z a-z 0-9 _ . -; unique in a hierarchy\n"
     "    --listen ADDR     where the broker accepts peers (default tcp://127.0.0.1:7600)\n"
     "    --http HOST:PORT  status page and metrics (default: listen host, listen port + 1)\n"
     "\n"
     "EXAMPLE\n"
     "    hsync init -d /var/lib/hsync/ns1 --name ns1 --listen tcp://0.0.0.0:7600\n"},
    {"put", broker_cli_put, "insert or replace one object",
     "hsync put -d DIR --class CLASS [--guid GUID] [--key NAME=VALUE]... [--imported]\n"
     "          [--resource GUID] JSON|-",
     "DESCRIPTION\n"
     "    Store one object whose body is the JSON object JSON (or read from stdin for -)\n"
     "    and print its guid. The body is stored as canonical msgpack, so key order and\n"
     "    whitespace do not change its content hash. Putting the same content again\n"
     "    changes nothing.\n"
     "\n"
     "OPTIONS\n"
     "    --class CLASS      dotted lowercase class of a known family: item.*, security.*,\n"
     "                       resource.*, dataclass.*, package, event.*, system.*, assoc.*\n"
     "    --guid GUID        replace (or create) this object; default: a new guid. A\n"
     "                       guid's class never changes: one held (or deleted) here\n"
     "                       under another class is refused\n"
     "    --key NAME=VALUE   a resource key (resource.* only); repeatable\n"
     "    --imported         source 'imported' (AD import, data connector), not 'managed'\n"
     "    --resource GUID    the resource a dataclass.* row belongs to (required for them)\n"
     "    --json             print {\"guid\":..., \"changed\":...}\n"
     "\n"
     "EXAMPLES\n"
     "    hsync put -d ns1 --class item.policy '{\"name\":\"Patch\",\"enabled\":true}'\n"
     "    hsync put -d ns1 --class resource.computer --key serial=SN1 '{\"name\":\"pc1\"}'\n"},
    {"get", broker_cli_get, "show one object", "hsync get -d DIR GUID [--json]",
     "DESCRIPTION\n"
     "    Show the object GUID: class, guid, owner, origin, change sequence, last-changed\n"
     "    time, registration time (when its guid was first put or imported on its origin\n"
     "    node: for duplicate resources, the one registered first survives), content\n"
     "    hash, source, resource keys and body. A deleted object is shown with\n"
     "    'deleted: yes' until its tombstone is purged.\n"
     "\n"
     "OPTIONS\n"
     "    --json   one JSON object: guid, class, owner, origin, seq, mtime, registered\n"
     "             (null if written before hsync 0.10), hash, imported, deleted, keys,\n"
     "             resource, body\n"},
    {"ls", broker_cli_ls, "list objects",
     "hsync ls -d DIR [--class PREFIX] [--owner NODE] [--deleted] [--json]",
     "DESCRIPTION\n"
     "    List objects in (class, guid) order, one line each: guid, class, owner and the\n"
     "    first 12 hex digits of the content hash.\n"
     "\n"
     "OPTIONS\n"
     "    --class PREFIX   only classes starting with PREFIX (e.g. resource. or item.policy)\n"
     "    --owner NODE     only objects owned by NODE\n"
     "    --deleted        include tombstones (marked 'deleted')\n"
     "    --json           a JSON array of {guid, class, owner, hash, mtime, deleted}\n"},
    {"rm", broker_cli_rm, "delete one object (leaves a tombstone)", "hsync rm -d DIR GUID",
     "DESCRIPTION\n"
     "    Delete the object GUID. A tombstone stays until every peer that needs it has\n"
     "    acknowledged it. Fails if the object does not exist or is already deleted.\n"},
    {"import", broker_cli_import, "bulk load objects from NDJSON",
     "hsync import -d DIR [--owner NODE] FILE|-",
     "DESCRIPTION\n"
     "    Load objects from FILE (or stdin for -), one JSON object a line:\n"
     "\n"
     "      {\"class\":\"resource.computer\",\"guid\":\"...\",\"keys\":{\"serial\":\"SN1\"},\n"
     "       \"imported\":false,\"body\":{...}}\n"
     "      {\"class\":\"dataclass.hardware\",\"resource\":\"<computer guid>\",\"body\":{...}}\n"
     "\n"
     "    Fields: class and body (an object) are required; guid is generated when absent;\n"
     "    keys only on resource.* lines, resource only (and always) on dataclass.* lines;\n"
     "    imported (bool), owner, origin (node names) and mtime (ISO-8601 or ms since\n"
     "    the epoch) are optional. Blank lines are skipped; any other field is an error.\n"
     "    A line whose guid this node holds (or deleted) under another class is an\n"
     "    error: a guid's class never changes. The output of 'hsync export' imports as\n"
     "    is.\n"
     "\n"
     "    Lines are read in batches of 10,000. Every line of a batch is checked before\n"
     "    any of it is written, then the batch is committed in one transaction. On a bad\n"
     "    line the import stops with 'line N: <why>': the batches before it stay\n"
     "    committed (the message says how many lines), nothing of its own batch is\n"
     "    written. Fix the line and import again: objects already stored are unchanged\n"
     "    by a second import (lines need a guid for that).\n"
     "\n"
     "    Prints 'read R written W unchanged U'.\n"
     "\n"
     "OPTIONS\n"
     "    --owner NODE   owner of lines that carry no owner (default: this node)\n"
     "    --json         print the counts as a JSON object\n"},
    {"export", broker_cli_export, "dump objects as NDJSON",
     "hsync export -d DIR [--class PREFIX] [--owner NODE]",
     "DESCRIPTION\n"
     "    Write every live object (in class, guid order) to stdout in the import format,\n"
     "    with owner, origin and mtime. 'hsync export | hsync import' into an empty node\n"
     "    gives the same digest.\n"
     "\n"
     "OPTIONS\n"
     "    --class PREFIX   only classes starting with PREFIX\n"
     "    --owner NODE     only objects owned by NODE\n"},
    {"digest", broker_cli_digest, "count and digest of the data",
     "hsync digest -d DIR [--class PREFIX] [--owner NODE] [--scan] [--json]",
     "DESCRIPTION\n"
     "    Print '<count> <hex digest>' of the live objects in scope. Equal output on two\n"
     "    nodes means they hold the same objects with the same content, whatever the\n"
     "    order they were written in. Costs O(number of classes).\n"
     "\n"
     "OPTIONS\n"
     "    --class PREFIX   only classes starting with PREFIX\n"
     "    --owner NODE     only objects owned by NODE\n"
     "    --scan           recompute by reading every object (cross-check, O(objects))\n"
     "    --json           {\"count\":N, \"digest\":\"hex\"}\n"},
    {"status", broker_cli_status, "node, links and replication state at a glance",
     "hsync status -d DIR [--json] [--ack-copy]",
     "DESCRIPTION\n"
     "    Show the node's name, listen and http addresses, live object counts per class\n"
     "    family, the change-log head (highest sequence number) and the store's size on\n"
     "    disk. Then one table, problems first (a failing run, or a link that is down\n"
     "    or unhealthy, whose rules are then 'waiting'): one row per peer (parent,\n"
     "    children, standalone destinations and sources) and rule, with the link's\n"
     "    state, the direction, whether it runs, last run (when, mode, result), next\n"
     "    run, backlog (changes in scope not yet acknowledged) and the last error.\n"
     "    Colour only on a terminal (never with NO_COLOR set). Keys, endpoints and\n"
     "    subtrees: 'hsync hierarchy show'. Without a running broker, links show as\n"
     "    recorded. Last, the\n"
     "    agent trust summaries known here: this node's and those of every node below\n"
     "    it (pending, approved, rejected and trusted agents; see 'hsync agent').\n"
     "    When the broker found at start that the node folder was copied or restored\n"
     "    (a new store epoch), a 'problem:' line says that two nodes may share this\n"
     "    node's identity, until --ack-copy.\n"
     "\n"
     "OPTIONS\n"
     "    --json       one JSON object; agent_trust is an array of {node, pending,\n"
     "                 approved, rejected, trusted, pending_agents, updated};\n"
     "                 identity_copied is the copied-folder problem, when there is one;\n"
     "                 security (with a running broker) counts refused handshakes,\n"
     "                 HTTP and pending peer-port connections: {handshakes_refused,\n"
     "                 http_connections, peer_connections_pending, ...}\n"
     "    --ack-copy   dismiss the copied-folder problem (once you made sure only one\n"
     "                 node runs with this identity) and print nothing else\n"},
    {"serve", broker_cli_serve, "run the broker in the foreground", "hsync serve -d DIR",
     "DESCRIPTION\n"
     "    Run the node's broker until SIGINT or SIGTERM, which stop it cleanly (the\n"
     "    current transaction finishes). It listens for other brokers on the node's\n"
     "    listen address (CURVE-encrypted, only trusted keys admitted), for this\n"
     "    command line on DIR/ctl.sock, dials its children, sends heartbeats on every\n"
     "    link and reconnects with backoff. One line per event on stderr:\n"
     "        TIME level=LEVEL peer=NAME event=WORD msg=\"...\"\n"
     "    What a peer can repeat at will (refused handshakes, HTTP connections\n"
     "    closed) is logged once per 10 s with a count. At start it raises its\n"
     "    soft limit of open descriptors to the hard one (event=descriptors).\n"
     "    Only one broker runs per node folder.\n"
     "\n"
     "    Like OpenSSH's StrictModes, it refuses to start on a node folder (or its\n"
     "    store/) that belongs to another user or that its group or other users can\n"
     "    write, and says what to chmod or chown (it does not change those itself).\n"
     "    A folder (or store/) that others may only read or enter, such as 0755, it\n"
     "    makes 0700; it makes DIR/ctl.sock 0600 whatever the umask. Commands on\n"
     "    DIR/ctl.sock are taken only from the broker's own user and root (the\n"
     "    kernel's peer credentials of the connection); others are refused and\n"
     "    logged (event=ctl-refused).\n"
     "\n"
     "HTTP\n"
     "    On the node's http address (hsync init --http; default listen host, listen\n"
     "    port + 1) it serves plain HTTP, no TLS (keep it on loopback or behind a\n"
     "    proxy):\n"
     "        /             status page: hierarchy, links, rules, runs, events\n"
     "        /api/status   the same as JSON\n"
     "        /metrics      Prometheus text: hsync_objects, hsync_log_head,\n"
     "                      hsync_backlog, hsync_runs_total, hsync_run_duration_seconds,\n"
     "                      hsync_run_bytes_total, hsync_event_outbox, ... (README)\n"
     "    If that port is taken it logs event=http-failed and replicates without it.\n"
     "    At most 256 connections at once (fewer under a low descriptor limit): a\n"
     "    new one closes the one idle longest; one that sends no whole request\n"
     "    within 5 s of its accept or last request is closed.\n"
     "\n"
     "EXAMPLE\n"
     "    hsync serve -d /var/lib/hsync/ns1 2>>/var/log/hsync-ns1.log &\n"
     "    curl -s http://127.0.0.1:7601/metrics\n"},
    {"invite", broker_cli_invite, "print a one-time token for linking a node to this one",
     "hsync invite -d DIR [--ttl SECONDS] [--json]",
     "DESCRIPTION\n"
     "    Issue a one-time invite token naming this node, its listen address and its\n"
     "    public key, MAC'd with this node's secret token key. Give it to the admin of\n"
     "    the node that is to become this node's parent, who runs\n"
     "    'hsync hierarchy add-child -d PARENT TOKEN'. The token works once and expires\n"
     "    (default after 3600 s). While a token is outstanding, unknown keys may\n"
     "    connect, but they can do nothing except present it.\n"
     "\n"
     "OPTIONS\n"
     "    --ttl SECONDS   lifetime of the token (1 to 2592000; default 3600)\n"
     "    --json          {\"token\":..., \"node\":..., \"endpoint\":..., \"expires\":...}\n"},
    {"hierarchy", broker_cli_hierarchy, "link, unlink and show parent and children",
     "hsync hierarchy add-child -d DIR [--allow-more-children] TOKEN\n"
     "       hsync hierarchy remove-child -d DIR NAME\n"
     "       hsync hierarchy leave -d DIR\n"
     "       hsync hierarchy show -d DIR [--json]",
     "DESCRIPTION\n"
     "    add-child (on the parent; TOKEN from 'hsync invite' on the child): the\n"
     "        parent's broker dials the child, presents the token, both check the\n"
     "        topology rules and record the link and each other's key. Refused: a\n"
     "        second parent, a cycle at any depth, the node itself, a seventh child\n"
     "        (unless --allow-more-children, which warns), a used, expired, foreign\n"
     "        or tampered token. A refusal changes nothing on either node.\n"
     "        Node names are unique across the whole hierarchy: the child's name and\n"
     "        every name below it are checked here and then by the root (asked up\n"
     "        the tree; only it knows every name). A name in use is refused with\n"
     "        where it is used; the child's link is undone, and its token is spent\n"
     "        (ask it for a new invite once the name is changed).\n"
     "    remove-child NAME (on the parent) and leave (on the child) undo the link\n"
     "        on both sides and revoke the other side's key. The former parent, and\n"
     "        every ancestor that no longer has those nodes below it, drops the\n"
     "        resources, data-class rows and trust summaries it held for that branch.\n"
     "    show: this node, its ancestors, its children and their subtrees as they\n"
     "        report them, each link's state (up, down, joining), when it was last\n"
     "        heard from and its key fingerprint. A child never learns its siblings.\n"
     "    All but show need the running broker.\n"
     "\n"
     "EXAMPLE\n"
     "    token=$(hsync invite -d child1)\n"
     "    hsync hierarchy add-child -d parent \"$token\"\n"},
    {"rule", broker_cli_rule, "list, show, enable, disable and tune replication rules",
     "hsync rule ls -d DIR [--json]\n"
     "       hsync rule show|enable|disable -d DIR NAME [--json]\n"
     "       hsync rule set -d DIR NAME [--every DURATION] [--complete-every DURATION]\n"
     "                      [--verify PERCENT] [--dataclass NAME]...",
     "DESCRIPTION\n"
     "    Hierarchy replication rules say what flows between a node and its parent and\n"
     "    children, which way, and how often. Every node starts with the defaults:\n"
     "        items      item.*                down     differential by content hash\n"
     "        security   security.*            down     always complete\n"
     "        resources  resource.* dataclass.* up+down differential by last change\n"
     "        packages   package               down     differential by content hash\n"
     "        events     event.*               up+down  (disabled)\n"
     "        associations assoc.*             down     differential by content hash\n"
     "        system     system.*              HEP settings down, agent trust summaries up\n"
     "    each differential daily and complete monthly. item.server_job never\n"
     "    replicates; imported resources never go up. A disabled rule moves nothing and\n"
     "    keeps its settings and watermarks; enable brings it back as it was. Changes\n"
     "    take effect at the broker's next tick (250 ms), no restart needed.\n"
     "\n"
     "OPTIONS (set)\n"
     "    --every DURATION           differential interval: 500ms, 10s, 5m, 1h, 1d...\n"
     "    --complete-every DURATION  complete interval\n"
     "    --verify PERCENT           share of data verified per run (resources)\n"
     "    --dataclass NAME           carry only these data classes (repeatable; replaces\n"
     "                               the list)\n"},
    {"sync", broker_cli_sync, "run replication now and wait for it",
     "hsync sync -d DIR [--peer NAME] [--rule NAME] [--direction up|down]\n"
     "           [--complete|--reconcile] [--dry-run] [--timeout S] [--json]",
     "DESCRIPTION\n"
     "    Run every enabled rule with every linked peer now (or only --peer, --rule),\n"
     "    in both directions: this node sends where it is the source and asks the\n"
     "    peer to send where it receives. Waits for every run and prints one line per\n"
     "    run: the mode actually used and why (differential after a watermark, complete\n"
     "    because first run, requested, scheduled, always-complete rule, or resuming an\n"
     "    interrupted run), objects sent, applied, skipped (unchanged or older), deleted,\n"
     "    bytes on the wire and time. Exit status 1 if any run failed.\n"
     "    Within 10 s of the broker's start, links not up yet are waited for (within\n"
     "    those 10 s) rather than reported down.\n"
     "    On a terminal one line on stderr follows the runs as they finish: runs,\n"
     "    objects and bytes done, rate, time left; nothing with --json or when\n"
     "    stdout or stderr is not a terminal.\n"
     "\n"
     "OPTIONS\n"
     "    --peer NAME    only the link to NAME\n"
     "    --rule NAME    only this rule\n"
     "    --direction D  only runs toward the parent (up) or the children (down)\n"
     "    --complete     complete runs (the destination ends up with exactly the source's\n"
     "                   scope) instead of differential ones\n"
     "    --reconcile    compare bucketed hashes of both sides and exchange only the\n"
     "                   objects of differing buckets (what a node restored from an old\n"
     "                   copy, or back after a long absence, gets by itself)\n"
     "    --dry-run      say what this node would send (mode, objects, estimated bytes)\n"
     "                   without sending\n"
     "    --timeout S    stop waiting after S seconds (default 3600); runs go on\n"},
    {"history", broker_cli_history, "past replication runs",
     "hsync history -d DIR [--limit N] [--json]",
     "DESCRIPTION\n"
     "    Past runs, newest first, sent and received: when, peer, rule, mode and why,\n"
     "    counts, bytes, time and result. The node keeps the last 2000. A node\n"
     "    restored from an older copy of its folder first takes back from its parent\n"
     "    what it owns and lost (mode recover): its result says 'recovered N'.\n"
     "\n"
     "OPTIONS\n"
     "    --limit N   show at most N runs (default 50)\n"},
    {"trace", broker_cli_trace, "one object here and where it was sent and acknowledged",
     "hsync trace -d DIR GUID [--json]",
     "DESCRIPTION\n"
     "    Show the object GUID as this node holds it: class, content hash, change\n"
     "    sequence (seq), last change, owner and origin. Then, for every adjacent\n"
     "    peer (parent, children) and every rule carrying its class, one line:\n"
     "      acknowledged  in the rule's scope and seq <= the watermark the peer\n"
     "                    acknowledged: it was sent and acknowledged at or before\n"
     "                    the last successful run (LAST OK RUN, from the history)\n"
     "      pending       in scope, not acknowledged yet: the next run carries it\n"
     "      refused       sent, and the peer would not take it (WHY says why, e.g.\n"
     "                    it holds that guid under another class); the run failed\n"
     "      out of scope  the rule never sends it that way (e.g. a child's own data\n"
     "                    back to it, or to its siblings)\n"
     "      not carried   the rule or the object's family does not go that way\n"
     "    Works from the store alone: no broker needs to run.\n"
     "\n"
     "OPTIONS\n"
     "    --json   {guid, class, hash, seq, mtime, owner, origin, deleted,\n"
     "              peers: [{peer, role, rule, direction, state, watermark,\n"
     "                       last_ok_run, why}]}\n"
     "\n"
     "EXAMPLE\n"
     "    hsync trace -d /srv/hsync/parent 01a228a2-6786-7273-be9c-f62e8a3ffcc4\n"},
    {"replicate-now", broker_cli_replicate_now, "push one object to the adjacent nodes now",
     "hsync replicate-now -d DIR GUID [--json]",
     "DESCRIPTION\n"
     "    Push the object GUID, with what it depends on (every object its body names by\n"
     "    guid, two levels deep: a policy's filter, package and software; a role's\n"
     "    privileges), to every adjacent node its class may flow to, up or down,\n"
     "    without waiting for the schedule. Waits for each node's acknowledgement and\n"
     "    prints where it went. A node that is down gets it with its next run.\n"},
    {"emergency", broker_cli_emergency, "emergency software delivery to every descendant",
     "hsync emergency -d DIR POLICY-GUID [--json]",
     "DESCRIPTION\n"
     "    Push a policy, its software resources and its package record (what its body\n"
     "    names by guid) down to every child at once; each child applies it and passes\n"
     "    it on to its own children and acknowledges once they have (each hop waits\n"
     "    a little less than the one above it, 10 s at the top), so it reaches every\n"
     "    descendant hop by hop. Prints each child's acknowledgement, then the nodes\n"
     "    below that applied it (reached) and every one that did not acknowledge (not\n"
     "    reached: down, or no answer in time); --json lists them as reached and\n"
     "    not_reached. Exits 1 when any node did not acknowledge (its scheduled runs\n"
     "    carry the policy when it is back).\n"},
    {"verify", broker_cli_verify, "is every node below in sync with its parent, rule by rule",
     "hsync verify -d DIR [--repair] [--timeout S] [--json]",
     "DESCRIPTION\n"
     "    Ask every node below this one, hop by hop down the hierarchy, whether it\n"
     "    holds what its parent holds for it: for every enabled rule and each way it\n"
     "    flows (down from the parent, up to it), the parent sends its side of the\n"
     "    link's scope (object count, a hash of the bucket hashes a reconcile\n"
     "    compares, and count and hash per owner) and the node compares its own,\n"
     "    then asks its children the same. Prints, per node and rule, \"in sync\" or\n"
     "    which direction differs, for which owners, with the object count on each\n"
     "    side. A node that is down, or does not answer in time, is listed as NOT\n"
     "    REACHED with its subtree; the command returns within its deadline.\n"
     "    The last verdict per node is shown by 'hsync status' (verify) and on the\n"
     "    status page. Objects whose editable properties (hsync hep) were edited\n"
     "    below count as differing.\n"
     "\n"
     "OPTIONS\n"
     "    --repair      each node also reconciles the scopes that differ (hsync sync\n"
     "                  --reconcile for that rule on that link) and says what it\n"
     "                  repaired; then the command verifies again, repairing what\n"
     "                  still differs (a link above can take a copy a link below\n"
     "                  was still repairing), at most 3 rounds, and prints the first\n"
     "                  verdicts and the last\n"
     "    --timeout S   deadline in seconds (default 10, 60 with --repair); each hop\n"
     "                  below waits 1.5 s less than the one above it\n"
     "\n"
     "EXAMPLES\n"
     "    hsync verify -d /srv/hsync/root\n"
     "    hsync verify -d /srv/hsync/root --repair --json\n"
     "\n"
     "    Exit status here: 0 every node below in sync, 1 a scope differs or a node\n"
     "    was not reached (after --repair: still differs), 2 usage error.\n"},
    {"standalone", broker_cli_standalone, "one-way replication to servers outside the hierarchy",
     "hsync standalone add -d DIR --name NAME --to TOKEN... --class PREFIX...\n"
     "                     [--dataclass NAME]... [--complete] [--every DURATION]\n"
     "                     [--complete-every DURATION] [--target CLASS [--where NAME=VALUE]...]\n"
     "                     [--force] [--json]\n"
     "       hsync standalone ls -d DIR [--json]\n"
     "       hsync standalone show|enable|disable|rm -d DIR NAME [--json]\n"
     "       hsync standalone unlink -d DIR DESTINATION",
     "DESCRIPTION\n"
     "    A standalone rule feeds the classes it lists one way from this node to one or\n"
     "    more destinations that need not be in its hierarchy, for example an agent-facing\n"
     "    server feeding resource inventory to a reporting server. TOKEN comes from\n"
     "    'hsync invite' on each destination; 'add' links it (the running broker dials it,\n"
     "    the destination records this node as a source and never sends anything back).\n"
     "    The rule carries everything of its classes here, what this node received from\n"
     "    elsewhere included, so chains work (A to B, B to C). The destination takes what\n"
     "    arrives: no conflict prevention, no merges. Runs use the hierarchy's engine:\n"
     "    differential from the acknowledged watermark, or complete (the destination then\n"
     "    removes what this node no longer has); the first run to a destination is\n"
     "    complete; a destination that was offline catches up at the next run. Rules\n"
     "    appear in 'hsync status' with their watermark, last and next run and backlog.\n"
     "\n"
     "    Checks when adding: a rule carrying security roles without their privileges is\n"
     "    refused (unless --force); packages between two nodes of the same software\n"
     "    version are refused; a destination that is this node's parent or child is\n"
     "    refused, and one elsewhere in its hierarchy is warned about (use hierarchy\n"
     "    rules there).\n"
     "\n"
     "    'rm' removes a rule and unlinks each of its destinations that no other\n"
     "    standalone rule sends to (the destination forgets this source; what it\n"
     "    received stays; 'rm' exits 1 if one could not be unlinked). 'unlink' removes\n"
     "    such a link by hand once the broker runs again, for example after an 'rm'\n"
     "    made while it was down.\n"
     "\n"
     "OPTIONS\n"
     "    --name NAME              rule name (a-z 0-9 _ -; unique among all rules)\n"
     "    --to TOKEN               a destination's invite; repeatable (up to 8)\n"
     "    --class PREFIX           item.*, security.*, resource.*, dataclass.*, package,\n"
     "                             event.* prefixes; repeatable\n"
     "    --dataclass NAME         carry only these data classes; repeatable\n"
     "    --complete               always replicate complete sets\n"
     "    --every DURATION         differential interval (default 1d)\n"
     "    --complete-every DURATION complete interval (default 30d)\n"
     "    --target CLASS           resource target: only resources of CLASS ...\n"
     "    --where NAME=VALUE       ... whose key or body property NAME is VALUE, and their\n"
     "                             data-class rows; repeatable; the current members go\n"
     "    --force                  create a rule that fails a scope check that allows it\n"
     "\n"
     "EXAMPLE\n"
     "    tok=$(hsync invite -d reporting)\n"
     "    hsync standalone add -d ns1 --name inventory --to \"$tok\" \\\n"
     "        --class resource. --class dataclass. --every 1h\n"},
    {"hep", broker_cli_hep, "hierarchy editable properties: what a child may change",
     "hsync hep set -d DIR (GUID|CLASS) PROPERTY editable|locked [--json]\n"
     "       hsync hep ls -d DIR [--json]",
     "DESCRIPTION\n"
     "    Items, security records and packages replicate down, and the copy from above\n"
     "    overwrites the child's: every property is locked below. 'hep set' on the node\n"
     "    where data is managed marks one top-level body PROPERTY of one object (GUID)\n"
     "    or of a whole CLASS editable (or locked again) on every node below. A setting\n"
     "    for a guid overrides one for its class. The setting is a system.hep record that\n"
     "    travels down with rule 'system' at its next run.\n"
     "\n"
     "    Below, 'hsync put' of a replicated object that changes a locked property, and\n"
     "    'hsync rm' of one, are refused with the property and the node to ask. An edit\n"
     "    of editable properties is kept: later differential and complete runs bring\n"
     "    every other property from above and leave the edited ones as they are\n"
     "    ('hsync get' lists them as edited here). When the property is locked again,\n"
     "    the next copy from above replaces the local value.\n"
     "\n"
     "    Primary-user associations (assoc.*) are never editable below.\n"
     "\n"
     "    ls lists the settings known here: set on this node and received from above.\n"
     "\n"
     "EXAMPLES\n"
     "    hsync hep set -d parent 0190c2d4-7a1e-7c3b-9f1a-2b3c4d5e6f70 enabled editable\n"
     "    hsync hep set -d parent item.policy schedule editable\n"
     "    hsync hep ls -d child1\n"},
    {"events", broker_cli_events, "hierarchy events raised and received, with delivery state",
     "hsync events -d DIR [--limit N] [--json]",
     "DESCRIPTION\n"
     "    Hierarchy events, newest first: resource merges, agents moved or purged,\n"
     "    agent trust changes, key or certificate changes, alerts and sync problems.\n"
     "    Each shows where it was raised (origin), whether it was raised here or\n"
     "    received (and from which peer), its payload, and for every peer it was\n"
     "    queued for: queued, sent or acknowledged, with the number of attempts.\n"
     "    Events go out at once, hop by hop, and are retried until acknowledged;\n"
     "    a receiver applies each once whatever the retries.\n"
     "\n"
     "OPTIONS\n"
     "    --limit N   at most N events (default 100)\n"},
    {"event", broker_cli_event, "raise a hierarchy event by hand",
     "hsync event raise -d DIR KIND [JSON]",
     "DESCRIPTION\n"
     "    Raise an event of KIND on this node with the JSON object as payload; it is\n"
     "    queued durably for every adjacent node its kind travels to and sent at\n"
     "    once by the broker. Kinds and where they go:\n"
     "        merge, moved, purged   up to the root and down every other branch\n"
     "        key                    down the subtree\n"
     "        trust, alert, sync-problem   up to the root\n"
     "    Prints the event id.\n"
     "\n"
     "EXAMPLE\n"
     "    hsync event raise -d ns1 alert '{\"text\":\"disk 95% "
     "full\",\"severity\":\"warning\"}'\n"},
    {"agent", broker_cli_agent, "agent registration requests and this node's trust summary",
     "hsync agent request -d DIR NAME [--json]\n"
     "       hsync agent approve|reject -d DIR ID [--json]\n"
     "       hsync agent ls -d DIR [--json]",
     "DESCRIPTION\n"
     "    Agents register with one node; only that node decides whether to trust them.\n"
     "    request NAME records a registration request (class system.agent, state\n"
     "        pending) and prints its id.\n"
     "    approve ID, reject ID decide on a request of this node (a decided request\n"
     "        may be decided again: approve a rejected agent, or reject an approved one).\n"
     "    ls lists this node's requests: id, agent name, state, when requested and\n"
     "        decided.\n"
     "    Every change recomputes, in the same transaction, this node's trust summary\n"
     "    (class system.trust: pending, approved, rejected, trusted and up to 50\n"
     "    pending agents) and raises a trust event. Both go up to the parent and on to\n"
     "    the root, at once when the broker runs (the event) and with the 'system' rule\n"
     "    (the summary); requests themselves never leave the node. 'hsync status'\n"
     "    shows the summaries of this node and every node below it.\n"
     "    A parent sees its children's pending agents but cannot approve or reject\n"
     "    them: an ID from a child's summary is refused with the name of the node to\n"
     "    do it on.\n"
     "\n"
     "OPTIONS\n"
     "    --json   request: {id, name, state}; approve/reject: {id, name, state,\n"
     "             changed}; ls: an array of {id, name, state, requested, decided}\n"
     "             (times in ms since the epoch, decided null while pending)\n"
     "\n"
     "EXAMPLE\n"
     "    id=$(hsync agent request -d ns1 laptop-042)\n"
     "    hsync agent approve -d ns1 \"$id\"\n"},
    {"package", broker_cli_package, "where a package is downloaded from",
     "hsync package locate -d DIR GUID [--json]",
     "DESCRIPTION\n"
     "    A package object (class package; body name, version and codebase, the\n"
     "    download URL on the node that published it) replicates down the hierarchy.\n"
     "    The package servers of a node that received it are redirected to its\n"
     "    parent, which serves it or redirects in turn, up to the publishing node.\n"
     "    locate GUID says where this node gets the package from: on the publishing\n"
     "    node, its codebase; elsewhere, the origin node and its codebase, the path\n"
     "    from the origin down to this node, and the parent this node redirects to:\n"
     "        package GUID (NAME VERSION): from ORIGIN at CODEBASE; this node (C)\n"
     "        redirects to its parent P\n"
     "\n"
     "OPTIONS\n"
     "    --json   {guid, name, version, codebase, origin, node, published_here,\n"
     "             redirect_to (the parent, or null), path (origin ... this node)}\n"},
    /*
     * Later commands go here, one row each, handlers in their own files (see
     * broker/cli.h): serve, invite, hierarchy, rule, standalone, hep, sync,
     * replicate-now, emergency, history, events, trace.
     */
};

#define S_NCOMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static const broker_cli_cmd_t *s_find(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (!strcmp(s_commands[i].name, name))
            return &s_commands[i];
    return NULL;
}

/* ---- help ----------------------------------------------------------------- */

static void s_help_main(FILE *f)
{
    fprintf(f, "NAME\n"
               "    hsync - hierarchical replication and sync broker\n"
               "\n"
               "SYNOPSIS\n"
               "    hsync COMMAND [-d DIR] [--json] [OPTIONS] [ARGS]\n"
               "    hsync COMMAND --help\n"
               "    hsync help [COMMAND]\n"
               "\n"
               "DESCRIPTION\n"
               "    hsync keeps a node's replicated data (objects: guid, class, body) in an\n"
               "    LMDB store inside the node folder DIR and replicates it with the node's\n"
               "    parent and children: on schedules, at once for urgent changes, encrypted\n"
               "    and authenticated, resuming where a cut-off run stopped.\n"
               "\n"
               "COMMANDS\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(f, "    %-14s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(f, "\n"
               "COMMON OPTIONS\n"
               "    -d, --dir DIR   the node folder (default: $HSYNC_DIR)\n"
               "    --json          machine-readable output (inspecting commands)\n"
               "    -h, --help      help for the command\n"
               "\n"
               "ENVIRONMENT\n"
               "    HSYNC_DIR        node folder when -d is not given\n"
               "    HSYNC_MAP_SIZE   initial size of the store's memory map in bytes\n"
               "                     (default 64 GiB of address space); it doubles when full\n"
               "    HSYNC_MAP_MAX    largest map size in bytes (default 1 TiB of address\n"
               "                     space; disk use follows the data)\n"
               "    HSYNC_TOMBSTONE_LIFETIME  (serve) how long deletes are kept for peers\n"
               "                     that are away: 30d by default; peers away longer are\n"
               "                     reconciled\n"
               "    HSYNC_DEGRADED_AFTER, HSYNC_FAILED_AFTER  (serve) consecutive failed runs\n"
               "                     after which a link is degraded (3) or failed (10)\n"
               "\n"
               "EXIT STATUS\n"
               "    0   success\n"
               "    1   failure (the message on stderr says why and what to do)\n"
               "    2   usage error (unknown command or option, missing argument)\n");
}

static void s_help_cmd(FILE *f, const broker_cli_cmd_t *cmd)
{
    fprintf(f, "NAME\n    hsync %s - %s\n\nSYNOPSIS\n    %s\n\n%s", cmd->name, cmd->summary,
            cmd->synopsis, cmd->help);
    fprintf(f,
            "\nCOMMON OPTIONS\n"
            "    -d, --dir DIR   the node folder (default: $HSYNC_DIR)\n"
            "    -h, --help      this text\n"
            "\nEXIT STATUS\n"
            "    0 success, 1 failure, 2 usage error; output cut off by a closed pipe\n"
            "    (hsync ls | head -1) is a normal stop: the command ends its read and exits 0\n");
}

/* ---- reporting -------------------------------------------------------------- */

int broker_cli_fail(broker_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "hsync: %s: ", c->cli_cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BROKER_CLI_FAIL;
}

int broker_cli_usage(broker_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "hsync: %s: ", c->cli_cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n(see 'hsync %s --help')\n", c->cli_cmd->synopsis,
            c->cli_cmd->name);
    return BROKER_CLI_USAGE;
}

bool broker_cli_output_gone(void)
{
    if (errno == EPIPE)
        return true;
    struct pollfd p = {.fd = STDOUT_FILENO, .events = 0, .revents = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

const char *broker_cli_why(int err)
{
    switch (err) {
    case HS_ECLASS:
        return "unknown or invalid class (use a dotted lowercase name of a known family: "
               "item.*, security.*, resource.*, dataclass.*, package, event.*, system.*, assoc.*)";
    case HS_EGUID:
        return "not a guid (expected 8-4-4-4-12 hex digits, "
               "e.g. 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b)";
    case HS_ETOOBIG:
        return "too big (a body is at most 1 MiB of msgpack, resource keys at most 4 KiB)";
    case HS_EMAPFULL:
        return "the store is full and could not grow (raise HSYNC_MAP_MAX or free disk space)";
    case HS_ENOSPC:
        return "no space left on the disk holding the node folder (free some and retry)";
    case HS_EACCES:
        return "permission denied on the node folder (run as the user that owns it)";
    case HS_ESTORE:
        return "the store could not be read or written (LMDB failure; check the node "
               "folder's disk and permissions)";
    case HS_EIO:
        return "I/O error on the node folder's disk";
    case HS_ENOMEM:
        return "out of memory";
    case HS_ENOBROKER:
        return "no broker is running for this node (start it with 'hsync serve -d DIR')";
    case HS_EMALF:
        return "malformed data";
    default:
        return hs_strerror(err);
    }
}

/* ---- option parsing -------------------------------------------------------- */

int broker_cli_opt(broker_cli_t *c, int argc, char **argv, const struct option *longopts)
{
    opterr = 0;
    for (;;) {
        int idx = -1;
        int o = getopt_long(argc, argv, ":d:h", longopts, &idx);
        switch (o) {
        case -1:
            return BROKER_CLI_END;
        case 'd':
            if (!*optarg) {
                c->cli_status = broker_cli_usage(c, "-d needs a folder");
                return BROKER_CLI_STOP;
            }
            c->cli_dir = optarg;
            continue;
        case 'J':
            c->cli_json = true;
            continue;
        case 'h':
            s_help_cmd(stdout, c->cli_cmd);
            c->cli_status = BROKER_CLI_OK;
            return BROKER_CLI_STOP;
        case ':': /* argv[optind - 1] is the option as typed */
            c->cli_status = broker_cli_usage(c, "option '%s' needs a value", argv[optind - 1]);
            return BROKER_CLI_STOP;
        case '?':
            if (optopt)
                c->cli_status = broker_cli_usage(c, "unknown option '-%c'", optopt);
            else
                c->cli_status = broker_cli_usage(c, "unknown option '%s'", argv[optind - 1]);
            return BROKER_CLI_STOP;
        default:
            return o;
        }
    }
}

int broker_cli_need_dir(broker_cli_t *c)
{
    if (!c->cli_dir) {
        const char *env = getenv("HSYNC_DIR");
        if (env && *env)
            c->cli_dir = env;
    }
    if (!c->cli_dir)
        return broker_cli_usage(c, "no node folder given (use -d DIR or set HSYNC_DIR)");
    return BROKER_CLI_OK;
}

int broker_cli_open(broker_cli_t *c, store_t **s)
{
    int err = store_open(c->cli_dir, 0, s);
    if (err == HS_OK)
        return BROKER_CLI_OK;
    if (err == HS_ENOENT || err == HS_ENOTNODE)
        return broker_cli_fail(c,
                               "%s is not an hsync node folder (run 'hsync init -d %s --name "
                               "NAME' first)",
                               c->cli_dir, c->cli_dir);
    return broker_cli_fail(c, "cannot open the store in %s: %s", c->cli_dir, broker_cli_why(err));
}

int broker_cli_slurp(broker_cli_t *c, const char *path, size_t max, char **out, size_t *len)
{
    bool std = !strcmp(path, "-");
    FILE *f = std ? stdin : fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (!f)
        return broker_cli_fail(c, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = BROKER_CLI_OK;
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > max + 1) {
                rc =
                    broker_cli_fail(c, "%s is too big (over %zu bytes)", std ? "stdin" : path, max);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                rc =
                    broker_cli_fail(c, "cannot read %s: %s", std ? "stdin" : path, strerror(errno));
            break;
        }
    }
    if (!std)
        fclose(f);
    if (!buf)
        return broker_cli_fail(c, "%s", broker_cli_why(HS_ENOMEM));
    if (rc == BROKER_CLI_OK && n > max)
        rc = broker_cli_fail(c, "%s is too big (over %zu bytes)", std ? "stdin" : path, max);
    if (rc != BROKER_CLI_OK) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return BROKER_CLI_OK;
}

/* ---- time ---------------------------------------------------------------- */

void broker_cli_time_format(uint64_t ms, char out[32])
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, 32, "%llu", (unsigned long long)ms);
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

static int s_digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return -1;
        *v = *v * 10 + (ch - '0');
    }
    *p += n;
    return 0;
}

int broker_cli_time_parse(const char *s, uint64_t *ms)
{
    int y, mo, d, h, mi, se, frac = 0;
    const char *p = s;
    if (s_digits(&p, 4, &y) || *p++ != '-' || s_digits(&p, 2, &mo) || *p++ != '-' ||
        s_digits(&p, 2, &d) || *p++ != 'T' || s_digits(&p, 2, &h) || *p++ != ':' ||
        s_digits(&p, 2, &mi) || *p++ != ':' || s_digits(&p, 2, &se))
        return HS_EINVAL;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac = frac * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0)
            return HS_EINVAL;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (*p++ != 'Z' || *p != '\0')
        return HS_EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return HS_EINVAL;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (t < 0)
        return HS_EINVAL;
    *ms = (uint64_t)t * 1000u + (uint64_t)frac;
    return HS_OK;
}

/* ---- dispatch -------------------------------------------------------------- */

int broker_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "hsync: no command given\nusage: hsync COMMAND [-d DIR] [OPTIONS] "
                        "[ARGS]\n(see 'hsync --help')\n");
        return BROKER_CLI_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            const broker_cli_cmd_t *cmd = s_find(argv[2]);
            if (!cmd) {
                fprintf(stderr, "hsync: help: unknown command '%s' (see 'hsync --help')\n",
                        argv[2]);
                return BROKER_CLI_USAGE;
            }
            s_help_cmd(stdout, cmd);
            return BROKER_CLI_OK;
        }
        s_help_main(stdout);
        return BROKER_CLI_OK;
    }
    const broker_cli_cmd_t *cmd = s_find(name);
    if (!cmd) {
        fprintf(stderr, "hsync: unknown command '%s' (see 'hsync --help')\n", name);
        return BROKER_CLI_USAGE;
    }
    broker_cli_t c = {.cli_cmd = cmd};
    optind = 0; /* full getopt reinitialisation (glibc) */
    /* a reader that closes the pipe (| head) is not a reason to die inside a
     * read transaction: writes fail with EPIPE instead, and the command stops */
    signal(SIGPIPE, SIG_IGN);
    int rc = cmd->run(&c, argc - 1, argv + 1);
    if (fflush(stdout) != 0 && rc == BROKER_CLI_OK && !broker_cli_output_gone())
        rc = broker_cli_fail(&c, "cannot write the output: %s", strerror(errno));
    return rc;
}

int broker_cli_number(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max)
        return HS_EINVAL;
    *out = v;
    return HS_OK;
}
