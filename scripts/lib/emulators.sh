# shellcheck shell=bash
# Local AWS emulators for sesroute's tests. Source this file, then:
#
#   emulators_install   # npm ci in emulators/ when node_modules is missing or stale
#   fauxqs_start        # start fauxqs (SQS, SNS, S3) on 127.0.0.1, wait for /health
#   fauxqs_stop         # stop it by PID (safe to call twice, or if never started)
#   smtp_install        # a Python venv with aiosmtpd for emulators/smtp_server.py;
#                       # exports SMTP_TEST_PYTHON (the email tests start their own servers)
#   moto_install        # a Python venv with moto 5.2.5 for emulators/moto_server.py;
#                       # exports MOTO_TEST_PYTHON (the audit tests start their own servers)
#
# fauxqs_start sets the shell variables FAUXQS_PID, FAUXQS_PORT, FAUXQS_LOG
# (not exported, unless FAUXQS_PORT already was) and exports:
#   FAUXQS_ENDPOINT=http://127.0.0.1:$FAUXQS_PORT
#   AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
#   AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
#
# Knobs: FAUXQS_PORT (use this port instead of a free one),
#        FAUXQS_START_TIMEOUT (seconds to wait for /health, default 30).
# Works under `set -euo pipefail`; never uses pkill/killall.

_emulators_repo_root() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    (cd "$here/../.." && pwd)
}

EMULATORS_ROOT="${EMULATORS_ROOT:-$(_emulators_repo_root)}"
EMULATORS_DIR="$EMULATORS_ROOT/emulators"

_emulators_log() { printf 'emulators: %s\n' "$*" >&2; }

emulators_install() {
    if ! command -v npm >/dev/null 2>&1; then
        _emulators_log "npm not found: install Node.js 20+ with npm"
        return 1
    fi
    local stamp="$EMULATORS_DIR/node_modules/.package-lock.json"
    if [[ -e "$stamp" && -e "$EMULATORS_DIR/node_modules/fauxqs/package.json" \
          && ! "$EMULATORS_DIR/package-lock.json" -nt "$stamp" ]]; then
        return 0
    fi
    _emulators_log "npm ci in $EMULATORS_DIR"
    # --loglevel=error hides the EBADENGINE warning for cookie@2 (a transitive
    # dependency asking for Node 22); fauxqs 1.9.2 runs fine on Node 20.
    (cd "$EMULATORS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
}

_emulators_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("", 0))
print(s.getsockname()[1])
s.close()'
    else
        node -e 'const s = require("net").createServer();
s.listen(0, () => { console.log(s.address().port); s.close(); });'
    fi
}

# Is the process alive (present, and neither a zombie nor already reaped)?
_emulators_alive() {
    local pid="$1" state
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z* ]]
}

# _emulators_venv DIR REQUIREMENTS: a venv holding exactly the pinned list,
# (re)installed when the list changed; the venv keeps a copy of what it holds.
_emulators_venv() {
    local venv="$1" wanted="$2"
    if ! cmp -s "$wanted" "$venv/requirements.txt" 2>/dev/null; then
        _emulators_log "python venv from $(basename "$wanted") in $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$wanted"
        "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
        cp "$wanted" "$venv/requirements.txt"
    fi
}

smtp_install() {
    _emulators_venv "$EMULATORS_ROOT/.venv-emulators" "$EMULATORS_DIR/requirements.txt"
    export SMTP_TEST_PYTHON="$EMULATORS_ROOT/.venv-emulators/bin/python"
}

moto_install() {
    _emulators_venv "$EMULATORS_ROOT/.venv-moto" "$EMULATORS_DIR/requirements-moto.txt"
    export MOTO_TEST_PYTHON="$EMULATORS_ROOT/.venv-moto/bin/python"
}

fauxqs_start() {
    if [[ -n "${FAUXQS_PID:-}" ]] && _emulators_alive "$FAUXQS_PID"; then
        _emulators_log "fauxqs already running (pid $FAUXQS_PID, port ${FAUXQS_PORT:-?})"
        return 0
    fi
    if ! command -v node >/dev/null 2>&1; then
        _emulators_log "node not found: install Node.js 20+"
        return 1
    fi
    if ! command -v curl >/dev/null 2>&1; then
        _emulators_log "curl not found (needed to wait for fauxqs /health)"
        return 1
    fi
    if [[ ! -e "$EMULATORS_DIR/node_modules/fauxqs/package.json" ]]; then
        _emulators_log "fauxqs is not installed: run emulators_install first"
        return 1
    fi

    local fixed_port="${FAUXQS_PORT:-}" timeout="${FAUXQS_START_TIMEOUT:-30}"
    local attempt port pid log deadline
    for attempt in 1 2 3; do
        port="${fixed_port:-$(_emulators_free_port)}"
        log="$(mktemp "${TMPDIR:-/tmp}/sesroute-fauxqs.$port.XXXXXX")"
        # `exec` makes $! the node process itself (not a bash subshell around
        # it), whatever bash's fork optimisations: stopping by PID stops node.
        (FAUXQS_PORT="$port" exec node "$EMULATORS_DIR/fauxqs.mjs" >"$log" 2>&1) &
        pid=$!
        deadline=$((SECONDS + timeout))
        while :; do
            # Healthy means: our node printed that it is listening (so the
            # port is ours, not another server's) and /health answers.
            if grep -q "^fauxqs listening on" "$log" 2>/dev/null \
                && _emulators_alive "$pid" \
                && curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
                # Shell variables, deliberately not exported: a child process
                # that sources this file starts (and stops) its own server.
                FAUXQS_PID="$pid" FAUXQS_PORT="$port" FAUXQS_LOG="$log"
                export FAUXQS_ENDPOINT="http://127.0.0.1:$port"
                export AWS_EC2_METADATA_DISABLED=true
                export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
                export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
                _emulators_log "fauxqs up on $FAUXQS_ENDPOINT (pid $pid)"
                return 0
            fi
            if ! _emulators_alive "$pid"; then
                wait "$pid" 2>/dev/null || true
                break
            fi
            if ((SECONDS >= deadline)); then
                _emulators_log "fauxqs (pid $pid) not healthy on port $port after ${timeout}s"
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                sed 's/^/  fauxqs: /' "$log" >&2 || true
                rm -f "$log"
                return 1
            fi
            sleep 0.2
        done
        # The server died before it was healthy.
        if [[ -z "$fixed_port" ]] && grep -q EADDRINUSE "$log" 2>/dev/null; then
            _emulators_log "port $port was taken meanwhile; trying another (attempt $attempt)"
            rm -f "$log"
            continue
        fi
        _emulators_log "fauxqs exited before it was healthy (port $port); its output:"
        sed 's/^/  fauxqs: /' "$log" >&2 || true
        rm -f "$log"
        return 1
    done
    _emulators_log "could not find a free port for fauxqs"
    return 1
}

fauxqs_stop() {
    local pid="${FAUXQS_PID:-}"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 5))
        while _emulators_alive "$pid" && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if _emulators_alive "$pid"; then
            _emulators_log "fauxqs (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    if [[ -n "${FAUXQS_LOG:-}" ]]; then
        rm -f "$FAUXQS_LOG"
    fi
    unset FAUXQS_PID FAUXQS_LOG
    return 0
}
