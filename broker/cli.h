/*
 * cli.h - the hsync command line: one table of commands, shared helpers.
 *
 * `hsync COMMAND [OPTIONS] [ARGS]` looks COMMAND up in the table in
 * broker/cli.c (s_commands[]). Each entry carries the handler, a one-line
 * summary (listed by `hsync --help`), the synopsis and the full man-page style
 * help (`hsync COMMAND --help`, `hsync help COMMAND`). The table drives
 * dispatch, usage messages and the help text, so adding a command is: write
 * its handler in its own file (broker/cli_<group>.c), declare it below, add
 * one row to the table.
 *
 * Contract with the user (SPEC "Command line"):
 *   - `-d DIR` (or HSYNC_DIR) names the node folder; `--json` asks for JSON;
 *   - errors go to stderr as "hsync: <command>: <why>", where why says what
 *     to do about it;
 *   - exit status BROKER_CLI_OK (0) success, BROKER_CLI_FAIL (1) failure,
 *     BROKER_CLI_USAGE (2) the command line itself is wrong (unknown command
 *     or option, missing or extra argument).
 *
 * Handlers parse their options with broker_cli_opt() (getopt_long with the
 * common options -d/--dir, --json and -h/--help handled for them), print
 * through the helpers below and return the exit status. Deep code never
 * prints; handlers turn hs_error codes into sentences with broker_cli_why().
 */
#ifndef BROKER_CLI_H
#define BROKER_CLI_H

#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#define BROKER_CLI_OK 0
#define BROKER_CLI_FAIL 1
#define BROKER_CLI_USAGE 2

typedef struct broker_cli_cmd broker_cli_cmd_t;

/* State of one command invocation (shared by the cli_*.c files). */
typedef struct broker_cli {
    const broker_cli_cmd_t *cli_cmd; /* the command being run */
    const char *cli_dir;             /* -d DIR, else $HSYNC_DIR, else NULL */
    bool cli_json;                   /* --json */
    int cli_status;                  /* exit status once broker_cli_opt returns _STOP */
} broker_cli_t;

/* A command handler: argv[0] is the command name; returns the exit status. */
typedef int (*broker_cli_fn)(broker_cli_t *c, int argc, char **argv);

struct broker_cli_cmd {
    const char *name;     /* "put" */
    broker_cli_fn run;    /* handler */
    const char *summary;  /* one line for the COMMANDS list */
    const char *synopsis; /* "hsync put -d DIR --class CLASS ... JSON|-" */
    const char *help;     /* DESCRIPTION, OPTIONS, EXAMPLES... (man-page body) */
};

/* Entry point (broker/main.c): dispatch argv[1] through the table. */
int broker_cli_main(int argc, char **argv);

/* ---- option parsing ----------------------------------------------------- */

/* Long options every command understands; end a command's table with it. */
#define BROKER_CLI_COMMON_OPTIONS                                                                  \
    {"dir", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'J'},                       \
        {"help", no_argument, NULL, 'h'},                                                          \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

#define BROKER_CLI_END (-1)  /* no more options; positional args from optind */
#define BROKER_CLI_STOP (-2) /* help printed or usage error: return c->cli_status */

/*
 * Next command-specific option (its val from longopts, optarg set as usual).
 * Handles -d/--dir, --json and -h/--help itself; prints the error for an
 * unknown option or a missing argument. Returns the option value,
 * BROKER_CLI_END or BROKER_CLI_STOP. Call with the handler's argc/argv;
 * options and arguments may be mixed (GNU permutation).
 */
int broker_cli_opt(broker_cli_t *c, int argc, char **argv, const struct option *longopts);

/* ---- reporting ---------------------------------------------------------- */

/* "hsync: <cmd>: <message>" on stderr; returns BROKER_CLI_FAIL. */
int broker_cli_fail(broker_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when the standard output's reader went away (a closed pipe: `hsync ls
 * | head -1`). Call after a failed write. The command line ignores SIGPIPE:
 * such a command stops reading, ends its transaction and exits 0, quietly. */
bool broker_cli_output_gone(void);

/* The same plus the synopsis and a pointer to --help; returns BROKER_CLI_USAGE. */
int broker_cli_usage(broker_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A sentence for an hs_error code that tells the user what to do. Static. */
const char *broker_cli_why(int err);

/* ---- common steps ------------------------------------------------------- */

/* Require a node folder (-d or HSYNC_DIR): BROKER_CLI_OK or (printed)
 * BROKER_CLI_USAGE. */
int broker_cli_need_dir(broker_cli_t *c);

/* Open the node's store (after broker_cli_need_dir). Prints a sentence and
 * returns BROKER_CLI_FAIL when the folder is missing, is not a node, or the
 * store cannot be opened; BROKER_CLI_OK and an owned *s otherwise. */
int broker_cli_open(broker_cli_t *c, store_t **s);

/* Read all of FILE, or stdin for "-", into a malloc'd NUL-terminated buffer.
 * At most max bytes; prints the reason and returns BROKER_CLI_FAIL on error. */
int broker_cli_slurp(broker_cli_t *c, const char *path, size_t max, char **out, size_t *len);

/* A whole decimal number in [min, max] (an option's value). HS_OK or
 * HS_EINVAL (the caller says which option and range). */
int broker_cli_number(const char *s, long long min, long long max, long long *out);

/* ms since the epoch -> "2025-01-31T12:34:56.789Z" (out: 32 bytes). */
void broker_cli_time_format(uint64_t ms, char out[32]);
/* The reverse; also accepts no fraction. HS_OK or HS_EINVAL. */
int broker_cli_time_parse(const char *s, uint64_t *ms);

/* JSON form of an object (broker/cli_data.c), keys in this order:
 *   FULL  (get --json): guid class owner origin seq mtime hash imported deleted
 *                        keys resource body (absent ones null)
 *   LINE  (export):     class guid [keys] [resource] imported owner origin mtime body
 *   BRIEF (ls --json):  guid class owner hash mtime deleted
 * HS_OK and an owned *out, HS_EMALF if the stored body or keys do not decode,
 * HS_ENOMEM. */
enum broker_cli_form { BROKER_CLI_FULL, BROKER_CLI_LINE, BROKER_CLI_BRIEF };
int broker_cli_obj_json(const store_obj_t *o, enum broker_cli_form form, json_t **out);

/* Print j on stdout (compact, or indented by 2 if pretty) and a newline. */
int broker_cli_print_json(broker_cli_t *c, const json_t *j, bool pretty);

/* ---- commands ----------------------------------------------------------- */

/* Local data commands (broker/cli_data.c): no broker needed. */
int broker_cli_init(broker_cli_t *c, int argc, char **argv);
int broker_cli_put(broker_cli_t *c, int argc, char **argv);
int broker_cli_get(broker_cli_t *c, int argc, char **argv);
int broker_cli_ls(broker_cli_t *c, int argc, char **argv);
int broker_cli_rm(broker_cli_t *c, int argc, char **argv);
int broker_cli_digest(broker_cli_t *c, int argc, char **argv);
int broker_cli_status(broker_cli_t *c, int argc, char **argv);

/* Bulk load and dump (broker/cli_import.c). */
int broker_cli_import(broker_cli_t *c, int argc, char **argv);
int broker_cli_export(broker_cli_t *c, int argc, char **argv);

/* Broker and topology (broker/cli_topology.c). */
int broker_cli_serve(broker_cli_t *c, int argc, char **argv);
int broker_cli_invite(broker_cli_t *c, int argc, char **argv);
int broker_cli_hierarchy(broker_cli_t *c, int argc, char **argv);
/* Replication (broker/cli_rules.c, broker/cli_sync.c). */
int broker_cli_rule(broker_cli_t *c, int argc, char **argv);
int broker_cli_sync(broker_cli_t *c, int argc, char **argv);
int broker_cli_history(broker_cli_t *c, int argc, char **argv);
/* One object and where it was sent and acknowledged (broker/cli_trace.c). */
int broker_cli_trace(broker_cli_t *c, int argc, char **argv);
int broker_cli_replicate_now(broker_cli_t *c, int argc, char **argv);
int broker_cli_emergency(broker_cli_t *c, int argc, char **argv);
/* Every node below in sync with its parent, rule by rule (broker/cli_verify.c). */
int broker_cli_verify(broker_cli_t *c, int argc, char **argv);
/* The replication table of status: one row per (peer, rule), problems first;
 * extra counts the node's own problems printed above it (in the headline). */
void broker_cli_repl_print(json_t *pairs, const json_t *links, size_t extra);

/* Hierarchy events (broker/cli_events.c). */
int broker_cli_events(broker_cli_t *c, int argc, char **argv);
int broker_cli_hep(broker_cli_t *c, int argc, char **argv);
int broker_cli_standalone(broker_cli_t *c, int argc, char **argv);
int broker_cli_event(broker_cli_t *c, int argc, char **argv);

/* Agent registration requests and trust summaries (broker/cli_agent.c). */
int broker_cli_agent(broker_cli_t *c, int argc, char **argv);
/* The trust summaries known here, for status: this node's first (zeros if
 * it has none yet), then every node below it by name; each row {node,
 * pending, approved, rejected, trusted, pending_agents, updated}. HS_OK and
 * an owned *out, or a store error. */
int broker_cli_agent_trust(store_t *s, json_t **out);
void broker_cli_agent_trust_print(const json_t *rows);

/* Packages (broker/cli_package.c). */
int broker_cli_package(broker_cli_t *c, int argc, char **argv);

/* Links for status/show: from the running broker, else as recorded (state
 * "unknown"). Owned *out. */
int broker_cli_links_json(broker_cli_t *c, json_t **out);
void broker_cli_links_print(json_t *st);

/*
 * Later (each in its own file, one table row each):
 *   broker/cli_serve.c      serve
 *   broker/cli_topology.c   invite, hierarchy add-child|remove-child|leave|show
 *   broker/cli_rules.c      rule ..., standalone ..., hep set
 *   broker/cli_sync.c       sync, replicate-now, emergency, history, events, trace
 * Commands that need the running broker return HS_ENOBROKER's sentence when
 * none runs.
 */

#endif
