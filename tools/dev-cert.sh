#!/usr/bin/env bash
# Makes a self-signed certificate for localhost, for trying wss:// and for the TLS tests.
#   tools/dev-cert.sh [DIR] [DAYS]   writes DIR/cert.pem and DIR/key.pem (default: ./dev-cert, 30)
# The certificate names localhost, 127.0.0.1 and ::1, and is its own CA: clients trust it by
# loading DIR/cert.pem as a CA (Python ssl cafile=, Node ws `ca:`, curl --cacert). Never use
# it for anything but development.
set -euo pipefail
dir="${1:-dev-cert}"
days="${2:-30}"
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -days "$days" \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "$dir/cert.pem $dir/key.pem"
