#!/usr/bin/env bash
# kafka-topics.sh for librdkafka's test suite (KAFKA_PATH/bin/kafka-topics.sh): the suite calls
# it to create, grow and delete topics; there is no Java here, so shoalctl does it.
set -eu
ctl=${SHOALCTL_BIN:?SHOALCTL_BIN names shoalctl}
bootstrap=${BROKERS:-127.0.0.1:9092}; op=; topic=; partitions=; rf=; configs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bootstrap-server|--zookeeper) bootstrap=$2; shift 2;;
        --create|--alter|--delete) op=${1#--}; shift;;
        --topic) topic=$2; shift 2;;
        --partitions) partitions=$2; shift 2;;
        --replication-factor) rf=$2; shift 2;;
        --config) configs+=(-c "$2"); shift 2;;
        *) echo "kafka-topics.sh (shoalctl): unsupported argument $1" >&2; exit 2;;
    esac
done
case "$op" in
    create) exec "$ctl" --brokers "$bootstrap" topic create "$topic" ${partitions:+-p "$partitions"} ${rf:+-r "$rf"} "${configs[@]}";;
    alter) exec "$ctl" --brokers "$bootstrap" topic add-partitions "$topic" --count "$partitions";;
    delete) exec "$ctl" --brokers "$bootstrap" topic delete "$topic";;
    *) echo "kafka-topics.sh (shoalctl): no operation given" >&2; exit 2;;
esac
