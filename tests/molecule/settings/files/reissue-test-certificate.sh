#!/usr/bin/env bash
# TEST-ONLY (settings scenario): the snapshot's certificates were issued by the site scenario's
# pebble, whose root CA lived only as long as that pebble. Sign new certificates for the same
# keys with a throw-away CA and trust that CA inside this container, so that a client on the
# container (the analytics collector) checks the web domain's certificate as it would in
# production. Nothing in the roles changes.
set -euo pipefail
domain="$1"
work=/root/settings-test-ca
mkdir -p "$work"
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
  -days 2 -subj "/CN=settings scenario throw-away CA" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$domain" >ext.cnf
for kind in ecdsa rsa; do
  live="/etc/letsencrypt/live/$domain-$kind"
  openssl req -new -key "$live/privkey.pem" -subj "/CN=$domain" -out "$kind.csr"
  openssl x509 -req -in "$kind.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
    -out "$kind.crt" 2>/dev/null
  cat "$kind.crt" >"$(readlink -f "$live/cert.pem")"
  cat ca.crt >"$(readlink -f "$live/chain.pem")"
  cat "$kind.crt" ca.crt >"$(readlink -f "$live/fullchain.pem")"
done
cp ca.crt /usr/local/share/ca-certificates/settings-scenario-ca.crt
update-ca-certificates >/dev/null
systemctl reload nginx
