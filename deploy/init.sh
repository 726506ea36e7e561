#!/bin/sh
# One-shot preparation of a deployment on PostgreSQL, run before the servers start (compose's
# `init` service; `podman run --entrypoint bastion-init IMAGE` by hand): apply the migrations,
# then make sure a signing key exists for access tokens (BASTION_ACCESS_TOKEN_ALGORITHM, ES256
# by default) and for ID tokens (RS256). Running it again changes nothing: a key is created
# only for an algorithm that has no active or pending key.
set -eu
bastion db upgrade
for alg in $(printf '%s\n' "${BASTION_ACCESS_TOKEN_ALGORITHM:-ES256}" RS256 | sort -u); do
  if bastion keys list --json | python3 -c '
import json, sys
keys = json.load(sys.stdin)
sys.exit(0 if any(k["alg"] == sys.argv[1] and k["state"] in ("active", "pending") for k in keys) else 1)
' "$alg"; then
    echo "bastion-init: a $alg signing key exists" >&2
  else
    bastion keys rotate --alg "$alg"
  fi
done
