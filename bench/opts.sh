# bench/opts.sh — sourced by the benchmark scripts (bash): `parse_opts "NAME..." "$@"` sets the shell variable NAME
# of each `--NAME VALUE` given (NAME one of the names listed); any other argument is a usage error (exit 2) that
# lists the options. The caller sets the defaults before.
parse_opts() {
  local names=$1 n
  shift
  while [ $# -gt 0 ]; do
    n=${1#--}
    case "$1 $names " in
      --*" $n "*)
        if [ $# -lt 2 ]; then echo "$0: $1 needs a value" >&2; exit 2; fi
        printf -v "$n" '%s' "$2"
        shift 2 ;;
      *)
        echo "$0: unknown option $1; usage: $0$(for o in $names; do printf ' [--%s VALUE]' "$o"; done)" >&2
        exit 2 ;;
    esac
  done
}
