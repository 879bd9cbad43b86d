# Sourced after tools/lib.sh: where the Pulumi engine lives and the environment that runs it offline.
# shellcheck shell=bash

# pulumi_bin_dir: the cache directory holding the engine built at exactly the pinned versions and language-host source.
pulumi_bin_dir() {
  local host_src
  host_src=$(cat "$TOOLS_DIR"/pulumi/language-python/{go.mod,go.sum,main.go} | sha256sum | cut -c1-12)
  echo "$(cache_dir pulumi "$PULUMI_VERSION" "$PULUMI_KUBERNETES_VERSION" "$PULUMI_KUBERNETES_PROVIDER_MODULE" \
    "$host_src")/bin"
}

# pulumi_offline_env: exports what every Pulumi command of this project runs with. Plugins come only from the
# engine's bin dir (on PATH); nothing is downloaded; state, credentials and plugin cache stay inside the project.
pulumi_offline_env() {
  local bin; bin="$(pulumi_bin_dir)"
  export PATH="$bin:$PATH"
  export PULUMI_HOME="${PULUMI_HOME:-$PROJECT_DIR/.state/pulumi-home}"
  export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PROJECT_DIR/.state/pulumi}"
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  export PULUMI_SKIP_UPDATE_CHECK=true
  export PULUMI_SKIP_CONFIRMATIONS=true
  # The local stacks are not secret stores: an empty passphrase is the documented choice for file backends.
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
  mkdir -p "$PULUMI_HOME" "${PULUMI_BACKEND_URL#file://}"
}
