# Sourced by the scripts in this folder. sudo resets PATH to a short list, which drops the
# usual places of a Go installed from go.dev; add them back when go is not on the PATH.
if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/go/bin}" "$HOME/go/bin" /usr/lib/go/bin; do
    if [[ -n $candidate && -x $candidate/go ]]; then
      export PATH="$candidate:$PATH"
      break
    fi
  done
fi
