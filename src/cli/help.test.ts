// Every command and subcommand of both executables answers --help and -h with
// its usage and every flag of the table it parses with, exits 0, and starts nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { runCommandLine, type Command, type CommandContext } from '../util/command.js';
import type { CommandHelp } from '../util/usage.js';
import { makeCliCommands } from './commands.js';
import { daemonCommands } from '../daemon/commands.js';

function context(): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  // A config path that does not exist: nothing may be read or written while answering help.
  const env = { HOME: '/nonexistent', UNIKRAFT_CONFIG: '/nonexistent/config.yaml', UKC_HOME: '/nonexistent/ukc' };
  return { ctx: { cwd: tmpdir(), env, stdout, stderr, signal: AbortSignal.abort() }, out: () => o, err: () => e };
}

/** Every command path with its help: [['build'], help], [['images', 'import'], help], ... */
function paths(commands: readonly Command[]): Array<[string[], CommandHelp]> {
  const out: Array<[string[], CommandHelp]> = [];
  const walk = (words: string[], help: CommandHelp): void => {
    out.push([words, help]);
    for (const [name, sub] of Object.entries(help.subcommands ?? {})) walk([...words, name], sub);
  };
  for (const c of commands) {
    assert.ok(c.help, `command ${c.name} has no help table`);
    walk([c.name], c.help);
  }
  return out;
}

const programs: Array<[string, readonly Command[]]> = [
  ['unikraft', makeCliCommands()],
  ['ukcd', daemonCommands],
];

for (const [program, commands] of programs) {
  test(`${program}: --help and -h on every command and subcommand print usage with every flag and exit 0`, async () => {
    const all = paths(commands);
    assert.ok(all.length >= (program === 'unikraft' ? 30 : 12), `only ${all.length} command paths`);
    for (const [words, help] of all) {
      for (const flag of ['--help', '-h']) {
        const c = context();
        const code = await runCommandLine(program, commands, [...words, flag], c.ctx);
        const where = `${program} ${words.join(' ')} ${flag}`;
        assert.equal(code, 0, `${where}: exit ${code}\n${c.err()}`);
        assert.equal(c.err(), '', `${where} wrote to stderr`);
        const text = c.out();
        assert.ok(text.startsWith(`usage: ${program} ${words.join(' ')}`), `${where}:\n${text}`);
        assert.ok(text.includes(help.summary), `${where}: summary missing`);
        const tables = { ...(help.options ?? {}), ...(help.globalOptions ?? {}) };
        for (const [name, o] of Object.entries(tables)) {
          assert.ok(text.includes(`--${name}`), `${where}: --${name} missing:\n${text}`);
          if (o.short) assert.ok(text.includes(`-${o.short}, --${name}`), `${where}: -${o.short} missing`);
        }
        assert.match(text, /-h, --help/);
        for (const sub of Object.keys(help.subcommands ?? {})) assert.match(text, new RegExp(`^  ${sub} `, 'm'), `${where}: subcommand ${sub} missing`);
      }
    }
  });

  test(`${program}: an unknown flag on any leaf command is a usage error (exit 2) naming the flag`, async () => {
    for (const [words, help] of paths(commands)) {
      if (help.subcommands) continue;
      const c = context();
      const code = await runCommandLine(program, commands, [...words, '--no-such-flag'], c.ctx);
      assert.equal(code, 2, `${program} ${words.join(' ')} --no-such-flag: exit ${code}\n${c.err()}`);
      assert.match(c.err(), /no-such-flag/);
    }
  });
}

test('help after -- belongs to the app, not to us', async () => {
  const c = context();
  const code = await runCommandLine('unikraft', makeCliCommands(), ['run', '--dry-run', '--image', 'x', '--', '--help'], c.ctx);
  assert.notEqual(c.out().startsWith('usage:'), true);
  assert.ok(code === 0 || code === 1, c.err());
});

test('the top-level help lists every command', async () => {
  const c = context();
  assert.equal(await runCommandLine('unikraft', makeCliCommands(), ['--help'], c.ctx), 0);
  for (const name of ['build', 'run', 'instances', 'images', 'services', 'login', 'profiles', 'metros', 'nodes', 'version']) assert.match(c.out(), new RegExp(`^  ${name} `, 'm'));
});
