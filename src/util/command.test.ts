import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { runCommandLine, UsageError, UserError, type Command, type CommandContext } from './command.js';
import { parseOptions } from './usage.js';

function ctx(): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  return {
    ctx: { cwd: '/', env: {}, stdout, stderr, signal: new AbortController().signal },
    out: () => o,
    err: () => e,
  };
}

const commands: Command[] = [
  { name: 'ok', summary: 'succeeds', run: async (args, c) => (c.stdout.write(args.join(',')), 0) },
  { name: 'misuse', summary: 'usage error', run: async () => { throw new UsageError('bad flag'); } },
  { name: 'fail', summary: 'user error', run: async () => { throw new UserError('no such image', 3); } },
  { name: 'crash', summary: 'bug', run: async () => { throw new Error('boom'); } },
];

test('dispatches to the named command with its arguments', async () => {
  const c = ctx();
  assert.equal(await runCommandLine('t', commands, ['ok', 'a', 'b'], c.ctx), 0);
  assert.equal(c.out(), 'a,b');
});

test('maps usage errors to exit 2 and user errors to their code, with one message line', async () => {
  const a = ctx();
  assert.equal(await runCommandLine('t', commands, ['misuse'], a.ctx), 2);
  assert.equal(a.err(), 't misuse: bad flag\n');
  const b = ctx();
  assert.equal(await runCommandLine('t', commands, ['fail'], b.ctx), 3);
  assert.equal(b.err(), 't fail: no such image\n');
});

test('unknown commands and internal errors fail with a non-zero code', async () => {
  const a = ctx();
  assert.equal(await runCommandLine('t', commands, ['nope'], a.ctx), 2);
  assert.match(a.err(), /unknown command "nope"/);
  const b = ctx();
  assert.equal(await runCommandLine('t', commands, ['crash'], b.ctx), 1);
  assert.match(b.err(), /internal error: Error: boom/);
});

test('Ctrl-C during a command: "interrupted" and exit 130, whatever the command threw while stopping, no stack', async () => {
  const ac = new AbortController();
  const c = ctx();
  const slow: Command = {
    name: 'slow',
    summary: 'waits until interrupted',
    run: (_args, cx) =>
      new Promise<number>((_resolve, reject) => {
        cx.signal.addEventListener('abort', () => reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' })));
      }),
  };
  const running = runCommandLine('t', [slow], ['slow'], { ...c.ctx, signal: ac.signal });
  setImmediate(() => ac.abort());
  assert.equal(await running, 130);
  assert.equal(c.err(), 't slow: interrupted\n');
});

test('a negative number after an option that takes a value is its value (--timeout -1), a flag is still a flag, and -- ends options', () => {
  const help = {
    synopsis: '',
    summary: '',
    options: { timeout: { type: 'string', short: 't', help: 'give up after' }, force: { type: 'boolean', help: 'now' } },
  } as const;
  assert.equal(parseOptions('t wait', help, ['--timeout', '-1']).values.timeout, '-1');
  assert.equal(parseOptions('t wait', help, ['-t', '-5s', 'x']).values.timeout, '-5s');
  assert.deepEqual(parseOptions('t wait', help, ['x', '--', '--timeout', '-1']).positionals, ['x', '--timeout', '-1']);
  assert.throws(() => parseOptions('t wait', help, ['--force', '-1']), UsageError);
});
