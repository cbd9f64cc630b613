#!/usr/bin/env bash
# Starts what the test suite needs, each only when it is down, and waits until
# it answers: PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, RabbitMQ
# on 127.0.0.1:5672 (with the vhost the tests use, RABBITMQ_VHOST, granted to
# guest), and Debian's chromium for the browser tests (installed with apt-get
# when missing; never a downloaded browser). `make test` and `.ci/run` call it;
# running it again when everything is up changes nothing.
set -euo pipefail

RABBITMQ_VHOST="${RABBITMQ_VHOST:-mc_test}"
WAIT_SECONDS="${WAIT_SECONDS:-60}"

say() { printf '[services] %s\n' "$*"; }
fail() { printf '[services] %s\n' "$*" >&2; exit 1; }

# wait_until WHAT COMMAND...: run COMMAND every half second until it succeeds.
wait_until() {
    local what=$1; shift
    local tries=$((WAIT_SECONDS * 2))
    for _ in $(seq 1 "$tries"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    fail "$what did not answer within ${WAIT_SECONDS} s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL --------------------------------------------------------------------
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if pg_up; then
    say "PostgreSQL: up"
else
    say "PostgreSQL: starting"
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_until "PostgreSQL" pg_up
    say "PostgreSQL: up"
fi

# --- Redis -------------------------------------------------------------------------
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
if redis_up; then
    say "Redis: up"
else
    say "Redis: starting"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_until "Redis" redis_up
    say "Redis: up"
fi

# --- RabbitMQ ----------------------------------------------------------------------
# Its listener opens only once the broker has booted, so an open port is an
# answer; `await_startup` confirms it when we started it ourselves.
if port_open 5672; then
    say "RabbitMQ: up"
else
    if rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        # The node runs but its application was stopped (rabbitmqctl stop_app).
        say "RabbitMQ: starting its application"
        rabbitmqctl -q start_app
    else
        say "RabbitMQ: starting"
        rabbitmq-server -detached
    fi
    wait_until "RabbitMQ" rabbitmqctl -q --timeout 10 await_startup
    wait_until "RabbitMQ's AMQP port" port_open 5672
    say "RabbitMQ: up"
fi
# The tests' own vhost, so their queues and exchanges never mix with anything
# else on the broker. Both commands are idempotent; skipped when already done.
if ! rabbitmqctl -q list_permissions -p "$RABBITMQ_VHOST" 2>/dev/null | grep -q '^guest[[:space:]]'; then
    rabbitmqctl -q add_vhost "$RABBITMQ_VHOST"
    rabbitmqctl -q set_permissions -p "$RABBITMQ_VHOST" guest ".*" ".*" ".*"
    say "RabbitMQ: vhost $RABBITMQ_VHOST granted to guest"
fi

# --- Chromium (Debian's; never a downloaded browser) --------------------------------
if [ -x /usr/bin/chromium ]; then
    say "Chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
    [ "$(id -u)" = 0 ] || fail "Chromium: /usr/bin/chromium is missing; as root: apt-get install chromium"
    say "Chromium: installing Debian's package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    say "Chromium: $(/usr/bin/chromium --version)"
fi
