/**
 * `ukcd accounts` and `ukcd tokens`: operators (and tests) manage accounts and
 * API tokens in the same database a `ukcd registry --auth` (or `ukcd dev`)
 * uses. The database may be open in a running daemon at the same time
 * (SQLite WAL); a token created here works at once.
 *
 *   ukcd accounts create NAME [--root]          (--data DIR | --accounts-db PATH)
 *   ukcd accounts list | delete NAME             (same)
 *   ukcd tokens create ACCOUNT [--scope full|registry|registry-pull] [--label TEXT]
 *   ukcd tokens list ACCOUNT | revoke ID
 *
 * `tokens create` prints the token text once, alone on stdout (so
 * `TOKEN=$(ukcd tokens create alice …)` works); it is never stored or shown again.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseOptions, type CommandHelp } from '../util/index.js';
import { AccountError, AccountStore, AuthInputError, parseTokenScope } from '../auth/index.js';
import { ACCOUNTS_DB_FILE } from '../registry/index.js';
import { UsageError, UserError, type Command, type CommandContext } from '../util/index.js';

const DB_OPTIONS = {
  data: { type: 'string', value: 'DIR', help: 'the registry or control plane data directory holding the accounts database' },
  'accounts-db': { type: 'string', value: 'PATH', help: 'the accounts database itself' },
} as const;

export const ACCOUNTS_HELP = {
  synopsis: 'create|list|delete ... (--data DIR | --accounts-db PATH)',
  summary: 'manage accounts (--data DIR | --accounts-db PATH)',
  options: {},
  subcommands: {
    create: { synopsis: 'NAME [--root] (--data DIR | --accounts-db PATH)', summary: 'create an account', options: { ...DB_OPTIONS, root: { type: 'boolean', default: false, help: 'a root account (may do everything)' } } },
    list: { synopsis: '(--data DIR | --accounts-db PATH)', summary: 'list accounts', options: DB_OPTIONS },
    delete: { synopsis: 'NAME (--data DIR | --accounts-db PATH)', summary: 'delete an account', options: DB_OPTIONS },
  },
} as const satisfies CommandHelp;

export const TOKENS_HELP = {
  synopsis: 'create|list|revoke ... (--data DIR | --accounts-db PATH)',
  summary: 'manage API tokens (a new token is printed once)',
  options: {},
  subcommands: {
    create: {
      synopsis: 'ACCOUNT [--scope full|registry|registry-pull] [--label TEXT] (--data DIR | --accounts-db PATH)',
      summary: 'create a token and print it once, alone on stdout',
      options: {
        ...DB_OPTIONS,
        scope: { type: 'string', default: 'full', value: 'full|registry|registry-pull', help: 'what the token may reach' },
        label: { type: 'string', default: '', value: 'TEXT', help: 'a note shown by tokens list' },
      },
    },
    list: { synopsis: 'ACCOUNT (--data DIR | --accounts-db PATH)', summary: "list an account's tokens", options: DB_OPTIONS },
    revoke: { synopsis: 'ID (--data DIR | --accounts-db PATH)', summary: 'revoke a token', options: DB_OPTIONS },
  },
} as const satisfies CommandHelp;

function dbPath(values: { data?: string | undefined; 'accounts-db'?: string | undefined }, cwd: string): string {
  if (values['accounts-db'] !== undefined) return resolve(cwd, values['accounts-db']);
  if (values.data !== undefined) return join(resolve(cwd, values.data), ACCOUNTS_DB_FILE);
  throw new UsageError('--data DIR or --accounts-db PATH is required');
}

/** Opens the store, runs `work`, closes it; maps the store's input and conflict errors to user errors. */
function withStore<T>(path: string, work: (store: AccountStore) => T): T {
  let store: AccountStore | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    store = new AccountStore({ path });
    return work(store);
  } catch (e) {
    if (e instanceof AccountError || e instanceof AuthInputError) throw new UserError(e.message);
    throw e;
  } finally {
    store?.close();
  }
}

function verbHelp(subs: Readonly<Record<string, CommandHelp>>, verb: string | undefined, words: string): CommandHelp {
  if (verb === undefined || !Object.hasOwn(subs, verb)) throw new UsageError(`${verb === undefined ? 'missing subcommand' : `unknown subcommand "${verb}"`} (one of: ${Object.keys(subs).join(', ')}); see \`${words} --help\``);
  return subs[verb]!;
}

function oneName(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0] as string;
}

async function accounts(args: string[], ctx: CommandContext): Promise<number> {
  const [verb, ...rest] = args;
  const table = verbHelp(ACCOUNTS_HELP.subcommands, verb, 'ukcd accounts');
  // Parsed with this verb's own table; typed as the widest (the others' flags stay at their defaults).
  const { values, positionals } = parseOptions(`ukcd accounts ${verb}`, table as typeof ACCOUNTS_HELP.subcommands.create, rest);
  const path = dbPath(values, ctx.cwd);
  switch (verb) {
    case 'create': {
      const name = oneName(positionals, 'account name');
      const account = withStore(path, (s) => s.createAccount(name, { role: values.root ? 'root' : 'user' }));
      ctx.stdout.write(`created account ${account.name} (${account.role})\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length > 0) throw new UsageError('list takes no arguments');
      for (const a of withStore(path, (s) => s.listAccounts())) ctx.stdout.write(`${a.name}\t${a.role}\t${a.createdAt.toISOString()}\n`);
      return 0;
    }
    case 'delete': {
      const name = oneName(positionals, 'account name');
      withStore(path, (s) => s.deleteAccount(name));
      ctx.stdout.write(`deleted account ${name}\n`);
      return 0;
    }
    default:
      throw new UsageError('usage: ukcd accounts create NAME [--root] | list | delete NAME  (--data DIR | --accounts-db PATH)');
  }
}

async function tokens(args: string[], ctx: CommandContext): Promise<number> {
  const [verb, ...rest] = args;
  const table = verbHelp(TOKENS_HELP.subcommands, verb, 'ukcd tokens');
  const { values, positionals } = parseOptions(`ukcd tokens ${verb}`, table as typeof TOKENS_HELP.subcommands.create, rest);
  const path = dbPath(values, ctx.cwd);
  switch (verb) {
    case 'create': {
      const account = oneName(positionals, 'account name');
      let scope;
      try {
        scope = parseTokenScope(values.scope);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const created = withStore(path, (s) => s.createToken(account, { scope, label: values.label }));
      ctx.stderr.write(`token ${created.info.id} for ${account} (${scope}); shown once:\n`);
      ctx.stdout.write(`${created.text}\n`);
      return 0;
    }
    case 'list': {
      const account = oneName(positionals, 'account name');
      for (const t of withStore(path, (s) => s.listTokens(account))) {
        const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : 'live';
        ctx.stdout.write(`${t.id}\t${t.scope}\t${state}\t${t.label}\n`);
      }
      return 0;
    }
    case 'revoke': {
      const id = oneName(positionals, 'token id');
      if (!withStore(path, (s) => s.revokeToken(id))) throw new UserError(`no live token ${id}`);
      ctx.stdout.write(`revoked token ${id}\n`);
      return 0;
    }
    default:
      throw new UsageError(
        'usage: ukcd tokens create ACCOUNT [--scope full|registry|registry-pull] [--label TEXT] | list ACCOUNT | revoke ID  (--data DIR | --accounts-db PATH)',
      );
  }
}

export const accountsCommand: Command = {
  name: 'accounts',
  summary: 'manage accounts: `accounts create NAME [--root] | list | delete NAME` (--data DIR | --accounts-db PATH)',
  help: ACCOUNTS_HELP,
  run: accounts,
};

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'manage API tokens: `tokens create ACCOUNT [--scope registry-pull] | list ACCOUNT | revoke ID` (prints a new token once)',
  help: TOKENS_HELP,
  run: tokens,
};
