#!/usr/bin/env bash
# Run the test suite against the lowest or the newest dependency versions, in a fresh
# virtual environment that is removed afterwards.
#
#   tools/check-versions.sh minimum [PYTHON]   # the lower bounds, pinned in constraints/minimum.txt
#   tools/check-versions.sh newest  [PYTHON]   # the newest releases pip finds for PYTHON
#
# PYTHON is the interpreter to build the environment from (default: python3). The newest
# SciPy needs a recent Python (e.g. python3.12); the lowest NumPy and SciPy have wheels for
# Python 3.9 to 3.11. Extra arguments after PYTHON go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:?usage: tools/check-versions.sh minimum|newest [PYTHON] [PYTEST ARGS...]}
python=${2:-python3}
shift $(( $# >= 2 ? 2 : 1 ))
case "$which" in
    minimum) pins=(-c constraints/minimum.txt) ;;
    newest) pins=(--upgrade --upgrade-strategy eager) ;;
    *) echo "tools/check-versions.sh: expected 'minimum' or 'newest', got '$which'" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
py="$tmp/venv/bin/python"
install() {  # pip's output only when it fails
    "$py" -m pip install "$@" > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log" >&2; exit 1; }
}
install --upgrade pip
install "${pins[@]}" -e ".[test]"
"$py" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(numpy|scipy|matplotlib|tqdm|pooch|threadpoolctl|pytest|hypothesis|nbmake|numpydoc|dask|distributed)==' \
    | tr '\n' ' '
echo "(Python $("$py" -c 'import platform; print(platform.python_version())'))"
export MPLBACKEND=Agg
"$py" -m pytest -q -p no:cacheprovider "$@"
