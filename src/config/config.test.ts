// The settings table and its loader: refusals with the file's line, kinds and ranges,
// the precedence default < file < env < flag, and what `config print` shows.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { ConfigError, envName, formatEffectiveConfig, loadDaemonConfig, parseSettingValue, SETTINGS, settingOf, settingsMarkdown } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'ukc-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `ukcd-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err;
  }
  assert.fail('no error');
}

describe('the settings table', () => {
  it('has unique keys, and every default is a value its own setting accepts', () => {
    assert.equal(new Set(SETTINGS.map((s) => s.key)).size, SETTINGS.length);
    assert.ok(SETTINGS.length >= 70, `${SETTINGS.length} settings`);
    for (const s of SETTINGS) {
      assert.match(s.key, /^[a-z_]+\.[a-z0-9_]+$/, s.key);
      assert.ok(s.description.length > 10, `${s.key} is described`);
      assert.deepEqual(parseSettingValue(s, s.default), s.default, `${s.key}'s default fits its range`);
    }
  });

  it('reads sizes and durations with units, in the unit the code takes', () => {
    assert.equal(parseSettingValue(settingOf('registry.max_blob_bytes')!, '64MiB'), 64 * 1024 * 1024);
    assert.equal(parseSettingValue(settingOf('registry.max_blob_bytes')!, '1MB'), 1_000_000);
    assert.equal(parseSettingValue(settingOf('registry.upload_session_timeout')!, '15m'), 900_000);
    assert.equal(parseSettingValue(settingOf('registry.retry_after')!, '2m'), 120, 'a duration in seconds');
    assert.equal(parseSettingValue(settingOf('registry.retry_after')!, 30), 30);
  });

  it('docs/configuration.md ends with the table as `ukcd config docs` prints it (regenerate it when a setting changes)', () => {
    // dist/src/config/ → the repository root.
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)), 'utf8');
    assert.ok(doc.endsWith(`## Settings\n\n${settingsMarkdown()}`), 'docs/configuration.md is out of date: node bin/ukcd.js config docs');
  });

  it('docs list every setting with its environment variable', () => {
    const md = settingsMarkdown();
    for (const s of SETTINGS) {
      assert.ok(md.includes(`| \`${s.key}\` |`), s.key);
      assert.ok(md.includes(envName(s.key)), envName(s.key));
    }
  });
});

describe('ukcd.yaml', () => {
  it('refuses an unknown key with its line and column, and suggests the known one', () => {
    const path = file('log:\n  level: debug\nregistry:\n  max_blob_bytes: 1MiB\n  max_blob: 5\n');
    const err = refusal(() => loadDaemonConfig({ configPath: path, home: dir, env: {} }));
    assert.equal(err.message, `${path}:5:3: unknown key "registry.max_blob" (did you mean registry.max_blob_bytes?)`);
    const top = refusal(() => loadDaemonConfig({ configPath: file('\n\nregistri:\n  max_blob_bytes: 1\n'), home: dir, env: {} }));
    assert.match(top.message, /:3:1: unknown key "registri"/);
  });

  it('refuses a value of the wrong kind, out of range, or a map where a value goes, with the line', () => {
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry:\n  max_blob_bytes: lots\n'), home: dir, env: {} })).message, /:2:19: registry\.max_blob_bytes must be a size in bytes/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry:\n  max_page_size: 1.5\n'), home: dir, env: {} })).message, /:2:18: registry\.max_page_size must be a whole number/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry:\n  max_page_size: 0\n'), home: dir, env: {} })).message, /:2:18: registry\.max_page_size must be at least 1, not 0/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('node_auth:\n  negative_ttl: 5s\n'), home: dir, env: {} })).message, /negative_ttl must be at most 1s, not 5s/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('log:\n  level: loud\n'), home: dir, env: {} })).message, /:2:10: log\.level must be one of trace, debug/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry: 5\n'), home: dir, env: {} })).message, /:1:11: registry is a section/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry:\n  max_blob_bytes: [1]\n'), home: dir, env: {} })).message, /:2:19: registry\.max_blob_bytes takes a single value/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('- a\n- b\n'), home: dir, env: {} })).message, /:1:1: the file must be a map/);
  });

  it('refuses YAML that does not parse, duplicate keys, and a missing --config file', () => {
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('registry: [1\n'), home: dir, env: {} })).message, /:2:1: not valid YAML/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: file('log:\n  level: info\n  level: warn\n'), home: dir, env: {} })).message, /:3:3: not valid YAML: Map keys must be unique/);
    assert.match(refusal(() => loadDaemonConfig({ configPath: join(dir, 'absent.yaml'), home: dir, env: {} })).message, /cannot read config file .*absent\.yaml: no such file/);
  });

  it('an empty file, or none at all, leaves every default', () => {
    const config = loadDaemonConfig({ configPath: file('# nothing yet\n'), home: dir, env: {} });
    assert.ok(config.entries().every((e) => e.source === 'default' && e.value === e.setting.default));
    const home = mkdtempSync(join(dir, 'home-'));
    assert.equal(loadDaemonConfig({ home, env: {} }).file, undefined);
  });
});

describe('precedence: default < file < env < flag', () => {
  const home = mkdtempSync(join(dir, 'home-'));
  writeFileSync(join(home, 'ukcd.yaml'), 'registry:\n  max_blob_bytes: 1MiB\n  max_page_size: 10\n  max_referrers: 7\nlistener:\n  idle_timeout: 2s\n');

  it('the home file, then UKC_<KEY>, then --set, then a role flag win in turn', () => {
    const config = loadDaemonConfig({
      home,
      env: { UKC_REGISTRY_MAX_PAGE_SIZE: '20', UKC_REGISTRY_MAX_REFERRERS: '30', UKC_LISTENER_IDLE_TIMEOUT: '3s', UKC_HOME: '/not/a/setting' },
      sets: ['registry.max_referrers=40', 'registry.upload_session_timeout=10m'],
      flags: [{ key: 'registry.upload_session_timeout', flag: '--upload-timeout', value: '20m' }, { key: 'log.level', flag: '--log-level', value: undefined }],
    });
    assert.equal(config.file, join(home, 'ukcd.yaml'));
    const at = (key: string) => config.entries().find((e) => e.setting.key === key)!;
    assert.deepEqual([at('registry.max_blob_bytes').value, at('registry.max_blob_bytes').source], [1024 * 1024, 'file']);
    assert.deepEqual([at('registry.max_page_size').value, at('registry.max_page_size').source, at('registry.max_page_size').origin], [20, 'env', 'UKC_REGISTRY_MAX_PAGE_SIZE']);
    assert.deepEqual([at('registry.max_referrers').value, at('registry.max_referrers').source, at('registry.max_referrers').origin], [40, 'flag', '--set']);
    assert.deepEqual([at('registry.upload_session_timeout').value, at('registry.upload_session_timeout').origin], [20 * 60_000, '--upload-timeout']);
    assert.deepEqual([at('listener.idle_timeout').value, at('listener.idle_timeout').source], [3000, 'env']);
    assert.deepEqual([at('log.level').value, at('log.level').source], ['info', 'default']);
  });

  it('--config and UKC_CONFIG choose another file', () => {
    const other = file('registry:\n  max_page_size: 99\n');
    assert.equal(loadDaemonConfig({ home, env: { UKC_CONFIG: other } }).number('registry.max_page_size'), 99);
    assert.equal(loadDaemonConfig({ home, configPath: other, env: { UKC_CONFIG: join(dir, 'absent') } }).number('registry.max_page_size'), 99);
  });

  it('a bad environment value or --set is refused naming it', () => {
    assert.match(refusal(() => loadDaemonConfig({ home, env: { UKC_REGISTRY_MAX_PAGE_SIZE: 'many' } })).message, /^UKC_REGISTRY_MAX_PAGE_SIZE: registry\.max_page_size must be a whole number/);
    assert.match(refusal(() => loadDaemonConfig({ home, env: {}, sets: ['registry.max_pages=3'] })).message, /^--set: unknown key "registry\.max_pages"/);
    assert.match(refusal(() => loadDaemonConfig({ home, env: {}, sets: ['registry.max_page_size'] })).message, /want KEY=VALUE/);
    assert.match(refusal(() => loadDaemonConfig({ home, env: {}, sets: ['gateway.max_retries=-1'] })).message, /^--set gateway\.max_retries: gateway\.max_retries must be a whole number/);
  });

  it('a bad value is refused even where a higher layer would win', () => {
    assert.match(refusal(() => loadDaemonConfig({ home, env: { UKC_REGISTRY_MAX_PAGE_SIZE: 'many' }, sets: ['registry.max_page_size=5'] })).message, /^UKC_REGISTRY_MAX_PAGE_SIZE:/);
    const flags = [{ key: 'registry.max_page_size', flag: '--page', value: '6' }];
    assert.match(refusal(() => loadDaemonConfig({ home, env: {}, sets: ['registry.max_page_size=x'], flags })).message, /^--set registry\.max_page_size:/);
  });

  it('print shows each effective value with its source and origin', () => {
    const config = loadDaemonConfig({ home, env: { UKC_REGISTRY_MAX_PAGE_SIZE: '20' }, sets: ['registry.max_referrers=40'] });
    const text = formatEffectiveConfig(config, 'registry');
    assert.match(text, new RegExp(`^# config file: ${join(home, 'ukcd.yaml').replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(text, /^registry\.max_blob_bytes +?= 1MiB +file .*ukcd\.yaml:2:19$/m);
    assert.match(text, /^registry\.max_page_size +?= 20 +env UKC_REGISTRY_MAX_PAGE_SIZE$/m);
    assert.match(text, /^registry\.max_referrers +?= 40 +flag --set$/m);
    assert.match(text, /^registry\.max_manifest_bytes +?= 4MiB +default$/m);
    assert.doesNotMatch(text, /^gateway\./m, 'only the role\'s settings');
  });
});
