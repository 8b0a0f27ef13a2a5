#!/usr/bin/env sh
# Install Stoplight Prism into a project-local folder (never globally) and print the
# path of its executable. Used by the provider tests and by .ci/run.
#
#   .ci/prism.sh            install if missing, print the prism path
#   PRISM_DIR=... .ci/prism.sh   install elsewhere (default: .ci/node)
#
# The folder only gets node_modules/ (ignored by git): no package.json or lock file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${PRISM_DIR:-"$here/node"}
version=${PRISM_VERSION:-5}
bin="$dir/node_modules/.bin/prism"
if [ ! -x "$bin" ]; then
    command -v npm >/dev/null 2>&1 || { echo "prism.sh: npm not found" >&2; exit 127; }
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "@stoplight/prism-cli@$version" >&2
fi
echo "$bin"
