# Shared by the recorders: stand-ins for terraform, aws, az, docker and cargo that append
# each call to $RCB_RECORDER_LOG and answer from $RCB_RECORDER_DIR/world.json.
#
#   log line:  <unix time with nanoseconds> TAB <tool> TAB <event> TAB <cwd> TAB <argv>
#   RCB_RECORDER_FAIL  space-separated "<tool>:<word>:<word>" calls to fail, e.g.
#                      "terraform:destroy:aws aws:ec2:delete-security-group"
#   world.json         what the clouds hold: { "<service> <operation>": <answer>, ... };
#                      a delete removes every object naming the deleted id from the answers
#                      of the same service

: "${RCB_RECORDER_LOG:?the recorders need RCB_RECORDER_LOG}"
: "${RCB_RECORDER_DIR:?the recorders need RCB_RECORDER_DIR}"
world="$RCB_RECORDER_DIR/world.json"
[ -f "$world" ] || echo '{}' >"$world"

record() { # event args...
    event=$1
    shift
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date +%s.%N)" "$tool" "$event" "$PWD" "$*" >>"$RCB_RECORDER_LOG"
}

fail_if_told() { # word word
    case " ${RCB_RECORDER_FAIL:-} " in
    *" $tool:$1:$2 "*)
        record failed "$@"
        echo "$tool (recorder): failing $1 $2 as told" >&2
        exit 1
        ;;
    esac
}

answer() { # key [default, else {}]
    if jq -e --arg k "$1" 'has($k)' "$world" >/dev/null; then
        jq --arg k "$1" '.[$k]' "$world"
    elif [ -n "${2:-}" ]; then
        echo "$2"
    else
        echo '{}'
    fi
}

forget() { # id prefix: removes every object that names id from the answers whose key starts with prefix
    jq --arg id "$1" --arg prefix "$2" 'with_entries(if (.key | startswith($prefix)) then
            .value |= walk(if type == "array" then map(select(type != "object" or ([.[]] | index($id) | not))) else . end)
        else . end)' "$world" >"$world.new" && mv "$world.new" "$world"
}
