#!/usr/bin/env bash
# Makes the TEST-ONLY key material the examples name (certificates, private keys),
# as it was made once and committed. Every key here is public: it signs test tokens and serves
# example TLS, nothing else. Never trust these files anywhere; make your own for a deployment.
#
#   ./examples/make-test-material.sh            # (re)makes every example's test-only/ folder
#
# Needs the openssl command line (not a build dependency of Portcullis).
set -euo pipefail
cd "$(dirname "$0")"
DAYS=3650

# ca DIR NAME: a test CA in DIR/NAME-ca.pem (+ -key.pem).
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
    -subj "/CN=$2 test-only CA/O=Portcullis examples" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$1/$2-ca-key.pem" -out "$1/$2-ca.pem" 2>/dev/null
}

# leaf DIR CA NAME CN SANS USAGE: a certificate signed by CA, for serverAuth or clientAuth.
leaf() {
  local dir=$1 ca=$2 name=$3 cn=$4 sans=$5 usage=$6
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn/O=Portcullis examples" \
    -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$usage"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca-ca.pem" -CAkey "$dir/$ca-ca-key.pem" -CAcreateserial \
    -days "$DAYS" -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext" "$dir/$ca-ca.srl"
}

# jwt_key DIR NAME: an RSA 2048 key that signs an example IdP's tokens in `portcullis test`.
jwt_key() {
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1/$2.pem" 2>/dev/null
}

note() {
  cat >"$1/README.md" <<'NOTE'
# TEST-ONLY key material

Made by `examples/make-test-material.sh` and committed so that `portcullis validate`, `test`
and `run` work on this example out of the box. These private keys are public: they serve
example TLS and sign example tokens, nothing else. **Never trust them anywhere**, and never
deploy them: make your own certificates and keys (or point the config at your IdP and CA).
NOTE
}

fresh() { rm -rf "$1"; mkdir -p "$1"; note "$1"; }

# 1. soap-crm: the public certificate, and the CA the private CRM's certificate chains to.
d=soap-crm/test-only; fresh $d
ca $d public; leaf $d public api "api.crm.example.com" "DNS:api.crm.example.com" serverAuth
ca $d crm-internal

# 2. partner-apis: the public certificate, and the OpenID provider's signing key.
d=partner-apis/test-only; fresh $d
ca $d public; leaf $d public api "partners.example.com" "DNS:partners.example.com" serverAuth
jwt_key $d idp-signing-key

# 3. internal-apis: a wildcard certificate for the stable names, and an Azure-AD-style key.
d=internal-apis/test-only; fresh $d
ca $d corp; leaf $d corp apis "*.apis.corp.example" "DNS:*.apis.corp.example" serverAuth
jwt_key $d entra-signing-key

# 4. essentials: two generations of the server certificate (rotation), the backends' CA and
# the gateway's client certificate for mTLS to them, and the IdP's signing key.
d=essentials/test-only; fresh $d
ca $d public; leaf $d public api "api.example.com" "DNS:api.example.com,DNS:www.example.com" serverAuth
leaf $d public api-next "api.example.com" "DNS:api.example.com,DNS:www.example.com" serverAuth
ca $d backends; leaf $d backends gateway-client "portcullis-gateway" "" clientAuth
jwt_key $d idp-signing-key

# 5. public-api: the custom domain's certificate, the Redis and PostgreSQL servers' CA.
d=public-api/test-only; fresh $d
ca $d public; leaf $d public api "api.weatherly.example" "DNS:api.weatherly.example" serverAuth
ca $d data

# The CAs' private keys are not needed by any config: drop them rather than commit them.
rm -f ./*/test-only/*-ca-key.pem
