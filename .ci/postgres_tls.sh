#!/usr/bin/env bash
# Makes the local PostgreSQL cluster accept TCP connections over TLS only, as a managed
# production database does: a CA and a server certificate for 127.0.0.1 made here, `ssl = on`,
# and `hostssl` the only TCP lines of pg_hba.conf. Prints the CA file's path on stdout.
#
#   CA=$(bash .ci/postgres_tls.sh 15)   # then ?sslmode=verify-full&sslrootcert=$CA
set -euo pipefail
PG_VERSION=$1
DIR=/etc/postgresql/$PG_VERSION/main
CERTS=/var/lib/postgresql/cpis-tls
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
mkdir -p "$CERTS"
cd "$CERTS"
if [ ! -s server.crt ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cpis-ci-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile san.ext -out server.crt 2>/dev/null
fi
chown postgres:postgres server.key server.crt
chmod 600 server.key
chmod 644 ca.crt
cat > "$DIR/conf.d/cpis-tls.conf" <<CONF
ssl = on
ssl_cert_file = '$CERTS/server.crt'
ssl_key_file = '$CERTS/server.key'
CONF
# TCP over TLS only; the local socket (for administration as the postgres user) stays.
grep -v -E '^\s*host(ssl|nossl)?\s' "$DIR/pg_hba.conf" > "$DIR/pg_hba.conf.new" || true
cat >> "$DIR/pg_hba.conf.new" <<'HBA'
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
HBA
mv "$DIR/pg_hba.conf.new" "$DIR/pg_hba.conf"
chown postgres:postgres "$DIR/pg_hba.conf"
pg_ctlcluster "$PG_VERSION" main restart
for _ in $(seq 1 30); do
    su postgres -c "pg_isready -q -h 127.0.0.1" && break
    sleep 1
done
echo "$CERTS/ca.crt"
