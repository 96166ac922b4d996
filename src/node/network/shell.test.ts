import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandShell, nftScript } from './shell.js';

test('command shell: answers in order with output (stderr too) and exit status; a here-document is not expanded', async () => {
  const shell = new CommandShell();
  try {
    const [a, b, c] = await Promise.all([shell.run('echo one'), shell.run('echo two >&2; exit_code() { return 3; }; exit_code'), shell.run("cat <<'X'\n$HOME `id`\nX")]);
    assert.deepEqual(a, { code: 0, output: 'one\n' });
    assert.deepEqual(b, { code: 3, output: 'two\n' });
    assert.deepEqual(c, { code: 0, output: '$HOME `id`\n' });
    const late = shell.run('sleep 0.1; echo late');
    shell.close();
    const again = shell.run('echo again');
    assert.deepEqual(await late, { code: 0, output: 'late\n' }, 'a closed shell still answers what it was given');
    assert.deepEqual(await again, { code: 0, output: 'again\n' }, 'a new shell after close');
  } finally {
    shell.close();
  }
});

test('nftScript: quoted here-document; a path or rules that could break out are refused', () => {
  assert.equal(nftScript('/usr/sbin/nft', 'list tables\n'), "/usr/sbin/nft -f - <<'UKC_NFT_RULES_END'\nlist tables\nUKC_NFT_RULES_END");
  assert.throws(() => nftScript('nft; rm -rf /', 'x'), TypeError);
  assert.throws(() => nftScript('nft', 'x\nUKC_NFT_RULES_END\nrm -rf /'), TypeError);
});
