#!/usr/bin/env bash
# Give the RabbitMQ test pass an empty virtual host of its own: delete NAME (with every
# queue, message and binding an earlier run left in it) and create it again, open to the
# guest user. The tests then start from an empty broker, whatever an earlier run or a
# killed worker left behind, and never touch the default vhost "/".
#
#   bash .ci/rabbitmq-vhost.sh vsm_test
set -euo pipefail

vhost=${1:?usage: rabbitmq-vhost.sh NAME}
user=${2:-guest}

if ! command -v rabbitmqctl >/dev/null; then
    echo "ERROR: rabbitmqctl is not installed here, so the test vhost '$vhost' cannot be made" >&2
    exit 1
fi
echo "==> RabbitMQ: an empty vhost '$vhost' for the tests"
rabbitmqctl --quiet delete_vhost "$vhost" >/dev/null 2>&1 || true # absent on a first run
rabbitmqctl --quiet add_vhost "$vhost" >/dev/null
rabbitmqctl --quiet set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
