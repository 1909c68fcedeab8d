#!/bin/sh
# The stack's secrets, made on the first `docker compose up` and kept in the `secrets` volume
# (docker-compose.yml's one-shot `secrets` service runs this before anything else, every time):
#
#   secret-key         SECRET_KEY_FILE: derives every API key's webhook secret
#   redis-password     REDIS_PASSWORD_FILE: what every service authenticates to Redis with
#   flower-basic-auth  FLOWER_BASIC_AUTH_FILE: admin:<password> for Flower's pages
#   redis.conf         read by redis-server: requirepass (never on a command line ps shows)
#
# A value given in the environment (SECRET_KEY, REDIS_PASSWORD, FLOWER_BASIC_AUTH, e.g. from
# .env) is written to its file; otherwise a file that exists is kept as it is (so the secrets
# survive `docker compose down` and `up`; `down -v` deletes them); otherwise a new random value
# (32 bytes from /dev/urandom, hex) is written. The app's files belong to APP_UID (10001, the
# images' user), redis.conf to the redis user of the Redis image this runs in; all mode 0400.
# SECRETS_DIR (default /secrets) lets tests run it on a folder of their own.
set -eu

DIR=${SECRETS_DIR:-/secrets}
APP_UID=${APP_UID:-10001}
REDIS_USER=${REDIS_USER:-redis}
umask 077
mkdir -p "$DIR"
chmod 0755 "$DIR"

random() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# write NAME VALUE: atomically (a temporary file renamed), so a reader never sees half a file.
write() {
    tmp=$(mktemp "$DIR/.$1.XXXXXX")
    printf '%s\n' "$2" > "$tmp"
    chmod 0400 "$tmp"
    mv -f "$tmp" "$DIR/$1"
}

# secret NAME GIVEN DEFAULT: the given value, else the kept file, else DEFAULT.
secret() {
    if [ -n "$2" ]; then
        write "$1" "$2"
        echo "secrets: $1 from the environment"
    elif [ -s "$DIR/$1" ]; then
        echo "secrets: $1 kept"
    else
        write "$1" "$3"
        echo "secrets: $1 generated"
    fi
}

secret secret-key "${SECRET_KEY:-}" "$(random)"
secret redis-password "${REDIS_PASSWORD:-}" "$(random)"
secret flower-basic-auth "${FLOWER_BASIC_AUTH:-}" "admin:$(random)"

# redis.conf follows redis-password at every start: a double-quoted string, \ and " escaped.
password=$(cat "$DIR/redis-password")
quoted=$(printf '%s' "$password" | sed 's/[\\"]/\\&/g')
write redis.conf "$(printf '# Written by deploy/secrets.sh at every start: do not edit.\nrequirepass "%s"\nmasterauth "%s"\nprotected-mode yes' "$quoted" "$quoted")"
# The `ha` profile's Sentinels (docker-compose.yml) copy this and watch `redis` under the name
# xmlconv, with the same password to reach it and its replica.
write sentinel.conf "$(printf '# Written by deploy/secrets.sh at every start: do not edit.\nport 26379\nsentinel resolve-hostnames yes\nsentinel monitor xmlconv redis 6379 2\nsentinel auth-pass xmlconv "%s"\nsentinel down-after-milliseconds xmlconv 5000\nsentinel failover-timeout xmlconv 60000' "$quoted")"

if [ "$(id -u)" = 0 ]; then
    chown "$APP_UID:$APP_UID" "$DIR/secret-key" "$DIR/redis-password" "$DIR/flower-basic-auth"
    if id "$REDIS_USER" >/dev/null 2>&1; then
        chown "$REDIS_USER" "$DIR/redis.conf" "$DIR/sentinel.conf"
    fi
fi
