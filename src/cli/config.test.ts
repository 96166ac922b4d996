import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, loadConfig, parseConfig, resolveSettings, saveConfig, type CliConfig } from './config.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ukc-cli-config-'));
}

const sample: CliConfig = {
  currentProfile: 'dev',
  profiles: {
    dev: {
      token: 'ukc_devtoken',
      account: 'root',
      controlplane: 'http://127.0.0.1:7000',
      registry: '127.0.0.1:7000',
      metro: 'dev',
      metros: { dev: { api: 'http://127.0.0.1:7001', registry: '127.0.0.1:7001' } },
    },
    prod: { token: 'ukc_prod', metros: { fra: { api: 'https://api.fra.example' }, was: { api: 'https://api.was.example' } } },
  },
};

test('config path: --config, then UNIKRAFT_CONFIG, then XDG, then HOME', () => {
  assert.equal(configPath({ HOME: '/h' }, '/x.yaml'), '/x.yaml');
  assert.equal(configPath({ HOME: '/h', UNIKRAFT_CONFIG: '/u.yaml' }), '/u.yaml');
  assert.equal(configPath({ HOME: '/h', XDG_CONFIG_HOME: '/xdg' }), '/xdg/unikraft/config.yaml');
  assert.equal(configPath({ HOME: '/h' }), '/h/.config/unikraft/config.yaml');
});

test('save then load round-trips, with mode 0600', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'nested', 'config.yaml');
    saveConfig(path, sample);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(loadConfig(path), sample);
    assert.match(readFileSync(path, 'utf8'), /^current-profile: dev\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing file is an empty config', () => {
  assert.deepEqual(loadConfig('/nonexistent/ukc/config.yaml'), { profiles: {} });
});

test('hostile or mistyped config is refused naming the file and key', () => {
  assert.throws(() => parseConfig('/c.yaml', 'profiles: [1, 2]'), /config \/c\.yaml: profiles must be a map/);
  assert.throws(() => parseConfig('/c.yaml', 'profiles:\n  dev:\n    token: 42\n'), /profiles\.dev\.token must be a string/);
  assert.throws(() => parseConfig('/c.yaml', 'profiles:\n  dev:\n    tokn: x\n'), /unknown key "tokn"/);
  assert.throws(() => parseConfig('/c.yaml', 'profiles:\n  "../x":\n    token: a\n'), /invalid profile name/);
  assert.throws(() => parseConfig('/c.yaml', 'profiles:\n  dev:\n    metros:\n      fra: {registry: r}\n'), /metros\.fra\.api is required/);
  assert.throws(() => parseConfig('/c.yaml', 'a: [\n'), /not valid YAML/);
});

test('settings: env token beats the profile, UKC_TOKEN first; UKC_METRO picks the metro', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'config.yaml');
    saveConfig(path, sample);
    const base = { UNIKRAFT_CONFIG: path };
    const fromProfile = resolveSettings(base, {});
    assert.equal(fromProfile.token, 'ukc_devtoken');
    assert.equal(fromProfile.tokenSource, 'profile dev');
    assert.equal(fromProfile.metroApi, 'http://127.0.0.1:7001');
    assert.equal(fromProfile.account, 'root');
    const fromEnv = resolveSettings({ ...base, KRAFTCLOUD_TOKEN: 'k', UNIKRAFT_CLOUD_TOKEN: 'u' }, {});
    assert.equal(fromEnv.token, 'u');
    assert.equal(fromEnv.tokenSource, 'UNIKRAFT_CLOUD_TOKEN');
    assert.equal(resolveSettings({ ...base, UKC_TOKEN: 't', KRAFTCLOUD_TOKEN: 'k' }, {}).token, 't');
    const prod = resolveSettings({ ...base, UKC_METRO: 'was' }, { profile: 'prod' });
    assert.equal(prod.metroApi, 'https://api.was.example');
    const byUrl = resolveSettings({ ...base, UKC_METRO: 'http://10.1.2.3:8080' }, {});
    assert.equal(byUrl.metroApi, 'http://10.1.2.3:8080');
    assert.throws(() => resolveSettings(base, { profile: 'nope' }), /no profile "nope".*profiles: dev, prod/);
    // The real CLI's UNIKRAFT_PROFILE selects the profile (ukc's UKC_PROFILE too); the flag beats both.
    assert.equal(resolveSettings({ ...base, UNIKRAFT_PROFILE: 'prod', UKC_METRO: 'was' }, {}).metroApi, 'https://api.was.example');
    assert.equal(resolveSettings({ ...base, UNIKRAFT_PROFILE: 'prod' }, { profile: 'dev' }).metroApi, 'http://127.0.0.1:7001');
    assert.throws(() => resolveSettings({ ...base, UNIKRAFT_PROFILE: 'nope' }, {}), /no profile "nope"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a config file that is not YAML fails loudly rather than being overwritten', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'profiles: {dev: {token: [}');
    assert.throws(() => loadConfig(path), /not valid YAML/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
