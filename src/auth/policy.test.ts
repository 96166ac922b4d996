import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANONYMOUS, Policy, type AccountPrincipal, type GrantPrincipal, type OwnedObject, type Principal, type RepositoryObject } from './policy.js';
import type { TokenScope } from './accounts.js';

const user = (name: string, tokenScope: TokenScope = 'full'): AccountPrincipal => ({ kind: 'account', name, role: 'user', tokenScope });
const root: AccountPrincipal = { kind: 'account', name: 'root', role: 'root', tokenScope: 'full' };
const repo = (name: string, readers?: string[]): RepositoryObject => ({ kind: 'repository', name, ...(readers ? { readers } : {}) });
const policy = new Policy();

function can(p: Principal, action: 'pull' | 'push' | 'delete', r: RepositoryObject, pol = policy): boolean {
  return pol.authorize(p, action, r).allow;
}

test('namespaces: alice/* is pushable and deletable only by alice', () => {
  const alice = user('alice');
  const bob = user('bob');
  for (const a of ['pull', 'push', 'delete'] as const) assert.equal(can(alice, a, repo('alice/app')), true, a);
  for (const a of ['pull', 'push', 'delete'] as const) assert.equal(can(bob, a, repo('alice/app')), false, a);
  // a name that merely starts with alice is not alice's
  assert.equal(can(alice, 'push', repo('alicex/app')), false);
  assert.equal(can(alice, 'push', repo('app')), false);
});

test('readers listed on an image may pull, never push or delete', () => {
  const shared = repo('alice/app', ['bob']);
  assert.equal(can(user('bob'), 'pull', shared), true);
  assert.equal(can(user('bob'), 'push', shared), false);
  assert.equal(can(user('bob'), 'delete', shared), false);
  assert.equal(can(user('carol'), 'pull', shared), false);
});

test('official/* is readable by every account, writable only by root; anonymous only when configured', () => {
  const off = repo('official/base-compat');
  assert.equal(can(user('bob'), 'pull', off), true);
  assert.equal(can(user('bob'), 'push', off), false);
  assert.equal(can(root, 'push', off), true);
  assert.equal(can(root, 'delete', repo('alice/app')), true);
  assert.equal(can(ANONYMOUS, 'pull', off), false);
  const open = new Policy({ anonymousPullOfficial: true });
  assert.equal(can(ANONYMOUS, 'pull', off, open), true);
  assert.equal(can(ANONYMOUS, 'push', off, open), false);
  assert.equal(can(ANONYMOUS, 'pull', repo('alice/app'), open), false);
});

test('library/* (the central mirror of Docker Hub official images, for FROM) is pullable by every account, writable only by root, never anonymous', () => {
  const py = repo('library/python');
  assert.equal(can(user('bob'), 'pull', py), true);
  assert.equal(can(user('bob'), 'push', py), false);
  assert.equal(can(user('bob'), 'delete', py), false);
  assert.equal(can(root, 'push', py), true);
  assert.equal(can(ANONYMOUS, 'pull', py), false);
  assert.equal(can(ANONYMOUS, 'pull', py, new Policy({ anonymousPullOfficial: true })), false);
  // only the exact namespace: a look-alike stays root's
  assert.equal(can(user('bob'), 'pull', repo('libraryx/python')), false);
});

test('hostile: a pull-only token cannot push or delete, even for root (security row 8)', () => {
  const ci = user('alice', 'registry-pull');
  assert.equal(can(ci, 'pull', repo('alice/app')), true);
  assert.equal(can(ci, 'push', repo('alice/app')), false);
  assert.equal(can(ci, 'delete', repo('alice/app')), false);
  const rootPull: AccountPrincipal = { ...root, tokenScope: 'registry-pull' };
  assert.equal(can(rootPull, 'push', repo('official/x')), false);
  assert.equal(policy.mayListCatalog(rootPull), false);
  assert.equal(policy.mayListCatalog(root), true);
  assert.equal(policy.mayListCatalog(user('alice')), false);
});

test('hostile: a registry token for repo a does not read repo b (security row 8)', () => {
  const grant: GrantPrincipal = { kind: 'grant', name: 'alice', access: [{ type: 'repository', name: 'alice/a', actions: ['pull'] }] };
  assert.equal(can(grant, 'pull', repo('alice/a')), true);
  assert.equal(can(grant, 'push', repo('alice/a')), false);
  assert.equal(can(grant, 'pull', repo('alice/b')), false);
  assert.equal(can(grant, 'pull', repo('official/x')), false);
  const wrongType: GrantPrincipal = { kind: 'grant', name: 'alice', access: [{ type: 'other', name: 'alice/b', actions: ['*'] }] };
  assert.equal(can(wrongType, 'pull', repo('alice/b')), false);
});

test('invalid repository names and unrelated actions are denied', () => {
  assert.equal(can(root, 'pull', repo('../etc')), false);
  assert.equal(policy.authorize(root, 'read', repo('alice/app')).allow, false);
  assert.equal(policy.authorize(root, 'pull', { kind: 'instance', owner: 'root' }).allow, false);
});

test('cross-repo mount needs pull on the source, else a plain upload (security row 9)', () => {
  const alice = user('alice');
  assert.equal(policy.mountDecision(alice, repo('alice/app'), repo('bob/secret')), 'upload');
  assert.equal(policy.mountDecision(alice, repo('alice/app'), repo('bob/shared', ['alice'])), 'mount');
  assert.equal(policy.mountDecision(alice, repo('alice/app'), repo('alice/other')), 'mount');
  assert.equal(policy.mountDecision(alice, repo('bob/app'), repo('alice/other')), 'upload');
});

test('tenant isolation: another tenant\'s objects are invisible, like missing ones (security row 14)', () => {
  const alice = user('alice');
  const bob = user('bob');
  for (const kind of ['instance', 'service', 'volume', 'certificate'] as const) {
    const mine: OwnedObject = { kind, owner: 'alice' };
    assert.equal(policy.visible(alice, mine), true, kind);
    assert.equal(policy.visible(bob, mine), false, kind);
    assert.equal(policy.authorize(bob, 'write', mine).allow, false, kind);
    assert.equal(policy.visible(root, mine), true, kind);
    assert.equal(policy.visible(ANONYMOUS, mine), false, kind);
    // registry-scoped tokens do not reach the platform API at all
    assert.equal(policy.visible(user('alice', 'registry'), mine), false, kind);
  }
  // Images: visible when pullable.
  assert.equal(policy.visible(bob, repo('alice/app')), false);
  assert.equal(policy.visible(bob, repo('alice/app', ['bob'])), true);
  assert.equal(policy.visible(bob, repo('official/base')), true);
  // The answer is the same shape whether the object exists or not: a boolean with no detail.
  assert.deepEqual(Object.keys(policy.authorize(bob, 'read', { kind: 'instance', owner: 'alice' })).sort(), ['allow', 'reason']);
});

test('allowedActions is the intersection of what is wanted and what is allowed', () => {
  assert.deepEqual(policy.allowedActions(user('bob'), repo('official/x'), ['pull', 'push']), ['pull']);
  assert.deepEqual(policy.allowedActions(user('bob'), repo('alice/x'), ['pull', 'push', 'delete']), []);
  assert.deepEqual(policy.allowedActions(user('alice'), repo('alice/x'), ['push', 'pull']), ['push', 'pull']);
});
