# Sourced after tools/lib.sh: where the Pulumi engine lives and the environment that runs it offline.
# shellcheck shell=bash

# pulumi_bin_dir: the cache directory holding the engine built at exactly the pinned versions, language-host source
# and provider patches.
pulumi_bin_dir() {
  local host_src
  host_src=$(cat "$TOOLS_DIR"/pulumi/language-python/{go.mod,go.sum,main.go} "$TOOLS_DIR"/pulumi/*.patch |
    sha256sum | cut -c1-12)
  echo "$(cache_dir pulumi "$PULUMI_VERSION" "$PULUMI_KUBERNETES_VERSION" "$PULUMI_KUBERNETES_PROVIDER_MODULE" \
    "$host_src")/bin"
}

# pulumi: the built CLI, by full path. The bin dir is deliberately not put on PATH: a provider found on PATH is
# used whatever version the program asks for (with a warning), while one in the plugin cache must match exactly.
# The language host needs no PATH either: the CLI finds it beside itself.
pulumi() { "$(pulumi_bin_dir)/pulumi" "$@"; }

# pulumi_offline_env: exports what every Pulumi command of this project runs with: nothing is downloaded; state,
# credentials and the plugin cache stay inside the project (.state/); the provider is installed into that plugin
# cache under the version the Python SDK asks for.
pulumi_offline_env() {
  local bin; bin="$(pulumi_bin_dir)"
  export PULUMI_HOME="${PULUMI_HOME:-$PROJECT_DIR/.state/pulumi-home}"
  export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PROJECT_DIR/.state/pulumi}"
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  # Even if a user puts the bin dir on PATH, plugins come from the plugin cache (the CLI still finds its
  # language host beside itself).
  export PULUMI_IGNORE_AMBIENT_PLUGINS=true
  export PULUMI_SKIP_UPDATE_CHECK=true
  # The local stacks hold no secrets: an empty passphrase is the documented choice for a local file backend.
  export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
  [[ "$PULUMI_BACKEND_URL" == file://* ]] && mkdir -p "${PULUMI_BACKEND_URL#file://}"
  mkdir -p "$PULUMI_HOME"
  local plugin="$PULUMI_HOME/plugins/resource-kubernetes-$PULUMI_KUBERNETES_VERSION/pulumi-resource-kubernetes"
  if ! cmp -s "$bin/pulumi-resource-kubernetes" "$plugin"; then
    pulumi plugin install resource kubernetes "$PULUMI_KUBERNETES_VERSION" \
      --file "$bin/pulumi-resource-kubernetes" --reinstall >/dev/null
  fi
}
