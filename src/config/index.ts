// Public face of src/config: the settings table of `ukcd` (every named limit of the roles),
// its loader (default < ukcd.yaml < UKC_<KEY> < flags) and what `ukcd config` prints.
export { ConfigError, envName, formatSettingValue, parseSettingValue, ROLES, type Role, type Setting, type SettingKind, type SettingValue } from './schema.js';
export * from './settings.js';
export {
  CONFIG_FILE_NAME,
  configFileOf,
  DaemonConfig,
  loadDaemonConfig,
  MAX_CONFIG_FILE_BYTES,
  parseConfigText,
  settingOf,
  type ConfigInputs,
  type EffectiveSetting,
  type SettingSource,
} from './load.js';
export { formatEffectiveConfig, settingsMarkdown } from './docs.js';
