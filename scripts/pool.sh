# A pool of background jobs for the chapters' run scripts, sourced, not run:
#
#   source scripts/pool.sh
#   pool_run NAME COMMAND...   start COMMAND (a shell function or program) in the background
#                              as soon as fewer than POOL_JOBS jobs of this pool are running
#   pool_wait                  wait for every job; returns 1 when any of them failed
#
# POOL_JOBS (default 2: one single-threaded process per core of a 2-core laptop).
# Give the pool independent jobs (a job that needs another's output runs both in order,
# inside one function), longest first, so that no core idles at the end while the other
# finishes a long one. Each process still runs one thread from fixed seeds, so which job
# runs next to which does not change a single number, only the wall clock.
# A job that fails prints "pool: NAME failed (exit N)"; the other jobs go on, and
# pool_wait says how many failed, so that one message names every broken part.

: "${POOL_JOBS:=2}"
[[ $POOL_JOBS =~ ^[1-9][0-9]*$ ]] || { echo "pool: POOL_JOBS must be a positive integer, not '$POOL_JOBS'" >&2; exit 2; }
_pool_pids=()
_pool_names=()
_pool_failed=0

# Reap finished jobs (non-blocking); leaves the running ones in the lists.
_pool_reap() {
  local i pids=() names=() rc
  for i in "${!_pool_pids[@]}"; do
    if kill -0 "${_pool_pids[$i]}" 2>/dev/null; then
      pids+=("${_pool_pids[$i]}"); names+=("${_pool_names[$i]}")
    else
      rc=0; wait "${_pool_pids[$i]}" || rc=$?
      if (( rc != 0 )); then
        echo "pool: ${_pool_names[$i]} failed (exit $rc)" >&2
        _pool_failed=$((_pool_failed + 1))
      fi
    fi
  done
  _pool_pids=("${pids[@]}"); _pool_names=("${names[@]}")
}

pool_run() {   # pool_run NAME COMMAND...
  local name=$1; shift
  _pool_reap
  while (( ${#_pool_pids[@]} >= POOL_JOBS )); do
    sleep 0.2
    _pool_reap
  done
  "$@" &
  _pool_pids+=($!); _pool_names+=("$name")
}

pool_wait() {
  _pool_reap
  while (( ${#_pool_pids[@]} > 0 )); do
    sleep 0.2
    _pool_reap
  done
  if (( _pool_failed > 0 )); then
    echo "pool: $_pool_failed job(s) failed" >&2
    _pool_failed=0
    return 1
  fi
}
