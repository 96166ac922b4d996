/**
 * What `ukcd config print` and `ukcd config docs` write: the effective values with their
 * sources, and the settings table as markdown (docs/configuration.md is that output).
 */
import { envName, formatSettingValue, type Role, type Setting } from './schema.js';
import { SETTINGS } from './settings.js';
import type { DaemonConfig } from './load.js';

function range(s: Setting): string {
  if (s.kind === 'enum') return (s.values ?? []).join(', ');
  const lo = s.min !== undefined && s.min > 0 ? formatSettingValue(s, s.min) : undefined;
  const hi = s.max !== undefined && s.max < Number.MAX_SAFE_INTEGER ? formatSettingValue(s, s.max) : undefined;
  if (lo && hi) return `${lo} – ${hi}`;
  if (lo) return `≥ ${lo}`;
  if (hi) return `≤ ${hi}`;
  return '≥ 0';
}

function kindText(s: Setting): string {
  return s.kind === 'duration' ? `duration (${s.unit === 's' ? 's' : 'ms'})` : s.kind;
}

/**
 * One line per setting: `key = value  source[ origin]`, aligned. With `role`, only the
 * settings that role reads.
 */
export function formatEffectiveConfig(config: DaemonConfig, role?: Role): string {
  const rows = config
    .entries()
    .filter((e) => role === undefined || e.setting.roles.includes(role))
    .map((e) => [e.setting.key, formatSettingValue(e.setting, e.value), e.origin !== undefined ? `${e.source} ${e.origin}` : e.source] as const);
  const k = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => r[1].length));
  const head = config.file !== undefined ? `# config file: ${config.file}\n` : '# config file: none (defaults, environment and flags only)\n';
  return head + rows.map(([key, value, source]) => `${key.padEnd(k)} = ${value.padEnd(v)}  ${source}`).join('\n') + '\n';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The settings table as markdown: one section per key prefix. */
export function settingsMarkdown(settings: readonly Setting[] = SETTINGS): string {
  const out: string[] = [];
  let section = '';
  for (const s of settings) {
    const prefix = s.key.slice(0, s.key.indexOf('.'));
    if (prefix !== section) {
      section = prefix;
      out.push('', `### \`${prefix}\``, '', '| key | kind | default | range | roles | description |', '|---|---|---|---|---|---|');
    }
    const extra = [s.flag ? `Flag: \`${s.flag}\`.` : '', `Env: \`${envName(s.key)}\`.`].filter(Boolean).join(' ');
    out.push(
      `| \`${s.key}\` | ${kindText(s)} | \`${formatSettingValue(s, s.default)}\` | ${cell(range(s))} | ${s.roles.join(', ')} | ${cell(s.description)} ${extra} |`,
    );
  }
  return `${out.join('\n').trimStart()}\n`;
}
