// The options every `ukcd` role takes for its config file (src/config reads them; see
// docs/configuration.md). Here, below every area, so a role outside src/daemon (the
// registry's command) lists them in its help as the daemon's roles do.
export const CONFIG_OPTIONS = {
  config: { type: 'string', value: 'PATH', help: 'the config file (default UKC_CONFIG, else $UKC_HOME/ukcd.yaml when it exists)' },
  set: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'set one setting, above the file and UKC_<KEY> (see `ukcd config docs`)' },
} as const;
