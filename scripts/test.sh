#!/usr/bin/env bash
# Install what the tests need and run the whole suite.
#   Debian packages: samba, smbclient, openssh-server, redis-server (real servers the tests start on 127.0.0.1), tmux,
#   chromium (renders the HTML reports headless), time (GNU time: bench/peers/run_peers.sh, timed in a test)
#   Python: this project with its test extras, in .venv
# Extra arguments go to pytest (for example: scripts/test.sh -k rollback).
# The tests run on every core (pytest-xdist: -n auto; DEPLOYER_TEST_WORKERS=N or -n N to choose;
# -n 0 runs them in this process). Each worker starts its own servers on ports and in folders of
# its own; the tests that share a costly fixture (the twenty-site fleet) stay on one worker.
# The whole of each sampled matrix (signals, SIGKILL points): scripts/test.sh -m full, or
# DEPLOYER_FULL_MATRIX=1 scripts/test.sh to run it with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in smbd:samba smbclient:smbclient sshd:openssh-server tmux:tmux redis-server:redis-server chromium:chromium; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
[ -x /usr/bin/time ] || missing+=(time)  # `time` alone is the shell keyword: look for the program
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest -n "${DEPLOYER_TEST_WORKERS:-auto}" --dist loadgroup "$@"
