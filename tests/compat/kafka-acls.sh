#!/usr/bin/env bash
# kafka-acls.sh for librdkafka's test suite (KAFKA_PATH/bin/kafka-acls.sh): 0109, 0115 and
# 0119 add and remove DENY/ALLOW ACLs with it; there is no Java here, so shoalctl does it.
# --add maps to `acl create` (the same flags); --remove to `acl delete` with the principal,
# host and permission as a filter.
set -eu
ctl=${SHOALCTL_BIN:?SHOALCTL_BIN names shoalctl}
bootstrap=${BROKERS:-127.0.0.1:9092}; op=; force=; resources=(); operations=()
principal=; permission=; host=
while [ $# -gt 0 ]; do
    case "$1" in
        --bootstrap-server) bootstrap=$2; shift 2;;
        --add|--remove|--list) op=${1#--}; shift;;
        --force) force=--force; shift;;
        --topic|--group|--transactional-id) resources+=("$1" "$2"); shift 2;;
        --cluster) resources+=(--cluster); shift;;
        --allow-principal|--deny-principal)
            [ -z "$principal" ] || { echo "kafka-acls.sh (shoalctl): one principal per call" >&2; exit 2; }
            principal=$2; permission=${1#--}; permission=${permission%-principal}; shift 2;;
        --allow-host|--deny-host) host=$2; shift 2;;
        --operation) operations+=(--operation "$2"); shift 2;;
        *) echo "kafka-acls.sh (shoalctl): unsupported argument $1" >&2; exit 2;;
    esac
done
[ ${#resources[@]} -gt 0 ] || { echo "kafka-acls.sh (shoalctl): no resource given" >&2; exit 2; }
case "$op" in
    add)
        [ -n "$principal" ] || { echo "kafka-acls.sh (shoalctl): --add needs a principal" >&2; exit 2; }
        exec "$ctl" --brokers "$bootstrap" acl create "${resources[@]}" \
            "--$permission-principal" "$principal" ${host:+"--$permission-host" "$host"} "${operations[@]}";;
    remove)
        exec "$ctl" --brokers "$bootstrap" acl delete "${resources[@]}" $force \
            ${principal:+--principal "$principal" --permission "$permission"} ${host:+--host "$host"} "${operations[@]}";;
    list)
        exec "$ctl" --brokers "$bootstrap" acl list "${resources[@]}";;
    *) echo "kafka-acls.sh (shoalctl): no operation given" >&2; exit 2;;
esac
