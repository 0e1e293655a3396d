#!/bin/sh
# Installs the pinned Claude Code CLI that the `claude`-marked tests run (they talk to a scripted
# Messages API on 127.0.0.1, so no Anthropic account is needed). Needs node >= 20 and npm.
# Idempotent: does nothing when the pinned version already runs. Usage: .ci/install-claude.sh
set -eu

version="${CLAUDE_CODE_VERSION:-2.1.332}"
package="@anthropic-ai/claude-code"
expected="$version (Claude Code)"

installed_version() {
    # The npm global bin may not be on PATH (a custom prefix); look there as well.
    for candidate in "$(npm prefix -g 2>/dev/null)/bin/claude" "$(command -v claude || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            "$candidate" --version 2>/dev/null && return 0
        fi
    done
    return 1
}

if ! command -v npm >/dev/null 2>&1; then
    echo "$0: npm is missing; install Node.js 20 or newer first" >&2
    exit 2
fi

if [ "$(installed_version || true)" = "$expected" ]; then
    echo "Claude Code $version is already installed"
    exit 0
fi

# --allow-scripts: npm 11 lists unreviewed install scripts and will block them by default in a
#   later release; the package's postinstall is what puts the native binary in place.
# --engine-strict=false: the package asks for node >= 22, but node only runs that postinstall
#   (the CLI itself is a native binary); node 20 works, and an engine-strict npmrc would refuse.
# With strict-allow-scripts, npm lstat()s the global node_modules folder before creating it.
mkdir -p "$(npm root -g)"
npm install -g --no-fund --no-audit --engine-strict=false \
    --allow-scripts="$package" "$package@$version"

prefix_bin="$(npm prefix -g)/bin"
if ! "$prefix_bin/claude" --version >/dev/null 2>&1; then
    # Scripts were skipped anyway (ignore-scripts in an npmrc): the bin is still the stub that
    # prints "claude native binary not installed". Run the postinstall by hand.
    (cd "$(npm root -g)/$package" && node install.cjs)
fi

actual="$("$prefix_bin/claude" --version)"
if [ "$actual" != "$expected" ]; then
    echo "$0: expected '$expected', got '$actual'" >&2
    exit 1
fi
case ":$PATH:" in
    *":$prefix_bin:"*) ;;
    *) echo "$0: note: add $prefix_bin to PATH so the tests find claude" >&2 ;;
esac
echo "$actual"
