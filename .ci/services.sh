#!/usr/bin/env bash
# Make sure the named services answer on loopback, starting those that are installed but
# stopped: postgresql (127.0.0.1:5432), redis (127.0.0.1:6379), rabbitmq (127.0.0.1:5672).
# With no names, all three. Exits non-zero, saying why, when one cannot be made to answer.
#
#   bash .ci/services.sh                     # .ci/run: everything make test needs
#   bash .ci/services.sh postgresql redis    # make test-services
#   bash .ci/services.sh rabbitmq            # make test-rabbitmq
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
    local name=$1 port=$2 seconds=$3
    for _ in $(seq 1 "$seconds"); do
        answers "$port" && return 0
        sleep 1
    done
    echo "ERROR: $name does not answer on 127.0.0.1:$port after ${seconds}s; start it and run again" >&2
    exit 1
}

postgresql() {
    if ! answers 5432; then
        echo "==> PostgreSQL is down; starting it"
        if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        else
            echo "ERROR: PostgreSQL is not installed here (apt-get install postgresql)" >&2
            exit 1
        fi
    fi
    wait_for PostgreSQL 5432 30
}

redis() {
    if ! answers 6379; then
        echo "==> Redis is down; starting it"
        if command -v redis-server >/dev/null; then
            redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
        else
            echo "ERROR: Redis is not installed here (apt-get install redis-server)" >&2
            exit 1
        fi
    fi
    wait_for Redis 6379 30
}

rabbitmq() {
    if ! answers 5672; then
        echo "==> RabbitMQ is down; starting it"
        if command -v rabbitmq-server >/dev/null; then
            # Debian's wrapper runs the node as the rabbitmq user when called by root.
            (cd / && rabbitmq-server -detached) || true
        else
            echo "ERROR: RabbitMQ is not installed here (apt-get install rabbitmq-server)" >&2
            exit 1
        fi
    fi
    # The Erlang node takes a few seconds to boot (longer on a busy machine).
    wait_for RabbitMQ 5672 90
}

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(postgresql redis rabbitmq)
for service in "${services[@]}"; do
    case "$service" in
        postgresql | redis | rabbitmq) "$service" ;;
        *)
            echo "ERROR: unknown service '$service' (postgresql, redis, rabbitmq)" >&2
            exit 2
            ;;
    esac
done
echo "==> answering: ${services[*]}"
