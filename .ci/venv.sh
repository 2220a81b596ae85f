# Sourced by the CI steps that need a tool from PyPI or npm. `ensure_venv <dir> <requirements>`
# makes (or reuses) a venv at <dir> holding exactly the pinned <requirements>.
ensure_venv() {
    local venv=$1 requirements=$2
    if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
        return 0
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
}

# `ensure_node_packages <source dir> <dir>`: copies the source dir's package.json and scripts
# (*.mjs) to <dir> and installs exactly its pinned packages there (Node itself among them, the
# `node` package from npm), reusing an install of the same package.json.
ensure_node_packages() {
    local source=$1 dir=$2
    mkdir -p "$dir"
    cp "$source/package.json" "$source/"*.mjs "$dir/"
    if ! cmp -s "$source/package.json" "$dir/node_modules/.installed-package.json"; then
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        cp "$source/package.json" "$dir/node_modules/.installed-package.json"
    fi
}
