#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672)
# answer; start them if not.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
    local name=$1 port=$2
    for _ in $(seq 1 30); do
        answers "$port" && return 0
        sleep 1
    done
    echo "ERROR: $name does not answer on 127.0.0.1:$port; start it and run again" >&2
    exit 1
}

if ! answers 5432; then
    echo "==> PostgreSQL is down; starting it"
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    else
        echo "ERROR: PostgreSQL is not installed here (apt-get install postgresql)" >&2
        exit 1
    fi
fi
wait_for PostgreSQL 5432

if ! answers 6379; then
    echo "==> Redis is down; starting it"
    if command -v redis-server >/dev/null; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    else
        echo "ERROR: Redis is not installed here (apt-get install redis-server)" >&2
        exit 1
    fi
fi
wait_for Redis 6379

if ! answers 5672; then
    echo "==> RabbitMQ is down; starting it"
    if command -v rabbitmq-server >/dev/null; then
        rabbitmq-server -detached
    else
        echo "ERROR: RabbitMQ is not installed here (apt-get install rabbitmq-server)" >&2
        exit 1
    fi
fi
wait_for RabbitMQ 5672
echo "==> PostgreSQL, Redis and RabbitMQ answer"
