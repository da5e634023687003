#!/usr/bin/env bash
# Installs the peer that bench/passthrough.py --peer measures: serverless-offline-edge-lambda 1.3.1 on the
# Serverless Framework v3 (v4 needs a login and downloads its own binary, so it cannot run offline), from npm,
# into bench/peer/node_modules. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --no-save serverless@3.40.0 serverless-offline-edge-lambda@1.3.1
echo "peer installed: $(node -p "require('serverless/package.json').version") + serverless-offline-edge-lambda \
$(node -p "require('serverless-offline-edge-lambda/package.json').version")"
