#!/usr/bin/env bash
# `make ci-nonroot`: .github/workflows/ci.yml the way GitHub's ubuntu-24.04 runner runs it,
# on this machine. As root: create a user with passwordless sudo, clone REPO (its committed
# HEAD) into that user's home, run the user job's `run:` steps as that user, then the root
# job's entry point on one cheap needs_root test, to see it escalate through sudo.
set -euo pipefail

repo=$(cd "${1:?usage: run_as_runner.sh REPO}" && pwd)
user=${CI_USER:-stowage-ci}
home=/home/$user
clone=$home/stowage
workflow=$repo/.github/workflows/ci.yml
# Needs root for real: it mounts a tmpfs. A few seconds.
root_probe=tests/runtime/test_failures.py::test_full_disk_is_507_and_loses_nothing

if [ "$(id -u)" != 0 ]; then
  echo "make ci-nonroot creates a user and a sudoers entry: run it as root" >&2
  exit 1
fi
if ! command -v sudo >/dev/null; then
  echo "Installing sudo"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null
fi
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
sudoers=/etc/sudoers.d/$user
echo "$user ALL=(ALL:ALL) NOPASSWD: ALL" >"$sudoers.tmp"
chmod 0440 "$sudoers.tmp"
visudo -cqf "$sudoers.tmp"
mv "$sudoers.tmp" "$sudoers"
# Passwordless sudo only while this runs: the user and its clone stay for the next run.
trap 'rm -f "$sudoers"' EXIT
# This machine's package-registry settings (the runner reaches PyPI and npm by default).
if [ -f /root/.config/pip/pip.conf ]; then
  install -D -o "$user" -g "$user" -m 0644 /root/.config/pip/pip.conf "$home/.config/pip/pip.conf"
fi

# The Python of REPO's .venv, copied where the user may run it, stands for setup-python's
# tool cache on the runner, whose shared-libpython interpreter finds its library by RPATH
# (so `sudo` and a cleared environment keep working): give the copy one.
base=$("$repo/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')
python_dir=/opt/stowage-ci-python
if [ ! -x "$python_dir/bin/python3" ]; then
  echo "Copying the Python in $base (without its site-packages) to $python_dir"
  mkdir -p "$python_dir"
  tar -C "$base" --exclude='./lib/python3*/site-packages/*' --exclude='./lib/python3*/test' \
    --exclude='__pycache__' -cf - . | tar -C "$python_dir" -xf -
fi
if ! command -v patchelf >/dev/null; then
  echo "Installing patchelf"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null
fi
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
patchelf --set-rpath '$ORIGIN/../lib' "$(readlink -f "$python_dir/bin/python3")"

mapfile -t steps < <("$repo/.venv/bin/python" - "$workflow" <<'EOF'
import sys

import yaml

jobs = yaml.safe_load(open(sys.argv[1]))["jobs"]
for step in jobs["user"]["steps"]:
    if "run" in step:
        print("user\t" + step["run"])
print("root\t" + [step["run"] for step in jobs["root"]["steps"] if "run" in step][-1])
EOF
)

# A login-like environment: the user's PATH and HOME, plus this machine's CA and pip settings.
mapfile -t passed < <(env | grep -E '^(PIP_[A-Z_]+|[A-Z_]*(CA_BUNDLE|CA_CERTS|CAINFO)|SSL_CERT_(FILE|DIR))=' || true)
as_user() {
  sudo -u "$user" -H env -i HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 \
    PATH="$python_dir/bin:/usr/local/bin:/usr/bin:/bin" "${passed[@]}" bash -euo pipefail -c "$1"
}

rm -rf "$clone"
# REPO (and its git dir, a worktree's) belongs to root: this throwaway user trusts it.
as_user "git config --global --get safe.directory >/dev/null || git config --global safe.directory '*'"
as_user "git clone --quiet --no-local '$repo' '$clone'"
echo "Cloned $(as_user "git -C '$clone' log -1 --format='%h %s'") as $user into $clone"

# As on GitHub: a job stops at its first failing step; the two jobs run independently.
failed=()
for step in "${steps[@]}"; do
  job=${step%%$'\t'*} command=${step#*$'\t'}
  if [[ " ${failed[*]} " == *" $job "* ]]; then
    echo "== $job job: skipped after its failure: $command"
    continue
  fi
  if [ "$job" = root ]; then
    [ "$command" = "make test-root" ] || { echo "the root job ends with '$command', not 'make test-root'" >&2; exit 1; }
    command="make test-root PYTEST_ARGS='$root_probe'"
  fi
  echo "== $job job, as $user: $command"
  start=$SECONDS
  if ! as_user "cd '$clone' && $command" 2>&1 | tee "$home/last-step.log"; then
    echo "== FAILED after $((SECONDS - start)) s: $command"
    failed+=("$job")
  elif [ "$job" = root ] && ! grep -qE '^=+ 1 passed' "$home/last-step.log"; then
    echo "== FAILED: the root job's entry point did not pass $root_probe as root"
    failed+=("$job")
  else
    echo "== passed in $((SECONDS - start)) s: $command"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "ci-nonroot: failed job(s): ${failed[*]}" >&2
  exit 1
fi
echo "ci-nonroot: both jobs passed"
