#!/usr/bin/env fish
# The master script: decides the run id, stands up the infrastructure for a run config
# (for `local`: the local Docker stack), sends the config to the orchestrator, follows the
# run, and unpacks the results archive into results/<run-id>/.
#
# Exit status: 0 every task completed; 2 some task failed or the run was ended early;
# 1 an error (bad config, unreachable orchestrator, corrupt archive).

set -g script_name master.fish
set -g project_root (path resolve (status dirname)/..)
# 1 on the cloud path (aws, azure), where failures tear the run down.
set -g cloud 0
# The cloud path (aws, azure): functions only.
source $project_root/fish/cloud.fish

function usage
    echo "usage: fish/master.fish --config FILE [options]

  --config FILE            run config (JSON), see docs/development.md
  --orchestrator-url URL   attach to a running orchestrator (default: \$ORCHESTRATOR_URL);
                           without it, infrastructure is stood up for the config
  --api-key KEY            the orchestrator's operator key (default: \$API_KEY, which
                           unlike this flag is not shown to other users by ps); runners
                           have their own key, which cannot start or stop runs
  --resume                 follow the orchestrator's current run instead of starting one
  --results-dir DIR        where results/<run-id>/ goes (default: results)
  --poll-secs N            seconds between status polls (default: 10); while the
                           orchestrator does not answer, backed off up to one a minute
  --max-hours H            the run's deadline, H hours after it started (default: 12): only
                           then does this script stop waiting for it, however long the
                           orchestrator is unreachable; a cloud run's runner hosts end
                           themselves by then (ttl_minutes), and at the deadline the run is
                           ended early, what completed is collected, and it is torn down
  -h, --help               this help"
    cloud_usage
end

function die
    # A command cut short by Ctrl-C fails too: say what Ctrl-C means instead.
    stop_if_interrupted
    echo "$script_name: $argv" >&2
    # A cloud run that failed is destroyed (fish/cloud.fish), unless --keep.
    cloud_teardown_after_failure
    exit 1
end

function log
    echo "$script_name: $argv" >&2
end

# Fish ignores `exit` inside a signal handler: the handler only takes note, and the script
# stops at the next check (every poll, every retry, and in `die`).
function on_interrupt --on-signal SIGINT
    set -g interrupted 1
end

function stop_if_interrupted
    set -q interrupted; or return 0
    echo >&2
    # Before its run exists, a new cloud run's infrastructure has nothing to do: it goes.
    if test $cloud = 1; and not set -q run_started_at; and not set -q _flag_resume
        log "interrupted before run $run_id started"
        cloud_teardown_after_failure
        exit 130
    end
    log "interrupted; the run goes on without this script"
    if test $cloud = 1
        log "follow it again (and tear it down at its end) with: fish/master.fish --config $config_file --resume"
    else if test -n "$orchestrator_url"
        log "follow it again with: API_KEY=<key> fish/master.fish --config $config_file --orchestrator-url $orchestrator_url --resume"
    end
    test -n "$teardown_hint"; and log $teardown_hint
    exit 130
end

argparse --name=$script_name c/config= orchestrator-url= api-key= resume results-dir= poll-secs= h/help \
    aws-region= azure-region= allowed-ssh-cidr= domain= route53-zone-id= allow-plain-http ruby-bench-commit= \
    runner-tarball=+ no-image-build prices= max-hours= yes keep bench-image-repo= no-self-deallocate dns-wait-mins= -- $argv
or begin
    usage >&2
    exit 1
end
if set -q _flag_help
    usage
    exit 0
end

for tool in curl jq tar
    command -q $tool; or die "$tool is missing; install it (Debian: apt-get install -y $tool)"
end

# --- the run config -------------------------------------------------------------------
set -q _flag_config; or die "missing --config FILE (see fish/master.fish --help)"
set -g config_file $_flag_config
test -f "$config_file"; or die "config file $config_file does not exist"
set -g config (jq -c . $config_file 2>/dev/null)
or die "config file $config_file is not valid JSON"
echo $config | jq -e 'type == "object"' >/dev/null
or die "config file $config_file must hold a JSON object"
set -l unknown (echo $config | jq -r 'keys[] | select(IN("ruby_version", "runs_per_instance_type", "run_id", "aws", "azure", "local", "ruby_bench", "debug_mode") | not)')
if test (count $unknown) -gt 0
    die "unknown field \"$unknown[1]\" in $config_file: providers are aws, azure, local"
end
set -g providers (echo $config | jq -r '["aws", "azure", "local"][] as $p | select((.[$p] | type) == "array" and (.[$p] | length) > 0) | $p')
test (count $providers) -gt 0
or die "no instance types in $config_file: give at least one of \"aws\", \"azure\", \"local\" a non-empty array"

set -g results_dir results
set -q _flag_results_dir; and set results_dir $_flag_results_dir
set -g poll_secs 10
set -q _flag_poll_secs; and set poll_secs $_flag_poll_secs
string match -qr '^[0-9]+$' -- $poll_secs; or die "--poll-secs must be a whole number of seconds"
# Polls while the orchestrator is unreachable back off to at most one this often.
set -g poll_backoff_cap_secs 60
set -g max_hours 12
set -q _flag_max_hours; and set max_hours $_flag_max_hours
string match -qr '^[0-9]+(\.[0-9]+)?$' -- $max_hours; and test (math --scale 0 "ceil($max_hours * 3600)") -gt 0
or die "--max-hours must be a positive number of hours, e.g. 6"
# After a cloud run's deadline: how long the master waits for the archive of what completed
# before it tears the run down anyway.
set -g collect_secs 900

set -g orchestrator_url $ORCHESTRATOR_URL
set -q _flag_orchestrator_url; and set orchestrator_url $_flag_orchestrator_url
set -g api_key $API_KEY
set -q _flag_api_key; and set api_key $_flag_api_key
set -g teardown_hint ""
# argparse's _flag_* variables are local to the top level; the cloud functions need them.
for flag in (set -n | string match '_flag_*')
    set -g $flag $$flag
end
# Tries at POST /run/start, 2 s apart: a cloud orchestrator boots for minutes.
set -g start_attempts 30

# --- infrastructure -------------------------------------------------------------------
set -g run_id (date +%s)
if test -n "$orchestrator_url"
    log "attaching to the orchestrator at $orchestrator_url"
else if test "$providers" != local; and set -q _flag_resume
    # A cloud run: its orchestrator and key are in its state (fish/cloud.fish).
    contains local $providers
    and die "\"local\" cannot share a run with cloud providers ($providers): run it on its own"
    set cloud 1
    cloud_resume
else if test "$providers" = local
    log "standing up the local stack for $config_file"
    set -l exports (cargo xtask local up --config $config_file)
    or die "the local stack did not come up (see above); tear down what started with: cargo xtask local down"
    for line in $exports
        set -l parts (string match -r '^export ([A-Z_]+)=(.*)$' -- $line)
        or continue
        set -gx $parts[2] (string trim -c "'\"" -- $parts[3])
    end
    set orchestrator_url $ORCHESTRATOR_URL
    set api_key $API_KEY
    set teardown_hint "tear the local stack down with: cargo xtask local down"
else
    contains local $providers
    and die "\"local\" cannot share a run with cloud providers ($providers): run it on its own"
    set cloud 1
    # Up to the orchestrator; the provider stacks go on applying while the run is started.
    cloud_up
end
test -n "$orchestrator_url"; or die "no orchestrator URL: pass --orchestrator-url or set ORCHESTRATOR_URL"
test -n "$api_key"; or die "no API key: pass --api-key or set API_KEY"
set orchestrator_url (string trim -r -c / -- $orchestrator_url)

# The API key goes to curl in a header file only this user can read, never on curl's command
# line, which any user of the machine sees in `ps` (docs/decisions.md, "Security").
function remove_api_header --on-event fish_exit
    set -q api_header_file; and rm -f $api_header_file
end

# Calls the orchestrator; sets $http_status and $http_body. Returns 1 when unreachable.
function api --argument-names method path data
    if not set -q api_header_file
        # mktemp makes it 0600.
        set -g api_header_file (mktemp)
        or die "cannot make a temporary file for the API key's header"
    end
    # Written each time: a cloud run learns its key after the first calls.
    printf 'Authorization: Bearer %s\n' $api_key >$api_header_file
    set -l args -sS --max-time 30 -X $method -H @$api_header_file -w '\n%{http_code}'
    if test -n "$data"
        set -a args -H 'Content-Type: application/json' --data-binary $data
    end
    set -l response (curl $args $orchestrator_url$path 2>/dev/null)
    or return 1
    set -g http_status $response[-1]
    # `string join` fails when there is nothing to join (a one-line body): not an error.
    set -g http_body (string join \n -- $response[1..-2])
    return 0
end

function error_of --argument-names body
    echo $body | jq -r '.error // empty' 2>/dev/null
end

# --- start the run --------------------------------------------------------------------
if set -q _flag_resume
    api GET /run; or die "cannot reach the orchestrator at $orchestrator_url"
    test "$http_status" = 200; or die "no run to resume at $orchestrator_url ($http_status)"
    set -l current (echo $http_body | jq -r .run_id)
    test $cloud = 0 -o "$current" = "$run_id"
    or die "the orchestrator of run $run_id is on run $current"
    set run_id $current
    # A resumed cloud run is torn down like a fresh one, once it is known to be there.
    test $cloud = 1; and set -g cloud_armed 1
    # The deadline counts from the run's creation, not from this script's start.
    set -g run_started_at (echo $http_body | jq -r '.created_at | sub("\\.[0-9]+"; "") | sub("\\+00:00$"; "Z") | fromdateiso8601' 2>/dev/null)
    string match -qr '^[0-9]+$' -- "$run_started_at"; or set run_started_at (date +%s)
    log "following run $run_id"
else
    set -l body (echo $config | jq -c --argjson id $run_id '.run_id = $id')
    set -l started 0
    set -l not_orchestrator ""
    # The orchestrator may still be starting: retry unreachable for a minute (15 in a cloud).
    for attempt in (seq $start_attempts)
        # 502 to 504: a proxy in front of an orchestrator still starting (the cloud's Caddy).
        if api POST /run/start $body; and not contains -- "$http_status" 502 503 504
            # Every answer of the orchestrator is a JSON object. Anything else comes from
            # what is still being set up in front of it: a cloud host's Caddy serves its
            # package's default site (a 404 without a body) until its configuration is in.
            # The body is tested for being there: jq -e passes an empty input.
            if test -n "$http_body"; and echo $http_body | jq -e 'type == "object"' >/dev/null 2>&1
                set started 1
                break
            end
            set not_orchestrator "HTTP $http_status without the orchestrator's JSON"
        end
        # A provider stack that failed meanwhile ends the wait (and the run).
        if test $cloud = 1; and not cloud_providers_ok
            die "run $run_id cannot run without its runners"
        end
        sleep 2
        stop_if_interrupted
    end
    if test $started = 0 -a -n "$not_orchestrator"
        die "no orchestrator answers at $orchestrator_url (its last answer: $not_orchestrator)"
    end
    test $started = 1; or die "cannot reach the orchestrator at $orchestrator_url"
    switch $http_status
        case 201
            set -g run_started_at (date +%s)
            set -l count (echo $http_body | jq -r .tasks_created)
            log "run $run_id started with $count tasks"
        case 400
            die "the orchestrator refused $config_file: $(error_of $http_body)"
        case 401
            die "the orchestrator refused the API key"
        case 409
            die "a run is already in progress at $orchestrator_url; follow it with --resume, or end it from the dashboard"
        case '*'
            die "starting the run failed ($http_status): $(error_of $http_body)"
    end
    # The runners come up once their stacks are applied.
    test $cloud = 1; and cloud_wait_providers
end

# --- follow it ------------------------------------------------------------------------
# Polls GET /run until the run is complete with its archive (returns 0) or DEADLINE (Unix
# seconds) passes (returns 1). An orchestrator that does not answer, or answers 5xx (a proxy in
# front of one that is restarting), is waited out: one line when it goes away, one when it is
# back, and polls backed off up to one a minute. Only the deadline ends the wait.
function follow_run --argument-names deadline
    set -l unreachable_since ""
    set -l delay $poll_secs
    while true
        stop_if_interrupted
        test (date +%s) -lt $deadline; or return 1
        if not api GET /run; or test "$http_status" -ge 500
            if test -z "$unreachable_since"
                set unreachable_since (date +%s)
                log "the orchestrator at $orchestrator_url is unreachable since "(date +%H:%M:%S)", retrying"
            end
            set -g last_seen "the orchestrator unreachable since "(date -d @$unreachable_since +%H:%M:%S 2>/dev/null; or echo $unreachable_since)
            # Doubling from the poll interval, capped at a minute (or the interval, if longer).
            set delay (math "min(max($delay * 2, 1), max($poll_backoff_cap_secs, $poll_secs))")
            sleep (math "max(0, min($delay, $deadline - "(date +%s)"))")
            continue
        end
        if test -n "$unreachable_since"
            log "the orchestrator answers again, after "(math (date +%s) - $unreachable_since)" s unreachable"
            set unreachable_since ""
            set delay $poll_secs
        end
        test "$http_status" = 200; or die "reading the run failed ($http_status): $(error_of $http_body)"
        set -l fields (echo $http_body | jq -r '.run_id, .status, .tasks.total, .tasks.pending, .tasks.claimed, .tasks.completed, .tasks.failed, (.gzip_url // ""), (.stopped_at // ""), (.archive.state // ""), (.archive.attempts // 0), (.archive.error // "" | gsub("\\\\s+"; " ") | .[:200])')
        set -l id $fields[1]
        test "$id" = "$run_id"; or die "the orchestrator is now on run $id, not $run_id"
        set -l state $fields[2]
        set -l total $fields[3]
        set -l running $fields[5]
        set -g completed $fields[6]
        set -g failed $fields[7]
        set -g gzip_url $fields[8]
        set -g stopped_at $fields[9]
        set -l done (math $completed + $failed)
        set -l pct 0
        test $total -gt 0; and set pct (math --scale 0 "floor($done * 100 / $total)")
        set -l eta ""
        if test $done -gt 0 -a $done -lt $total
            set -l elapsed (math (date +%s) - $run_started_at)
            set -l remaining (math --scale 0 "ceil($elapsed * ($total - $done) / $done / 60)")
            set eta " · ETA $remaining"m
        end
        set -l line "[$pct%] $completed/$total done · $running running · $failed failed$eta"
        # A failing archive build is retried by the orchestrator with a backoff; say why.
        test "$fields[10]" = failed
        and set line "$line · results archive: $fields[11] failed build(s), retrying: $fields[12]"
        if test "$line" != "$last_line"
            echo $line >&2
            set -g last_line $line
        end
        set -g last_seen $line
        if test "$state" = complete -a -n "$gzip_url"
            return 0
        end
        sleep (math "max(0, min($poll_secs, $deadline - "(date +%s)"))")
    end
end

# The run's deadline passed. A cloud run is ended early, what completed is collected (for up
# to $collect_secs), and the run is torn down; a local or attached run is left going, with how
# to follow it again. Returns 0 when the results archive is ready to download.
function handle_deadline
    set -l deadline_text (date -d @$deadline '+%Y-%m-%d %H:%M:%S' 2>/dev/null; or echo $deadline)
    log "the run's deadline ($deadline_text, --max-hours $max_hours) passed; last seen: $last_seen"
    if test $cloud = 1
        log "ending run $run_id early and collecting what completed (for up to "(math $collect_secs / 60)" min)"
        api POST /run/stop '{}'
        or log "the orchestrator did not answer the stop; waiting for it anyway"
        # Not an if-condition: fish 3.6 loses the status of an `exit` (Ctrl-C, die) there.
        follow_run (math (date +%s) + $collect_secs)
        and return 0
        log "the results of run $run_id could not be collected; last seen: $last_seen"
        cloud_down
        exit 1
    end
    log "the run goes on without this script; follow it again with: API_KEY=<key> fish/master.fish --config $config_file --orchestrator-url $orchestrator_url --resume --max-hours "(math "$max_hours * 2")
    test -n "$teardown_hint"; and log $teardown_hint
    exit 1
end

set -g completed 0
set -g failed 0
set -g last_line ""
set -g last_seen "nothing yet"
set -g deadline (math --scale 0 "$run_started_at + $max_hours * 3600")
# Not `if not follow_run`: fish 3.6 ends the script with status 0 when `exit` runs inside
# an `if` condition (Ctrl-C while following must exit 130).
follow_run $deadline
or handle_deadline

# --- results --------------------------------------------------------------------------
set -l destination $results_dir/$run_id
test -e $destination; and die "$destination already exists; move it away and run again with --resume"
mkdir -p $results_dir; or die "cannot create $results_dir"
set -l archive $results_dir/.$run_id.tar.gz.partial
curl -fsS --retry 5 --retry-all-errors -o $archive $gzip_url
or die "downloading the results archive failed"
set -l entries (tar -tzf $archive 2>/dev/null)
or die "the results archive is corrupt; it is kept at $archive"
for entry in $entries
    if string match -qr '^/|(^|/)\.\.(/|$)' -- $entry
        die "the results archive holds an unsafe path ($entry); it is kept at $archive"
    end
end
mkdir $destination.partial
tar -xzf $archive -C $destination.partial --no-same-owner
or die "unpacking the results archive failed; it is kept at $archive"
mv $destination.partial $destination
rm $archive

log "results of run $run_id are in $destination: $completed completed, $failed failed"
# A cloud run is destroyed once its results are safe (fish/cloud.fish: cloud_down).
if test $cloud = 1
    cloud_down; or exit 1
else
    test -n "$teardown_hint"; and log $teardown_hint
end
if test -n "$stopped_at"
    log "the run was ended early at $stopped_at"
    exit 2
end
test $failed -eq 0; or exit 2
exit 0
