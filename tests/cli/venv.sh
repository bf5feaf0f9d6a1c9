# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by the test runners that need PyPI packages Debian does not
# have (run_record.sh, run_bridge_workers.sh).
#
# ensure_venv WHO VENV IMPORTS PACKAGE...: make the virtualenv VENV with
# PACKAGEs from PyPI unless its python can already run "import IMPORTS";
# WHO names the caller in the one-line error.
ensure_venv() {
	local who=$1 venv=$2 imports=$3
	shift 3
	"$venv/bin/python" -c "import $imports" 2>/dev/null && return 0
	if ! "${PYTHON:-python3}" -m venv "$venv"; then
		echo "$who: 'python3 -m venv' failed; on Debian install python3-venv" >&2
		return 1
	fi
	"$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
}
