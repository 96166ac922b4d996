import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressInSubnet, hostVethName, parseCidr, parseIpv4 } from './network.js';
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
