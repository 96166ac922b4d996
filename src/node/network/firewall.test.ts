import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firewallRuleset, firewallTableName } from './firewall.js';

test('firewall ruleset: one table per bridge and family, replaced whole, ports pinned and marked', () => {
  const text = firewallRuleset({ bridge: 'ukc-br.0', bridgeIp: '10.88.0.1' }, [
    { ifname: 'uvaaaaaaaaaaaa', mac: '02:00:00:00:00:02', ip: '10.88.0.2', tenant: 1 },
    { ifname: 'uvbbbbbbbbbbbb', mac: '02:00:00:00:00:03', ip: '10.88.0.3' },
  ]);
  assert.equal(firewallTableName('ukc-br.0'), 'ukc_ukc_br_0');
  for (const family of ['bridge', 'inet']) {
    // Create, delete, create: idempotent in one transaction whether or not the table exists.
    assert.ok(text.includes(`table ${family} ukc_ukc_br_0\ndelete table ${family} ukc_ukc_br_0\ntable ${family} ukc_ukc_br_0 {`));
  }
  assert.match(text, /set pins \{ type ifname \. ether_addr \. ipv4_addr; elements = \{ "uvaaaaaaaaaaaa" \. 02:00:00:00:00:02 \. 10\.88\.0\.2, "uvbbbbbbbbbbbb"/);
  assert.match(text, /map tenant_of \{ type ifname : mark; elements = \{ "uvaaaaaaaaaaaa" : 1 \} \}/, 'a pool slot has no tenant');
  assert.doesNotMatch(text, /tcp dport/, 'no host port open by default');
  assert.match(firewallRuleset({ bridge: 'b', bridgeIp: '10.0.0.1', hostTcpPorts: [53] }, []), /ip daddr 10\.0\.0\.1 tcp dport \{ 53 \} accept/);
});

test('firewall ruleset: names, addresses and marks are validated before they reach nft', () => {
  const ok = { ifname: 'uvaaaaaaaaaaaa', mac: '02:00:00:00:00:02', ip: '10.88.0.2' };
  assert.throws(() => firewallRuleset({ bridge: 'b"; flush ruleset', bridgeIp: '10.0.0.1' }, []), TypeError);
  assert.throws(() => firewallRuleset({ bridge: 'b', bridgeIp: '10.0.0.1' }, [{ ...ok, ifname: 'x" }; flush ruleset' }]), TypeError);
  assert.throws(() => firewallRuleset({ bridge: 'b', bridgeIp: '10.0.0.1' }, [{ ...ok, mac: '02:00' }]), TypeError);
  assert.throws(() => firewallRuleset({ bridge: 'b', bridgeIp: '10.0.0.1' }, [{ ...ok, ip: '10.0.0.256' }]), TypeError);
  assert.throws(() => firewallRuleset({ bridge: 'b', bridgeIp: '10.0.0.1' }, [{ ...ok, tenant: 0 }]), RangeError);
});
