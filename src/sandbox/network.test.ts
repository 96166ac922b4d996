import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetlinkError, addressInSubnet, hostVethName, netnsAddRequest, netnsDelRequest, parseCidr, parseIpv4, parseNetnsReply } from './network.js';
import { parseMountInfo } from './mounts.js';

test('addressInSubnet skips network and broadcast', () => {
  assert.equal(addressInSubnet('10.88.0.0/16', 1), '10.88.0.1/16');
  assert.equal(addressInSubnet('10.88.7.9/16', 258), '10.88.1.2/16');
  assert.equal(addressInSubnet('192.168.5.0/24', 254), '192.168.5.254/24');
  assert.throws(() => addressInSubnet('192.168.5.0/24', 255), RangeError);
  assert.throws(() => addressInSubnet('192.168.5.0/24', 0), RangeError);
});

test('hostile or malformed addresses are rejected', () => {
  for (const bad of ['10.0.0.1', '10.0.0.256/24', '010.0.0.1/24', '10.0.0.1/33', '10.0.0.1/24; reboot', ' 10.0.0.1/24', '10.0.0/24']) {
    assert.throws(() => parseCidr(bad), TypeError, bad);
  }
  assert.throws(() => parseIpv4('1.2.3.4 dev lo'), TypeError);
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
});

test('host veth names fit IFNAMSIZ and are stable', () => {
  const n = hostVethName('instance-with-a-very-long-name-0123456789');
  assert.ok(n.length <= 15);
  assert.equal(n, hostVethName('instance-with-a-very-long-name-0123456789'));
  assert.notEqual(n, hostVethName('other'));
});

test('parseMountInfo reads mount point, type, source and options', () => {
  const m = parseMountInfo('36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n');
  assert.deepEqual(m, [{ mountPoint: '/mnt x', options: ['rw', 'noatime'], fsType: 'ext3', source: '/dev/root' }]);
});

test('netns helper requests: one line each, host veth derived from the netns name', () => {
  const veth = hostVethName('ukcn-0011');
  assert.equal(
    netnsAddRequest({ name: 'ukcn-0011', bridge: 'ukcbr0', address: '10.88.0.5/16', gateway: '10.88.0.1' }),
    `add ukcn-0011 ${veth} ukcbr0 10.88.0.5/16 10.88.0.1 -\n`,
  );
  assert.equal(
    netnsAddRequest({ name: 'ukcn-0011', address: '10.88.0.5/16', gateway: '10.88.0.1', inNetns: 'testhost' }),
    `add ukcn-0011 ${veth} ukc0 10.88.0.5/16 10.88.0.1 testhost\n`,
  );
  assert.equal(netnsDelRequest('ukcn-0011'), `del ukcn-0011 ${veth} -\n`);
  assert.equal(netnsDelRequest('ukcn-0011', 'testhost'), `del ukcn-0011 ${veth} testhost\n`);
});

test('netns helper requests: hostile names and addresses never reach the helper', () => {
  const ok = { name: 'ukcn-1', bridge: 'br0', address: '10.88.0.5/16', gateway: '10.88.0.1' };
  const bad = [
    { ...ok, name: 'a b' },
    { ...ok, name: 'x\nadd evil' },
    { ...ok, name: '../etc' },
    { ...ok, name: '' },
    { ...ok, bridge: 'br0 up' },
    { ...ok, bridge: 'a-bridge-name-too-long' },
    { ...ok, address: '10.88.0.5/16 x' },
    { ...ok, gateway: '10.88.0.1\ndel' },
    { ...ok, inNetns: '-' },
    { ...ok, inNetns: 'a/b' },
  ];
  for (const spec of bad) assert.throws(() => netnsAddRequest(spec), TypeError, JSON.stringify(spec));
  assert.throws(() => netnsDelRequest('x y'), TypeError);
  assert.throws(() => netnsDelRequest('ok', 'x\ny'), TypeError);
});

test('netns helper answers: ok, errors with errno and operation, anything else is a protocol error', () => {
  assert.deepEqual(parseNetnsReply('ok ukcn-1'), { ok: true, netns: 'ukcn-1' });
  const r = parseNetnsReply('error ukcn-1 19 RTM_GETLINK bridge: No such device');
  assert.equal(r.ok, false);
  const err = (r as { error: NetlinkError }).error;
  assert.ok(err instanceof NetlinkError);
  assert.equal(err.netns, 'ukcn-1');
  assert.equal(err.operation, 'RTM_GETLINK bridge');
  assert.equal(err.errno, 19);
  assert.equal(err.message, 'netns ukcn-1: RTM_GETLINK bridge failed: errno 19 (No such device)');
  for (const line of ['', 'ok', 'ok a b', 'error x', 'error x y op: m', 'okay x', 'error x 1 no colon']) {
    assert.throws(() => parseNetnsReply(line), /unexpected answer/, line);
  }
});
