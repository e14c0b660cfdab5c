#!/usr/bin/env bash
# The PostgreSQL tests need a server on 127.0.0.1:5432 (these machines run one). Start it if it stopped;
# if none is installed, say so: the PostgreSQL tests then skip with that reason.
set -u
url_host=127.0.0.1
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$url_host" -p 5432; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h "$url_host" -p 5432 && exit 0; sleep 1; done
fi
echo "ensure-postgres: no PostgreSQL on $url_host:5432; PostgreSQL tests will be skipped" >&2
exit 0
